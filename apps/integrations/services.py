"""Writes for Intercom: connect and disconnect, receive webhooks, mirror them, send replies, sync teammates."""

import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.models import Membership, Workspace
from apps.accounts.selectors import membership_list
from apps.conversations.models import Conversation
from apps.conversations.services import conversation_upsert_from_intercom
from apps.integrations import payloads, selectors, signatures
from apps.integrations.client import (
    IntercomAuthError,
    IntercomClient,
    IntercomClientError,
    IntercomError,
    IntercomNotFound,
    IntercomServerError,
    exchange_oauth_code,
)
from apps.integrations.models import (
    ConnectionMethod,
    DeliveryStatus,
    DisabledCode,
    IntercomAdmin,
    IntercomConnection,
    OutboundReply,
    Region,
    ReplyKind,
    ReplyStatus,
    WebhookDelivery,
)
from apps.tasks.invocation import remaining_seconds
from apps.tasks.models import TaskRun
from apps.tasks.selectors import task_run_get
from apps.tasks.services import task_dispatch
from project.api import error_body
from project.html import html_to_text

logger = logging.getLogger(__name__)

OAUTH_STATE_SALT = "cue.integrations.intercom.oauth-state"
OAUTH_STATE_MAX_AGE_SECONDS = 600
MAX_REPLY_CHARS = 20_000
# A durable task taking [workspace_id]: the Help Center sync a first install starts (apps.knowledge.tasks).
HELP_CENTER_SYNC_TASK = "apps.knowledge.tasks.sync_help_center"


