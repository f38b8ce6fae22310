"""Scheduled entry points of the Intercom integration (declared in zappa_settings.json `events`)."""

from apps.integrations.services import connections_verify, deliveries_redispatch_stale


def redispatch_deliveries(event, context):
    """Every five minutes: webhook deliveries whose processing task was lost are dispatched again."""
    return deliveries_redispatch_stale()


def verify_connections(event, context):
    """Hourly: connections Intercom never confirmed (stored before ownership was proven) are asked about once."""
    return connections_verify()
