"""Writes for Intercom: connect and disconnect, receive webhooks, mirror them, send replies, sync teammates."""

import logging
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
    exchange_oauth_code,
)
from apps.integrations.models import (
    ConnectionMethod,
    DeliveryStatus,
    IntercomAdmin,
    IntercomConnection,
    OutboundReply,
    Region,
    ReplyKind,
    ReplyStatus,
    WebhookDelivery,
)
from apps.tasks.models import TaskRun
from apps.tasks.selectors import task_run_get
from project.api import error_body
from project.html import html_to_text

logger = logging.getLogger(__name__)

OAUTH_STATE_SALT = "cue.integrations.intercom.oauth-state"
OAUTH_STATE_MAX_AGE_SECONDS = 600
MAX_REPLY_CHARS = 20_000


class AppTaken(Exception):
    """The Intercom workspace is already connected to another Cue workspace."""


# ------------------------------------------------------------------------------
# Connecting
# ------------------------------------------------------------------------------
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
    token_admin_id: str = "",
) -> tuple[IntercomConnection, bool]:
    if IntercomConnection.objects.filter(app_id=app_id).exclude(workspace=workspace).exists():
        raise AppTaken(app_id)
    conn = IntercomConnection.objects.select_for_update().filter(workspace=workspace).first()
    created = conn is None
    if created:
        conn = IntercomConnection(workspace=workspace)
    conn.app_id = app_id
    conn.region = region
    conn.method = method
    conn.access_token = access_token
    conn.client_secret = client_secret
    conn.token_admin_id = token_admin_id
    # Each (re)connection pins the API version Cue is written against today.
    conn.api_version = settings.INTERCOM_API_VERSION
    conn.connected_by = actor
    try:
        with transaction.atomic():
            conn.save()
    except IntegrityError as exc:  # another workspace took the app id between the check and the save
        raise AppTaken(app_id) from exc
    from apps.integrations.tasks import sync_admins

    sync_admins.dispatch(args=[workspace.id], workspace_id=workspace.id)
    logger.info(
        "intercom connected",
        extra={"workspace_id": workspace.id, "app_id": app_id, "region": region, "method": method},
    )
    return conn, created


def connection_set_token(
    *, actor: Membership, access_token: str, client_secret: str, app_id: str, region: str
) -> tuple[IntercomConnection, bool]:
    """Connect with a pasted access token of the workspace's own Intercom app (and that app's client secret).

    AppTaken when another Cue workspace holds that Intercom workspace.
    """
    return _connection_save(
        workspace=actor.workspace,
        actor=actor,
        app_id=app_id,
        region=region,
        method=ConnectionMethod.TOKEN,
        access_token=access_token,
        client_secret=client_secret,
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
        token = exchange_oauth_code(code=code)
    except IntercomError as exc:
        logger.warning("intercom oauth code exchange failed", extra={"error": str(exc)})
        raise OAuthFailed("exchange_failed") from exc
    client = IntercomClient(
        access_token=token,
        base_url=settings.INTERCOM_API_HOSTS[region],
        api_version=settings.INTERCOM_API_VERSION,
        max_retries=1,
    )
    try:
        me = client.me()
    except IntercomAuthError as exc:
        raise OAuthFailed("wrong_region") from exc
    except IntercomError as exc:
        raise OAuthFailed("intercom_unavailable") from exc
    app = me.get("app") if isinstance(me.get("app"), dict) else {}
    app_id = str(app.get("id_code") or "")
    if not app_id:
        raise OAuthFailed("no_app_id")
    try:
        conn, _ = _connection_save(
            workspace=membership.workspace,
            actor=membership,
            app_id=app_id,
            region=region,
            method=ConnectionMethod.OAUTH,
            access_token=token,
            client_secret="",
            token_admin_id=str(me.get("id") or ""),
        )
    except AppTaken as exc:
        raise OAuthFailed("app_taken") from exc
    return conn


def admins_sync(*, workspace_id: int) -> dict:
    """Fetch the Intercom workspace's teammates and map them to Cue members by email."""
    conn = selectors.connection_for_workspace(workspace=workspace_id)
    if conn is None:
        return {"synced": 0, "skipped": "not connected"}
    client = IntercomClient.for_connection(conn)
    try:
        me = client.me()
        admins = client.list_admins()
    except (IntercomAuthError, IntercomNotFound, IntercomClientError) as exc:
        # Not worth retrying: the owner must reconnect. Shown in the task's result.
        logger.warning("intercom teammates not synced", extra={"workspace_id": workspace_id, "error": str(exc)})
        return {"synced": 0, "error": str(exc)}
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
    """Mirror one stored delivery into conversations and messages (once: a processed delivery is left alone)."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    if delivery.status != DeliveryStatus.RECEIVED:
        return delivery.result or {}
    conn = selectors.connection_for_workspace(workspace=delivery.workspace_id)
    try:
        notification = payloads.notification_parse(delivery.body.encode())
        data = payloads.conversation_from_item(
            notification.item, app_id=notification.app_id, region=conn.region if conn else Region.US
        )
    except payloads.PayloadError as exc:
        # Retrying cannot fix a body: recorded and skipped.
        delivery.status, delivery.result = DeliveryStatus.SKIPPED, {"error": str(exc)}
    else:
        result = conversation_upsert_from_intercom(
            workspace_id=delivery.workspace_id, data=data, event_at=notification.created_at
        )
        delivery.status, delivery.result = DeliveryStatus.PROCESSED, result.as_dict()
    delivery.processed_at = timezone.now()
    delivery.save(update_fields=["status", "result", "processed_at"])
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
    conn = selectors.connection_for_workspace(workspace=workspace)
    if conn is None:
        raise ValidationError({"intercom": ["Intercom is not connected."]})
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


def _reply_fail(reply: OutboundReply, error: str) -> dict:
    reply.status, reply.error = ReplyStatus.FAILED, error[:2000]
    reply.save(update_fields=["status", "error"])
    logger.warning("intercom reply failed", extra={"reply_id": reply.id, "error": error[:500]})
    return _reply_result(reply)


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
    """Post one queued reply, once.

    The reply row is locked for the attempt and marked sent with Intercom's part id in the same
    transaction as the task's ledger row, so a redelivered task finds it sent and does nothing.
    The residual window: Intercom accepted the post but the attempt died before committing
    (timeout, crash). The retry then looks at the conversation first and records the part it
    finds (same teammate, kind and text, posted since the reply was queued) instead of posting
    again; a duplicate is possible only if Intercom does not show the part yet on that read.
    """
    reply = OutboundReply.objects.select_for_update().select_related("conversation").get(pk=reply_id)
    if reply.status != ReplyStatus.PENDING:
        return _reply_result(reply)
    conn = selectors.connection_for_workspace(workspace=reply.workspace_id)
    if conn is None:
        return _reply_fail(reply, "Intercom was disconnected before the reply was sent.")
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
    except (IntercomAuthError, IntercomNotFound, IntercomClientError) as exc:
        # Permanent: a revoked token, a deleted conversation, a refused body. Retrying will not help.
        return _reply_fail(reply, str(exc))
    reply.status, reply.intercom_part_id, reply.sent_at, reply.error = ReplyStatus.SENT, part_id, timezone.now(), ""
    reply.save(update_fields=["status", "intercom_part_id", "sent_at", "error"])
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