# ------------------------------------------------------------------------------
# Connecting: the app a connection speaks for is the one Intercom says its token belongs to
# ------------------------------------------------------------------------------
class ConnectRefused(Exception):
    """An install that cannot be completed, and nothing was stored: `status`, `code`, `fields` are the API's answer."""

    status = 400
    code = "invalid"

    def __init__(self, message: str, *, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class TokenRefused(ConnectRefused):
    """Intercom refuses the access token on GET /me (401, or another 4xx: `intercom_status`)."""

    code = "token_invalid"

    def __init__(self, message: str, *, intercom_status: int | None, **kwargs):
        super().__init__(message, **kwargs)
        self.intercom_status = intercom_status


class AppMismatch(ConnectRefused):
    """The caller named an app id, and the token belongs to another app."""

    code = "app_mismatch"


class IntercomUnavailable(ConnectRefused):
    """Intercom could not be reached, did not answer in time, or asked to slow down (429): try again shortly."""

    status = 503
    code = "intercom_unavailable"


class IntercomBadAnswer(ConnectRefused):
    """Intercom failed (5xx, a body that is not JSON) while asked whose token it is."""

    status = 502
    code = "intercom_error"


class TokenWithoutApp(IntercomBadAnswer):
    """Intercom's /me answer names no app (`app.id_code`): the token proves nothing."""


class AppTaken(ConnectRefused):
    """Another Cue workspace connected the same app at the same moment (one active connection per app)."""

    status = 409
    code = "app_taken"


@dataclass(frozen=True)
class TokenOwner:
    """What Intercom's GET /me says of an access token: the app (Intercom workspace) and the admin it belongs to."""

    app_id: str
    admin_id: str


# GET /me waited on by a request (a PUT, the OAuth callback) or by the verification job inside one Lambda
# invocation: tighter than the task client's timeouts (the settings' values, when smaller, still win).
ME_CONNECT_TIMEOUT_SECONDS = 2.0
ME_READ_TIMEOUT_SECONDS = 5.0
ME_MAX_RETRY_WAIT_SECONDS = 1.0
_APP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# What can travel in an Authorization header: printable ASCII, no spaces (Intercom's tokens are base64).
TOKEN_PATTERN = r"^[!-~]{1,500}$"  # noqa: S105 - a pattern, not a secret


def _request_path_timeouts() -> dict:
    return {
        "connect_timeout": min(settings.INTERCOM_HTTP_CONNECT_TIMEOUT_SECONDS, ME_CONNECT_TIMEOUT_SECONDS),
        "read_timeout": min(settings.INTERCOM_HTTP_READ_TIMEOUT_SECONDS, ME_READ_TIMEOUT_SECONDS),
    }


def token_owner_ask(*, access_token: str, region: str, api_version: str = "", retries: int = 1) -> TokenOwner:
    """Ask Intercom (GET /me on the region's host) which app and which admin an access token belongs to.

    Short timeouts and at most `retries` retry (5xx, timeouts, a refused connection; a 429 only if
    Intercom asks for a wait under a second). Raises TokenRefused (401 or another 4xx; `intercom_status`
    None: a token that cannot even be sent), IntercomUnavailable (unreachable, timeout, 429),
    IntercomBadAnswer (5xx; TokenWithoutApp: no app id).
    """
    if not re.fullmatch(TOKEN_PATTERN, access_token):
        raise TokenRefused(
            "An Intercom access token is printable ASCII without spaces: this one cannot be sent to Intercom.",
            intercom_status=None,
            fields={"access_token": ["Not an Intercom access token."]},
        )
    client = IntercomClient(
        access_token=access_token,
        base_url=settings.INTERCOM_API_HOSTS[region],
        api_version=api_version or settings.INTERCOM_API_VERSION,
        max_retries=retries,
        max_retry_wait=ME_MAX_RETRY_WAIT_SECONDS,
        **_request_path_timeouts(),
    )
    try:
        me = client.me()
    except IntercomAuthError as exc:
        raise TokenRefused(
            f"Intercom refused this access token (401) on its {region.upper()} host: check the token, and that the "
            "Intercom workspace is hosted in that region. Nothing was stored.",
            intercom_status=401,
            fields={"access_token": ["Intercom refused this access token."]},
        ) from exc
    except (IntercomNotFound, IntercomClientError) as exc:
        raise TokenRefused(
            f"Intercom would not say whose access token this is ({exc.status}): {exc} Nothing was stored.",
            intercom_status=exc.status,
            fields={"access_token": ["Intercom refused this access token."]},
        ) from exc
    except IntercomServerError as exc:
        raise IntercomBadAnswer(
            f"Intercom failed while Cue asked whose access token this is ({exc.status or 'no JSON'}). "
            "Nothing was stored; try again in a moment."
        ) from exc
    except IntercomError as exc:  # rate limited, timed out, unreachable
        raise IntercomUnavailable(
            "Intercom could not be reached (or asked Cue to slow down) while Cue asked whose access token this is. "
            "Nothing was stored; try again in a moment."
        ) from exc
    app = me.get("app") if isinstance(me.get("app"), dict) else {}
    app_id = str(app.get("id_code") or "")
    if not _APP_ID.fullmatch(app_id):
        raise TokenWithoutApp("Intercom's answer to GET /me names no app (app.id_code): the token proves no app.")
    return TokenOwner(app_id=app_id, admin_id=str(me.get("id") or "")[:64])


def _connection_disable(conn: IntercomConnection, *, code: str, reason: str, now) -> None:
    """Stop a connection routing anything (webhooks, Canvas Kit, replies); kept, with the reason its owner reads."""
    conn.disabled_at, conn.disabled_code, conn.disabled_reason = now, code, reason[:500]
    conn.save(update_fields=["disabled_at", "disabled_code", "disabled_reason", "updated_at"])
    logger.warning(
        "intercom connection disabled",
        extra={"workspace_id": conn.workspace_id, "app_id": conn.app_id, "code": code, "connection_id": conn.id},
    )


def _when(now) -> str:
    return f"{now:%Y-%m-%d %H:%M} UTC"


class DeliveryUnreadable(Exception):
    """A stored delivery whose conversation cannot be read: recorded skipped; retrying cannot fix a body."""

    retryable = False  # the process_delivery task records it rejected, with this reason


class ReplyNotSendable(Exception):
    """A reply that no retry can send: Intercom was disconnected (or the connection disabled) first."""

    retryable = False  # the send_reply task records it rejected, with this reason


@transaction.atomic
def _connection_save(
    *,
    workspace: Workspace,
    actor: Membership | None,
    app_id: str,
    region: str,
    method: str,
    access_token: str,
    client_secret: str,
    token_admin_id: str,
) -> tuple[IntercomConnection, bool]:
    """Store a connection whose token Intercom has just confirmed belongs to `app_id` (the caller asked /me).

    Proof wins over possession: another workspace's active connection of the same app is disabled
    (taken over), with a reason that says so. Locks the other holder's row, then this workspace's.
    """
    now = timezone.now()
    holders = list(
        IntercomConnection.objects.select_for_update()
        .filter(app_id=app_id, disabled_at__isnull=True)
        .exclude(workspace=workspace)
    )
    for holder in holders:
        _connection_disable(
            holder,
            code=DisabledCode.APP_CLAIMED,
            reason=(
                f"Intercom workspace {app_id} was claimed on {_when(now)} by another Cue workspace that proved it owns "
                f"it (Intercom confirmed its access token belongs to {app_id}). Nothing from {app_id} reaches this "
                "workspace since. If it is yours, connect it again (OAuth, or a token of that Intercom workspace)."
            ),
            now=now,
        )
    conn = IntercomConnection.objects.select_for_update().filter(workspace=workspace).first()
    created = conn is None
    if created:
        conn = IntercomConnection(workspace=workspace)
    if holders:
        conn.took_over_at = now
    elif conn.app_id != app_id:
        conn.took_over_at = None
    conn.app_id = app_id
    conn.region = region
    conn.method = method
    conn.access_token = access_token
    conn.client_secret = client_secret
    conn.token_admin_id = token_admin_id
    # Each (re)connection pins the API version Cue is written against today.
    conn.api_version = settings.INTERCOM_API_VERSION
    conn.connected_by = actor
    conn.verified_at = now
    conn.disabled_at, conn.disabled_code, conn.disabled_reason = None, "", ""
    try:
        with transaction.atomic():
            conn.save()
    except IntegrityError as exc:  # another workspace proved the same app between the lock and the save
        raise AppTaken(
            f"Another Cue workspace connected Intercom workspace {app_id} at this very moment; try again."
        ) from exc
    from apps.integrations.tasks import sync_admins

    sync_admins.dispatch(args=[workspace.id], workspace_id=workspace.id)
    if created:  # a first install starts from the Help Center (apps.knowledge's sync; named, not imported)
        task_dispatch(task=HELP_CENTER_SYNC_TASK, args=[workspace.id], workspace_id=workspace.id)
    logger.info(
        "intercom connected",
        extra={
            "workspace_id": workspace.id,
            "app_id": app_id,
            "region": region,
            "method": method,
            "took_over_from": [h.workspace_id for h in holders],
        },
    )
    return conn, created


def connection_set_token(
    *, actor: Membership, access_token: str, client_secret: str, region: str, app_id: str | None = None
) -> tuple[IntercomConnection, bool]:
    """Connect with a pasted access token of the workspace's own Intercom app (and that app's client secret).

    The app is the one Intercom says the token belongs to (GET /me); `app_id`, when given, is only
    a hint that must match. Raises a ConnectRefused (nothing stored, no task sent) when Intercom
    refuses the token, names another app, or cannot be asked.
    """
    owner = token_owner_ask(access_token=access_token, region=region)
    if app_id and app_id != owner.app_id:
        logger.warning(
            "intercom token of another app",
            extra={"workspace_id": actor.workspace_id, "claimed_app_id": app_id, "token_app_id": owner.app_id},
        )
        message = (
            f"This access token belongs to Intercom workspace {owner.app_id}, not {app_id}. Nothing was stored: "
            f"leave app_id out to connect {owner.app_id}, or paste a token of {app_id}."
        )
        raise AppMismatch(message, fields={"app_id": [message]})
    return _connection_save(
        workspace=actor.workspace,
        actor=actor,
        app_id=owner.app_id,
        region=region,
        method=ConnectionMethod.TOKEN,
        access_token=access_token,
        client_secret=client_secret,
        token_admin_id=owner.admin_id,
    )


@transaction.atomic
def connection_delete(*, workspace: Workspace) -> bool:
    """Disconnect: the token and secrets are deleted; mirrored conversations stay."""
    deleted, _ = IntercomConnection.objects.filter(workspace=workspace).delete()
    IntercomAdmin.objects.filter(workspace=workspace).delete()
    if deleted:
        logger.info("intercom disconnected", extra={"workspace_id": workspace.id})
    return bool(deleted)


def oauth_authorize_url(*, actor: Membership, region: str) -> str:
    """Where to send the browser to install Cue's app; the state names this workspace, member and region, signed."""
    if not settings.INTERCOM_CLIENT_ID or not settings.INTERCOM_CLIENT_SECRET:
        raise ValidationError({"oauth": ["Intercom OAuth is not configured on this Cue (INTERCOM_CLIENT_ID)."]})
    state = signing.dumps(
        {"w": actor.workspace_id, "m": actor.id, "r": region, "n": secrets.token_urlsafe(8)}, salt=OAUTH_STATE_SALT
    )
    query = urlencode({"client_id": settings.INTERCOM_CLIENT_ID, "state": state})
    return f"{settings.INTERCOM_OAUTH_AUTHORIZE_URL}?{query}"


class OAuthFailed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def connection_complete_oauth(*, state: str, code: str) -> IntercomConnection:
    """The OAuth callback: check the state, trade the code for a token, learn the app id, store the connection.

    The two calls to Intercom happen here, in the request, because the code is short-lived and the
    browser waits; they have short timeouts. Everything else Intercom-bound runs in tasks.
    """
    try:
        claims = signing.loads(state, salt=OAUTH_STATE_SALT, max_age=OAUTH_STATE_MAX_AGE_SECONDS)
    except signing.SignatureExpired as exc:
        raise OAuthFailed("state_expired") from exc
    except signing.BadSignature as exc:
        raise OAuthFailed("state_invalid") from exc
    if not code:
        raise OAuthFailed("code_missing")
    membership = (
        Membership.objects.select_related("workspace").filter(pk=claims.get("m"), workspace_id=claims.get("w")).first()
    )
    if membership is None or not membership.is_manager:
        raise OAuthFailed("not_allowed")
    region = claims.get("r") if claims.get("r") in Region.values else Region.US
    try:
        # The browser waits on this and on GET /me: both on the request path's tight timeouts.
        token = exchange_oauth_code(code=code, **_request_path_timeouts())
    except IntercomError as exc:
        logger.warning("intercom oauth code exchange failed", extra={"error": str(exc)})
        raise OAuthFailed("exchange_failed") from exc
    try:
        owner = token_owner_ask(access_token=token, region=region)
    except TokenRefused as exc:
        raise OAuthFailed("wrong_region") from exc
    except TokenWithoutApp as exc:
        raise OAuthFailed("no_app_id") from exc
    except ConnectRefused as exc:
        raise OAuthFailed("intercom_unavailable") from exc
    try:
        conn, _ = _connection_save(
            workspace=membership.workspace,
            actor=membership,
            app_id=owner.app_id,
            region=region,
            method=ConnectionMethod.OAUTH,
            access_token=token,
            client_secret="",
            token_admin_id=owner.admin_id,
        )
    except AppTaken as exc:
        raise OAuthFailed("app_taken") from exc
    return conn


# ------------------------------------------------------------------------------
# Re-verifying: connections stored before ownership was proven are asked about once
# ------------------------------------------------------------------------------
VERIFIED, DISABLED, DEFERRED, SKIPPED = "verified", "disabled", "deferred", "skipped"


def connection_verify(*, connection_id: int) -> str:
    """Ask Intercom whether an active connection's token still proves its app; disable it when it does not.

    Returns `verified` (GET /me names the app), `disabled` (401, or /me names another app),
    `deferred` (Intercom unreachable, 5xx, 429 or another 4xx: left active, for the next run) or
    `skipped` (gone, already disabled, or reconnected while Intercom was being asked).
    No retry here: a deferral is the retry. No row is locked while Intercom is asked.
    """
    conn = IntercomConnection.objects.filter(pk=connection_id, disabled_at__isnull=True).first()
    if conn is None:
        return SKIPPED
    token, app_id = conn.access_token, conn.app_id
    log = {"workspace_id": conn.workspace_id, "app_id": app_id, "connection_id": conn.id}
    disable: tuple[str, str] | None = None
    owner = None
    now = timezone.now()
    try:
        owner = token_owner_ask(access_token=token, region=conn.region, api_version=conn.api_version, retries=0)
    except TokenRefused as exc:
        if exc.intercom_status not in (401, None):
            logger.warning("intercom connection not verified: left for the next run", extra=log | {"error": str(exc)})
            return DEFERRED
        refusal = "refused this connection's access token (401)" if exc.intercom_status else "cannot take this token"
        disable = (
            DisabledCode.TOKEN_REFUSED,
            f"Intercom {refusal} when Cue checked on {_when(now)} that it belongs "
            f"to Intercom workspace {app_id}. Nothing from {app_id} reaches this workspace until an owner connects "
            "it again (OAuth, or a new token).",
        )
    except ConnectRefused as exc:
        logger.warning("intercom connection not verified: left for the next run", extra=log | {"error": str(exc)})
        return DEFERRED
    else:
        if owner.app_id != app_id:
            disable = (
                DisabledCode.APP_MISMATCH,
                f"Cue checked on {_when(now)} whether this connection's access token belongs to Intercom workspace "
                f"{app_id}: Intercom says it belongs to {owner.app_id}. It does not prove this workspace owns "
                f"{app_id}, so nothing from {app_id} reaches it. An owner of {app_id} can connect it again (OAuth, "
                "or a token of that Intercom workspace).",
            )
    with transaction.atomic():
        current = IntercomConnection.objects.select_for_update().filter(pk=connection_id).first()
        if current is None or not current.is_active or current.app_id != app_id or current.access_token != token:
            return SKIPPED  # reconnected (and proven by that install) or disabled meanwhile
        if disable is not None:
            _connection_disable(current, code=disable[0], reason=disable[1], now=now)
            return DISABLED
        current.verified_at = now
        current.token_admin_id = owner.admin_id or current.token_admin_id
        current.save(update_fields=["verified_at", "token_admin_id", "updated_at"])
    logger.info("intercom connection verified", extra=log)
    return VERIFIED


def connections_verify(*, include_verified: bool = False, limit: int = 200) -> dict:
    """Verify the active connections Intercom never confirmed (all active ones with `include_verified`).

    Stops before the Lambda invocation's deadline (one /me call's timeouts and the task margin);
    what is left, and what was deferred, is picked up by the next run.
    """
    pending = IntercomConnection.objects.filter(disabled_at__isnull=True)
    if not include_verified:
        pending = pending.filter(verified_at__isnull=True)
    ids = list(pending.order_by("id").values_list("id", flat=True)[:limit])
    counts = dict.fromkeys([VERIFIED, DISABLED, DEFERRED, SKIPPED, "left"], 0)
    needed = sum(_request_path_timeouts().values()) + settings.CUE_TASK_DEADLINE_MARGIN_SECONDS
    for index, connection_id in enumerate(ids):
        remaining = remaining_seconds()
        if remaining is not None and remaining < needed:
            counts["left"] = len(ids) - index
            break
        counts[connection_verify(connection_id=connection_id)] += 1
    if ids:
        logger.info("intercom connections verified", extra=counts)
    return counts


def admins_sync(*, workspace_id: int) -> dict:
    """Fetch the Intercom workspace's teammates and map them to Cue members by email.

    Intercom is called with no transaction open; the writes then commit in one short transaction.
    Intercom's errors propagate: a refused token (401) is permanent (the sync_admins task is
    recorded rejected with the reason: the owner must reconnect), a 429/5xx is retried.
    """
    conn = selectors.connection_for_workspace(workspace=workspace_id)
    if conn is None:
        return {"synced": 0, "skipped": "not connected (or the connection is disabled)"}
    client = IntercomClient.for_connection(conn)
    me = client.me()
    admins = client.list_admins()
    with transaction.atomic():
        return _admins_store(conn=conn, me=me, admins=admins)


def _admins_store(*, conn: IntercomConnection, me: dict, admins: list[dict]) -> dict:
    workspace_id = conn.workspace_id
    members = {m.user.email.lower(): m for m in membership_list(workspace=conn.workspace)}
    seen = []
    for admin in admins:
        intercom_id = str(admin.get("id") or "")
        if not intercom_id:
            continue
        email = str(admin.get("email") or "")[:254]
        IntercomAdmin.objects.update_or_create(
            workspace_id=workspace_id,
            intercom_id=intercom_id,
            defaults={
                "name": str(admin.get("name") or "")[:200],
                "email": email,
                "membership": members.get(email.lower()) if email else None,
            },
        )
        seen.append(intercom_id)
    IntercomAdmin.objects.filter(workspace_id=workspace_id).exclude(intercom_id__in=seen).delete()
    conn.token_admin_id = str(me.get("id") or conn.token_admin_id)
    conn.admins_synced_at = timezone.now()
    conn.save(update_fields=["token_admin_id", "admins_synced_at", "updated_at"])
    return {"synced": len(seen), "mapped": sum(1 for a in admins if str(a.get("email") or "").lower() in members)}


# ------------------------------------------------------------------------------
# Receiving: the webhook endpoint's work (fast: verify, store, dispatch)
# ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    status: int
    body: dict = field(default_factory=dict)


def refuse(status: int, code: str, message: str) -> Answer:
    return Answer(status, error_body(code, message))


@dataclass(frozen=True)
class Verified:
    """A body whose signature matched: which secret (None: Cue's app secret) and the connections it named."""

    secret_owner: IntercomConnection | None
    connections: dict[str, IntercomConnection]


def request_verify(*, body: bytes, given: str, sign) -> Verified | None:
    """Check a signature against Cue's app secret, then against the own secret of the workspace the body names.

    One query at most. Nothing of the body is trusted here: it only chooses the secret.
    """
    connections = selectors.connections_for_app_ids(app_ids=signatures.app_id_candidates(body))
    app_secret = settings.INTERCOM_CLIENT_SECRET
    if app_secret and signatures.matches(sign(app_secret, body), given):
        return Verified(secret_owner=None, connections=connections)
    for conn in connections.values():
        if conn.client_secret and signatures.matches(sign(conn.client_secret, body), given):
            return Verified(secret_owner=conn, connections=connections)
    return None


def verified_connection(verified: Verified, app_id: str) -> IntercomConnection | None:
    """The connection of the app id the verified body names; a workspace's own secret only speaks for itself."""
    if verified.secret_owner is not None:
        return verified.secret_owner if verified.secret_owner.app_id == app_id else None
    if app_id in verified.connections:
        return verified.connections[app_id]
    return selectors.connections_for_app_ids(app_ids=[app_id]).get(app_id)


def _delivery_insert(*, workspace_id: int, notification: payloads.Notification, body: str) -> int | None:
    """Insert the delivery unless this notification is already stored: its id, or None for a redelivery (one query)."""
    ops = connection.ops
    table = ops.quote_name(WebhookDelivery._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (workspace_id, notification_id, topic, body, status, event_created_at, received_at) "  # noqa: S608 - the table name is ours
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (workspace_id, notification_id) DO NOTHING RETURNING id",
            [
                workspace_id,
                notification.notification_id,
                notification.topic[:100],
                body,
                DeliveryStatus.RECEIVED,
                ops.adapt_datetimefield_value(notification.created_at),
                ops.adapt_datetimefield_value(timezone.now()),
            ],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def webhook_receive(*, body: bytes, signature: str | None) -> Answer:
    """Everything the webhook endpoint does, in order; nothing is stored or sent unless every check passed.

    Three statements for a new delivery (find the connection, insert the delivery, the task's
    ledger row), two for a redelivery. The delivery and its task's ledger row commit
    in one transaction or not at all: a failure between them (a lost connection: 503 from
    project.middleware) stores nothing, and Intercom's retry stores both. The task is published
    after the commit, with one quick try while Intercom waits (apps.tasks.publisher); a publish
    that fails leaves the row to the sweeper.
    """
    given = signatures.well_formed_hub_signature(signature)
    if given is None:
        return refuse(401, "signature_missing", "X-Hub-Signature (sha1=<hex HMAC of the body>) is required.")
    verified = request_verify(body=body, given=given, sign=signatures.hub_signature)
    if verified is None:
        return refuse(401, "signature_invalid", "X-Hub-Signature does not match the body.")
    try:
        text = body.decode("utf-8")
        notification = payloads.notification_parse(body)
    except (UnicodeDecodeError, payloads.PayloadError) as exc:
        return refuse(400, "invalid_payload", str(exc) if isinstance(exc, payloads.PayloadError) else "Not UTF-8.")
    if verified.secret_owner is not None and verified.secret_owner.app_id != notification.app_id:
        return refuse(401, "signature_invalid", "The signature is not that of the named Intercom workspace.")
    if notification.topic == payloads.PING_TOPIC:
        return Answer(200, {"status": "pong"})
    conn = verified_connection(verified, notification.app_id)
    if conn is None:
        # Signed by Cue's app but for an Intercom workspace no Cue workspace holds (uninstalled, or
        # not connected yet): acknowledged so Intercom does not pause the app's subscription for
        # everyone, and nothing is kept. See docs/intercom.md, "404 or 202".
        logger.info("intercom webhook for an unknown app", extra={"app_id": notification.app_id})
        return Answer(202, {"status": "unknown_app"})
    if notification.topic not in payloads.CONVERSATION_TOPICS:
        return Answer(200, {"status": "ignored"})
    from apps.integrations.tasks import process_delivery

    # No savepoint: this is the request's only transaction, and a failure inside it is answered 5xx.
    with transaction.atomic(savepoint=False):
        delivery_id = _delivery_insert(workspace_id=conn.workspace_id, notification=notification, body=text)
        if delivery_id is None:
            return Answer(200, {"status": "duplicate"})
        process_delivery.dispatch(args=[delivery_id], workspace_id=conn.workspace_id)
    return Answer(200, {"status": "accepted"})


REDISPATCH_AFTER = timedelta(minutes=10)


def deliveries_redispatch_stale(*, now=None, limit: int = 500) -> int:
    """Dispatch again, once, each delivery still unprocessed long after it arrived (its task was lost or is stuck).

    Processing is idempotent (a processed delivery is left alone), so a second task is harmless.
    """
    now = now or timezone.now()
    from apps.integrations.tasks import process_delivery

    with transaction.atomic():
        stale = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.RECEIVED, received_at__lt=now - REDISPATCH_AFTER, redispatched_at=None)
            .only("id", "workspace_id")[:limit]
        )
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in stale]).update(redispatched_at=now)
        for delivery in stale:
            process_delivery.dispatch(args=[delivery.id], workspace_id=delivery.workspace_id)
    if stale:
        logger.warning("intercom deliveries dispatched again", extra={"count": len(stale)})
    return len(stale)


