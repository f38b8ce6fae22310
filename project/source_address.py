"""The caller's address as API Gateway saw it, per Lambda invocation (no Django: the entry point imports it cold).

project.lambda_entry sets it from each event; project.middleware.SourceAddressMiddleware makes it REMOTE_ADDR.
"""

import ipaddress
from contextvars import ContextVar

# The address API Gateway saw for the current Lambda invocation (set by project.lambda_entry), else None.
event_source_ip: ContextVar[str | None] = ContextVar("cue_event_source_ip", default=None)


def source_ip_of(event: dict) -> str | None:
    """The caller's address as API Gateway saw it: requestContext.identity.sourceIp (REST, v1) or
    requestContext.http.sourceIp (HTTP API and function URLs, v2); None for any other event."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    if not isinstance(context, dict):
        return None
    http, identity = context.get("http"), context.get("identity")
    found = (http or {}).get("sourceIp") if isinstance(http, dict) else None
    if not found and isinstance(identity, dict):
        found = identity.get("sourceIp")
    try:
        return str(ipaddress.ip_address(found)) if isinstance(found, str) else None
    except ValueError:
        return None
