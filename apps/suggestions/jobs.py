"""Scheduled entry points for suggestions (declared in zappa_settings.json `events`)."""

from apps.suggestions.digests import digests_for_yesterday


def daily_digest(event, context):
    """Every morning (UTC): yesterday's digest per workspace, stored and mailed to owners once."""
    return digests_for_yesterday()