# ------------------------------------------------------------------------------
# Mirroring: the worker
# ------------------------------------------------------------------------------
def delivery_process(*, delivery_id: int) -> dict:
    """Mirror one stored delivery into conversations and messages, once.

    One short transaction of its own (the process_delivery task opens none): the delivery row is
    locked, mirrored and marked processed together, so a redelivered task, or one run again after
    dying before its success mark, finds it processed and returns what was recorded. An unreadable
    body is marked skipped (committed) and raises DeliveryUnreadable: the task is rejected, with
    the reason, and never retried.
    """
    unreadable = None
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.status != DeliveryStatus.RECEIVED:
            return delivery.result or {}
        conn = selectors.connection_for_workspace(workspace=delivery.workspace_id, include_disabled=True)
        if conn is not None and not conn.is_active:
            # Stored while the connection still routed (a squatter's, before it was disabled): not mirrored.
            delivery.status, delivery.result = DeliveryStatus.SKIPPED, {"skipped": "connection_disabled"}
        else:
            try:
                notification = payloads.notification_parse(delivery.body.encode())
                data = payloads.conversation_from_item(
                    notification.item, app_id=notification.app_id, region=conn.region if conn else Region.US
                )
            except payloads.PayloadError as exc:
                unreadable = exc
                delivery.status, delivery.result = DeliveryStatus.SKIPPED, {"error": str(exc)}
            else:
                result = conversation_upsert_from_intercom(
                    workspace_id=delivery.workspace_id, data=data, event_at=notification.created_at
                )
                delivery.status, delivery.result = DeliveryStatus.PROCESSED, result.as_dict()
        delivery.processed_at = timezone.now()
        delivery.save(update_fields=["status", "result", "processed_at"])
    if unreadable is not None:
        raise DeliveryUnreadable(f"delivery {delivery_id} skipped: {unreadable}") from unreadable
    return delivery.result


