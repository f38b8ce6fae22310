"""Scheduled entry points for workspaces (declared in zappa_settings.json `events`)."""

from apps.accounts.services import retention_purge


def purge_expired(event, context):
    """Daily: delete what each workspace's retention setting no longer keeps."""
    return retention_purge()
