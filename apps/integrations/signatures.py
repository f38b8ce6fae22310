"""Intercom's signatures: X-Hub-Signature on webhooks (HMAC-SHA1), X-Body-Signature on Canvas Kit (HMAC-SHA256)."""

import hashlib
import hmac
import re

_HUB_SIGNATURE = re.compile(r"^sha1=[0-9a-f]{40}$")
_BODY_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
# Only the id that picks the secret is read before the signature is checked; nothing in it is trusted.
_APP_ID_FIELD = re.compile(rb'"(?:app_id|workspace_id)"\s*:\s*"([A-Za-z0-9_-]{1,64})"')
MAX_APP_ID_CANDIDATES = 3


def hub_signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature value Intercom sends for a webhook body."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def body_signature(secret: str, body: bytes) -> str:
    """The X-Body-Signature value Intercom sends for a Canvas Kit request body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def well_formed_hub_signature(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value if _HUB_SIGNATURE.match(value) else None


def well_formed_body_signature(value: str | None) -> str | None:
    value = (value or "").strip().lower()
    return value if _BODY_SIGNATURE.match(value) else None


def matches(expected: str, given: str) -> bool:
    """Constant-time comparison: the time taken says nothing about how much of the signature was right."""
    return hmac.compare_digest(expected.encode(), given.encode())


def app_id_candidates(body: bytes) -> list[str]:
    """The Intercom workspace ids a body claims (first few, distinct), to choose which secret to check it with."""
    found: list[str] = []
    for match in _APP_ID_FIELD.finditer(body):
        value = match.group(1).decode()
        if value not in found:
            found.append(value)
            if len(found) == MAX_APP_ID_CANDIDATES:
                break
    return found