# ------------------------------------------------------------------------------
# Talking back: replies, sent once each by the send_reply task
# ------------------------------------------------------------------------------
def _admin_of(membership: Membership | None) -> str:
    if membership is None:
        return ""
    ids = selectors.admin_ids_of_member(membership=membership)
    return ids[0] if ids else ""


def reply_request(
    *,
    workspace: Workspace,
    conversation: Conversation,
    body: str,
    kind: str = ReplyKind.COMMENT,
    admin_id: str = "",
    requested_by: Membership | None = None,
    source: str = "",
    source_id: str = "",
) -> OutboundReply:
    """Queue a reply or note to an Intercom conversation; the send_reply task posts it after commit.

    Sent as `admin_id`, else the requesting member's Intercom teammate, else the token's own admin.
    """
    if conversation.workspace_id != workspace.id:
        raise ValidationError({"conversation": ["Not a conversation of this workspace."]})
    if kind not in ReplyKind.values:
        raise ValidationError({"kind": [f"One of {', '.join(ReplyKind.values)}."]})
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": ["A reply needs a body."]})
    if len(body) > MAX_REPLY_CHARS:
        raise ValidationError({"body": [f"At most {MAX_REPLY_CHARS} characters."]})
    conn = selectors.connection_for_workspace(workspace=workspace, include_disabled=True)
    if conn is None:
        raise ValidationError({"intercom": ["Intercom is not connected."]})
    if not conn.is_active:
        raise ValidationError({"intercom": [f"The Intercom connection is disabled: {conn.disabled_reason}"]})
    admin_id = admin_id or _admin_of(requested_by) or conn.token_admin_id
    if not admin_id:
        raise ValidationError({"admin_id": ["No Intercom teammate to send as: sync teammates or reconnect."]})
    from apps.integrations.tasks import reply_failed, send_reply

    with transaction.atomic():
        reply = OutboundReply.objects.create(
            workspace=workspace,
            conversation=conversation,
            kind=kind,
            body=body,
            admin_id=admin_id,
            requested_by=requested_by,
            source=source[:40],
            source_id=str(source_id)[:64],
        )
        run = send_reply.dispatch(args=[reply.id], workspace_id=workspace.id, error_callback=reply_failed)
        reply.task_id = run.id
        reply.save(update_fields=["task_id"])
    return reply


