"""Scheduled entry points of the knowledge base (declared in zappa_settings.json `events`)."""

from apps.knowledge.sync import sync_schedule


def intercom_sync(event, context):
    """Every minute: resume syncs parked for Intercom's rate limit; each Help Center once a day."""
    return sync_schedule()
