"""The realtime credential: a short-lived, workspace-scoped JWT for connecting to the broker, and nothing else.

It is signed with a key derived from Cue's JWT signing key for this purpose only, and carries its own
audience and token type: it is refused by the HTTP API, and an API access token is refused here.
"""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

AUDIENCE = "cue-realtime"
TOKEN_TYPE = "realtime"  # noqa: S105 - a claim value, not a secret
ALGORITHM = "HS256"


class InvalidRealtimeToken(Exception):
    """Expired, tampered with, of another kind, or for another stage's topic tree."""


@dataclass(frozen=True)
class RealtimeClaims:
    user_id: int
    workspace_id: int
    client_id: str
    expires_at: datetime


def _key() -> str:
    signing_key = settings.SIMPLE_JWT["SIGNING_KEY"]
    return salted_hmac("apps.realtime.tokens", "realtime-credential", secret=str(signing_key)).hexdigest()


def realtime_token_issue(
    *, user_id: int, workspace_id: int, client_id: str, now: datetime | None = None
) -> tuple[str, datetime]:
    """A token for one client id of one member; returns it and when it expires."""
    now = now or timezone.now()
    expires_at = now + timedelta(seconds=settings.REALTIME_TOKEN_SECONDS)
    claims = {
        "token_type": TOKEN_TYPE,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "ws": workspace_id,
        "cid": client_id,
        "root": settings.REALTIME_TOPIC_ROOT,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, _key(), algorithm=ALGORITHM), expires_at.replace(microsecond=0)


def realtime_token_verify(token: str) -> RealtimeClaims:
    """The token's claims, or InvalidRealtimeToken saying why not."""
    try:
        claims = jwt.decode(
            token,
            _key(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "iat", "aud", "sub", "ws", "cid", "root", "token_type"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidRealtimeToken(str(exc)) from exc
    if claims["token_type"] != TOKEN_TYPE:
        raise InvalidRealtimeToken(f"token type {claims['token_type']!r} is not {TOKEN_TYPE!r}")
    if claims["root"] != settings.REALTIME_TOPIC_ROOT:
        raise InvalidRealtimeToken("token is for another stage's topic tree")
    try:
        user_id, workspace_id = int(claims["sub"]), int(claims["ws"])
    except (TypeError, ValueError) as exc:
        raise InvalidRealtimeToken("token names no user or workspace") from exc
    return RealtimeClaims(
        user_id=user_id,
        workspace_id=workspace_id,
        client_id=str(claims["cid"]),
        expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
    )