def _reply_result(reply: OutboundReply) -> dict:
    return {"reply_id": reply.id, "status": reply.status, "intercom_part_id": reply.intercom_part_id}


def _reply_fail(reply: OutboundReply, error: str) -> None:
    """Pending → failed (shown to the agent), in a statement of its own: a reply sent meanwhile stays sent."""
    OutboundReply.objects.filter(pk=reply.pk, status=ReplyStatus.PENDING).update(
        status=ReplyStatus.FAILED, error=error[:2000]
    )
    logger.warning("intercom reply failed", extra={"reply_id": reply.id, "error": error[:500]})


def _same_text(a: str, b: str) -> bool:
    return " ".join(html_to_text(a).split()) == " ".join(html_to_text(b).split())


def _matching_parts(conversation: dict, reply: OutboundReply, *, not_before: float) -> list[dict]:
    container = conversation.get("conversation_parts")
    parts = container.get("conversation_parts") if isinstance(container, dict) else container
    return [
        part
        for part in (parts if isinstance(parts, list) else [])
        if isinstance(part, dict)
        and str((part.get("author") or {}).get("id") or "") == reply.admin_id
        and part.get("part_type") == reply.kind
        and (part.get("created_at") or 0) >= not_before
        and _same_text(str(part.get("body") or ""), reply.body)
    ]


