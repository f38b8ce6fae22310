"""The inbox app (Canvas Kit): what Cue shows in an agent's conversation sidebar, and what their clicks do.

Intercom POSTs initialize (render) and submit (a button was clicked) requests signed with
X-Body-Signature. The suggestions come from apps.suggestions when it provides
`selectors.suggestions_for_canvas(*, conversation, limit)` and
`selectors.suggestion_for_canvas(*, conversation, suggestion_id)` (dicts with id, title, body,
score); until then the app shows its empty state.
"""

import importlib
import json
import logging
import re

from django.core.exceptions import ValidationError

from apps.conversations.models import Conversation
from apps.integrations import signatures
from apps.integrations.models import CanvasAction, IntercomConnection, ReplyKind
from apps.integrations.services import Answer, refuse, reply_request, request_verify, verified_connection
from project.html import html_to_markdown, html_to_text, markdown_escape
from project.parsers import JSONDocumentError, json_loads

logger = logging.getLogger(__name__)

# Canvas Kit refuses a canvas over 64 KB; stay under it with room to spare.
CANVAS_MAX_BYTES = 60_000
SUGGESTION_LIMIT = 5
SUGGESTION_PREVIEW_CHARS = 1_000
REPLY_INPUT_ID = "reply_text"
NOT_CONNECTED = "This Intercom workspace is not connected to Cue yet."


def _suggestions_selectors():
    try:
        return importlib.import_module("apps.suggestions.selectors")
    except ImportError:
        return None


def suggestions_for(conversation: Conversation | None) -> list[dict]:
    module = _suggestions_selectors()
    if conversation is None or module is None or not hasattr(module, "suggestions_for_canvas"):
        return []
    return list(module.suggestions_for_canvas(conversation=conversation, limit=SUGGESTION_LIMIT))


def suggestion_for(conversation: Conversation, suggestion_id: int) -> dict | None:
    module = _suggestions_selectors()
    if module is None or not hasattr(module, "suggestion_for_canvas"):
        return None
    return module.suggestion_for_canvas(conversation=conversation, suggestion_id=suggestion_id)


# ------------------------------------------------------------------------------
# Building canvases
# ------------------------------------------------------------------------------
def _text(text: str, style: str = "paragraph") -> dict:
    """A text component: plain text or the little Markdown Canvas Kit renders (bold, links), never HTML."""
    return {"type": "text", "text": text, "style": style}


# An unfinished link at the end of a cut preview: `[text](http...` or `[text` (an escaped `\[` is text).
_OPEN_LINK = re.compile(r"(?<!\\)\[[^\]]*(\]\([^)]*)?$")


def _preview(markdown: str, chars: int) -> str:
    """The entry's Markdown cut to `chars`, at a word, without a half link or an unclosed bold."""
    if len(markdown) <= chars:
        return markdown
    cut = markdown[: max(0, chars - 1)]
    cut = cut.rsplit(" ", 1)[0] if " " in cut else cut
    cut = _OPEN_LINK.sub("", cut)
    if cut.count("**") % 2:  # the bold's end was cut off: its start goes too
        start = cut.rfind("**")
        cut = cut[:start] + cut[start + 2 :]
    return cut.rstrip() + "…"


def _button(component_id: str, label: str, style: str = "primary") -> dict:
    return {"type": "button", "id": component_id, "label": label, "style": style, "action": {"type": "submit"}}


def _suggestion_components(suggestion: dict, preview_chars: int) -> list[dict]:
    sid = suggestion["id"]
    body = _preview(html_to_markdown(str(suggestion.get("body") or "")), preview_chars)
    components = []
    if suggestion.get("title"):
        components.append(_text(f"**{markdown_escape(html_to_text(suggestion['title']))}**"))
    components += [
        _text(body),
        _button(f"send:{sid}", "Send reply"),
        _button(f"note:{sid}", "Add as note", "secondary"),
        _button(f"dismiss:{sid}", "Dismiss", "link"),
        {"type": "divider"},
    ]
    return components


def suggestions_canvas(suggestions: list[dict], *, notice: str = "", error: str = "") -> dict:
    """The sidebar: a notice, the suggestions (trimmed until the canvas fits Canvas Kit's size), a reply box."""
    head = [_text("Suggested replies", "header")]
    if notice:
        head.append(_text(notice, "muted"))
    if error:
        head.append(_text(error, "error"))
    tail = [
        {"type": "textarea", "id": REPLY_INPUT_ID, "label": "Or write a reply", "error": bool(error)},
        _button("send_text", "Send reply"),
        _button("note_text", "Add as note", "secondary"),
    ]
    preview_chars = SUGGESTION_PREVIEW_CHARS
    shown = list(suggestions)
    while True:
        body = []
        for suggestion in shown:
            body += _suggestion_components(suggestion, preview_chars)
        if not shown:
            body = [_text("No suggestions yet for this conversation.", "muted"), {"type": "divider"}]
        canvas = {"canvas": {"content": {"components": head + body + tail}}}
        if len(json.dumps(canvas).encode()) <= CANVAS_MAX_BYTES:
            return canvas
        # Too big: shorten previews first, then show fewer suggestions.
        if preview_chars > 200:
            preview_chars //= 2
        elif shown:
            shown.pop()
        else:
            return {"canvas": {"content": {"components": [_text("Suggested replies", "header")]}}}


def message_canvas(text: str, style: str = "muted") -> dict:
    return {"canvas": {"content": {"components": [_text("Suggested replies", "header"), _text(text, style)]}}}


# ------------------------------------------------------------------------------
# The two requests
# ------------------------------------------------------------------------------
def _read(body: bytes, signature: str | None) -> tuple[Answer | None, dict, IntercomConnection | None]:
    """Verify and parse a Canvas Kit request: (refusal, payload, connection)."""
    given = signatures.well_formed_body_signature(signature)
    if given is None:
        return refuse(401, "signature_missing", "X-Body-Signature (hex HMAC-SHA256 of the body) is required."), {}, None
    verified = request_verify(body=body, given=given, sign=signatures.body_signature)
    if verified is None:
        return refuse(401, "signature_invalid", "X-Body-Signature does not match the body."), {}, None
    try:
        payload = json_loads(body, repair=True)
    except JSONDocumentError:
        return refuse(400, "invalid_payload", "The body is not JSON."), {}, None
    if not isinstance(payload, dict):
        return refuse(400, "invalid_payload", "The body is not a Canvas Kit request."), {}, None
    # workspace_id since Canvas Kit 2.0, app_id before.
    app_id = payload.get("workspace_id") or payload.get("app_id")
    if not isinstance(app_id, str) or not app_id:
        return refuse(400, "invalid_payload", "workspace_id: the request names its Intercom workspace."), {}, None
    conn = verified_connection(verified, app_id)
    if conn is None and verified.secret_owner is not None:
        return refuse(401, "signature_invalid", "The signature is not that of the named Intercom workspace."), {}, None
    return None, payload, conn


def _conversation_of(payload: dict, conn: IntercomConnection) -> Conversation | None:
    conversation = payload.get("conversation") if isinstance(payload.get("conversation"), dict) else {}
    intercom_id = str(conversation.get("id") or "")
    if not intercom_id:
        return None
    return Conversation.objects.filter(workspace_id=conn.workspace_id, intercom_id=intercom_id).first()


def canvas_initialize(*, body: bytes, signature: str | None) -> Answer:
    """Render the sidebar for a conversation: its latest suggestions, or the empty state."""
    refusal, payload, conn = _read(body, signature)
    if refusal:
        return refusal
    if conn is None:
        return Answer(200, message_canvas(NOT_CONNECTED))
    conversation = _conversation_of(payload, conn)
    return Answer(200, suggestions_canvas(suggestions_for(conversation)))


def _parse_component(component_id: str) -> tuple[str, int | None]:
    action, _, raw = component_id.partition(":")
    if raw:
        return (action, int(raw)) if raw.isdigit() else ("", None)
    return action, None


def canvas_submit(*, body: bytes, signature: str | None) -> Answer:
    """An agent clicked: record the choice; send or note queues the reply through the send_reply task."""
    refusal, payload, conn = _read(body, signature)
    if refusal:
        return refusal
    if conn is None:
        return Answer(200, message_canvas(NOT_CONNECTED))
    component_id = payload.get("component_id")
    if not isinstance(component_id, str) or not component_id:
        return refuse(400, "invalid_payload", "component_id: a submit names the component clicked.")
    action, suggestion_id = _parse_component(component_id)
    if action not in {"send", "note", "dismiss", "send_text", "note_text"}:
        return refuse(400, "invalid_payload", f"component_id: {component_id!r} is not a component of this app.")
    admin = payload.get("admin") if isinstance(payload.get("admin"), dict) else {}
    admin_id = str(admin.get("id") or "")
    conversation = _conversation_of(payload, conn)
    if conversation is None:
        return Answer(200, message_canvas("This conversation has not reached Cue yet; try again in a moment."))

    text = ""
    if action in {"send_text", "note_text"}:
        inputs = payload.get("input_values") if isinstance(payload.get("input_values"), dict) else {}
        text = str(inputs.get(REPLY_INPUT_ID) or "").strip()
        if not text:
            return Answer(200, suggestions_canvas(suggestions_for(conversation), error="Write a reply first."))
    elif suggestion_id is None:
        return refuse(400, "invalid_payload", "component_id: the suggestion is missing.")
    elif action != "dismiss":
        suggestion = suggestion_for(conversation, suggestion_id)
        if suggestion is None:
            return Answer(200, suggestions_canvas(suggestions_for(conversation), error="That suggestion is gone."))
        text = str(suggestion.get("body") or "")

    reply = None
    if action != "dismiss":
        try:
            reply = reply_request(
                workspace=conn.workspace,
                conversation=conversation,
                body=text,
                kind=ReplyKind.NOTE if action.startswith("note") else ReplyKind.COMMENT,
                admin_id=admin_id,
                source="canvas",
                source_id=str(suggestion_id or ""),
            )
        except ValidationError as exc:
            message = next(iter(exc.message_dict.values()))[0] if hasattr(exc, "error_dict") else exc.messages[0]
            return Answer(200, suggestions_canvas(suggestions_for(conversation), error=message))
    if suggestion_id is not None:
        # The click is the agent's verdict: the ranker learns from it as from the API's feedback.
        from apps.suggestions.services import suggestion_feedback_from_canvas

        suggestion_feedback_from_canvas(
            workspace_id=conn.workspace_id,
            conversation_id=conversation.id,
            suggestion_id=suggestion_id,
            action="dismiss" if action == "dismiss" else "accept",
            reply=reply,
        )
    CanvasAction.objects.create(
        workspace_id=conn.workspace_id,
        conversation=conversation,
        intercom_conversation_id=conversation.intercom_id,
        admin_id=admin_id,
        action=action,
        suggestion_id=suggestion_id,
        reply=reply,
    )
    notice = {
        "dismiss": "Dismissed.",
        "send": "Reply on its way: it appears in the conversation in a moment.",
        "send_text": "Reply on its way: it appears in the conversation in a moment.",
        "note": "Note on its way: it appears in the conversation in a moment.",
        "note_text": "Note on its way: it appears in the conversation in a moment.",
    }[action]
    return Answer(200, suggestions_canvas(suggestions_for(conversation), notice=notice))