def _earlier_attempt_may_have_sent(reply: OutboundReply) -> bool:
    """True when the ledger shows an earlier attempt of this reply's task (it may have died after Intercom posted)."""
    if reply.task_id is None:
        return True
    try:
        return task_run_get(workspace=reply.workspace_id, task_id=reply.task_id).attempts > 1
    except TaskRun.DoesNotExist:
        return True


def reply_send(*, reply_id: int) -> dict:
    """Post one queued reply, once, with no transaction open and no row locked while Intercom is called.

    The send_reply task opens no transaction (`atomic=False`): its ledger claim, committed before
    this runs, is the reply's send claim. A delivery of the same task while this one holds a live
    claim is skipped as busy, so two posts of one reply never overlap. Then, each step short:

    1. read the reply: not pending any more (sent, failed) → nothing to do;
    2. if an earlier attempt of the task may have posted (the ledger shows one: it died, timed
       out, or Intercom answered 5xx), read the conversation and adopt the matching part (same
       teammate, kind and text, posted since the reply was queued) instead of posting;
    3. post;
    4. record: pending → sent with Intercom's part id, one conditional UPDATE.

    Intercom's reply endpoint has no idempotency key, so one window is left: an attempt dies (or
    times out) after Intercom accepted the post, and Intercom does not list the part yet when the
    retry reads the conversation (after the dead attempt's lease and a backoff, tens of seconds
    later); only then is the reply posted twice. A retry never posts without that read.

    Errors: permanent ones (401, 404, other 4xx: `retryable` False; no connection) mark the reply
    failed and propagate, so the task is recorded rejected with the reason; retryable ones (429,
    5xx, timeouts) propagate with the reply still pending: the task retries with backoff, and
    when it is dead its error callback (reply_failed) marks the reply failed.
    """
    reply = OutboundReply.objects.select_related("conversation").get(pk=reply_id)
    if reply.status != ReplyStatus.PENDING:
        return _reply_result(reply)
    conn = selectors.connection_for_workspace(workspace=reply.workspace_id, include_disabled=True)
    if conn is None:
        error = "Intercom was disconnected before the reply was sent."
    elif not conn.is_active:
        error = f"The Intercom connection was disabled before sending: {conn.disabled_reason}"
    else:
        error = ""
    if error:
        _reply_fail(reply, error)
        raise ReplyNotSendable(error)
    client = IntercomClient.for_connection(conn)
    conversation_id = reply.conversation.intercom_id
    not_before = reply.created_at.timestamp() - 5
    part_id = None
    try:
        if _earlier_attempt_may_have_sent(reply):
            found = _matching_parts(client.get_conversation(conversation_id), reply, not_before=not_before)
            part_id = str(found[-1]["id"]) if found else None
        if part_id is None:
            response = client.reply_to_conversation(
                conversation_id, admin_id=reply.admin_id, body=reply.body, message_type=reply.kind
            )
            posted = _matching_parts(response, reply, not_before=not_before)
            part_id = str(posted[-1]["id"]) if posted else ""
    except IntercomError as exc:
        if not exc.retryable:
            # A revoked token, a deleted conversation, a refused body: no retry will help.
            _reply_fail(reply, str(exc))
        raise
    sent_at = timezone.now()
    OutboundReply.objects.filter(pk=reply.pk, status=ReplyStatus.PENDING).update(
        status=ReplyStatus.SENT, intercom_part_id=part_id, sent_at=sent_at, error=""
    )
    reply.refresh_from_db(fields=["status", "intercom_part_id", "sent_at", "error"])
    logger.info("intercom reply sent", extra={"reply_id": reply.id, "part_id": part_id})
    return _reply_result(reply)


def reply_mark_failed(*, task_id: str, error: str) -> int:
    """The send_reply task ran out of attempts: its reply is failed (shown to the agent), not left pending."""
    return OutboundReply.objects.filter(task_id=task_id, status=ReplyStatus.PENDING).update(
        status=ReplyStatus.FAILED, error=error[:2000]
    )


def deliveries_purge(*, workspace_id: int, before, limit: int) -> int:
    """Delete up to `limit` processed or skipped deliveries of a workspace received before `before`.

    A delivery not yet processed is kept whatever its age: it is still work (the redispatch job's).
    """
    from apps.integrations.models import DeliveryStatus, WebhookDelivery

    done = WebhookDelivery.objects.filter(
        workspace_id=workspace_id,
        status__in=[DeliveryStatus.PROCESSED, DeliveryStatus.SKIPPED],
        received_at__lt=before,
    )
    ids = list(done.order_by("received_at").values_list("id", flat=True)[:limit])
    deleted, _ = WebhookDelivery.objects.filter(pk__in=ids).delete()
    return deleted
