"""The inbox app (Canvas Kit): initialize and submit, signed with X-Body-Signature, within Canvas Kit's 64 KB."""

import json
import types
from pathlib import Path

import jsonschema
import pytest

from apps.conversations.models import Conversation
from apps.integrations.canvas import CANVAS_MAX_BYTES, suggestions_canvas
from apps.integrations.models import CanvasAction, ConnectionMethod, OutboundReply
from apps.tasks.models import TaskRun
from tests.integrations.conftest import OWN_SECRET
from tests.integrations.intercom_payloads import ADMIN, APP_ID, APP_SECRET, CUSTOMER, body_signature, hub_signature

pytestmark = pytest.mark.django_db

INIT, SUBMIT = "/intercom/canvas/initialize", "/intercom/canvas/submit"
SUGGESTIONS = [
    {"id": 11, "title": "Refunds", "body": "Refunds reach your card in 5-7 days.", "score": 0.91},
    {"id": 12, "title": "Double charge", "body": "A double charge is reversed automatically.", "score": 0.74},
]


def canvas_request(conversation_id="123", app_id=APP_ID, **extra) -> dict:
    """An Inbox initialize request as Canvas Kit 2.x sends it."""
    return {
        "workspace_id": app_id,
        "workspace_region": "us",
        "admin": {"type": "admin", "id": ADMIN["id"], "name": ADMIN["name"], "email": ADMIN["email"]},
        "conversation": {"type": "conversation", "id": conversation_id, "state": "open"},
        "contact": {"type": "contact", "id": CUSTOMER["id"], "role": "lead"},
        "context": {"conversation_id": int(conversation_id), "location": "conversation", "locale": "en"},
        "card_creation_options": {},
    } | extra


def submit_request(component_id: str, reply_text: str = "", **extra) -> dict:
    return canvas_request(
        component_id=component_id,
        input_values={"reply_text": reply_text},
        current_canvas={"content": {"components": []}},
        **extra,
    )


@pytest.fixture
def post_canvas(client):
    def post(path, payload, *, secret=APP_SECRET, signature=None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if signature is None:
            signature = body_signature(secret, body)
        extra = {} if signature is False else {"HTTP_X_BODY_SIGNATURE": signature}
        return client.post(path, data=body, content_type="application/json", **extra)

    return post


@pytest.fixture
def conversation(connection) -> Conversation:
    return Conversation.objects.create(workspace_id=connection.workspace_id, intercom_id="123")


@pytest.fixture
def with_suggestions(monkeypatch):
    """apps.suggestions' selectors as that issue will provide them (it does not exist yet)."""
    module = types.ModuleType("apps.suggestions.selectors")
    module.suggestions_for_canvas = lambda *, conversation, limit: SUGGESTIONS[:limit]
    module.suggestion_for_canvas = lambda *, conversation, suggestion_id: next(
        (s for s in SUGGESTIONS if s["id"] == suggestion_id), None
    )
    monkeypatch.setitem(__import__("sys").modules, "apps.suggestions.selectors", module)
    return module


# Intercom's Canvas Kit reference (text, button, text area, divider) as a JSON Schema.
CANVAS_KIT = json.loads((Path(__file__).parent / "canvas_kit_schema.json").read_text())
HTML_ENTITY = "&(#[0-9]+|#x[0-9a-f]+|[a-z]+);"


def assert_canvas_kit(canvas: dict) -> None:
    """Valid for Canvas Kit, and no text component carries HTML (markup or entities): Intercom shows it raw."""
    jsonschema.validate(canvas, CANVAS_KIT, cls=jsonschema.Draft202012Validator)
    for component in canvas["canvas"]["content"]["components"]:
        if component["type"] == "text":
            assert "<" not in component["text"], component
            assert not __import__("re").search(HTML_ENTITY, component["text"], flags=2), component


def components(response) -> list[dict]:
    assert response.status_code == 200, response.content
    assert len(response.content) <= 64 * 1024
    assert_canvas_kit(response.json())
    return response.json()["canvas"]["content"]["components"]


def texts(response) -> list[str]:
    return [c["text"] for c in components(response) if c["type"] == "text"]


def button_ids(response) -> list[str]:
    return [c["id"] for c in components(response) if c["type"] == "button"]


def assert_nothing_kept():
    assert not OutboundReply.objects.exists()
    assert not CanvasAction.objects.exists()
    assert not TaskRun.objects.exists()


def test_initialize_shows_the_empty_state(post_canvas, conversation):
    response = post_canvas(INIT, canvas_request())
    assert "No suggestions yet for this conversation." in texts(response)
    assert button_ids(response) == ["send_text", "note_text"]
    assert {"type": "textarea", "id": "reply_text", "label": "Or write a reply", "error": False} in components(response)


def test_initialize_shows_the_latest_suggestions(post_canvas, conversation, with_suggestions):
    response = post_canvas(INIT, canvas_request())
    assert "**Refunds**" in texts(response)
    assert "A double charge is reversed automatically." in texts(response)
    assert button_ids(response)[:3] == ["send:11", "note:11", "dismiss:11"]
    [send] = [c for c in components(response) if c.get("id") == "send:11"]
    assert send["action"] == {"type": "submit"}


def test_initialize_for_a_conversation_cue_has_not_seen(post_canvas, connection, with_suggestions):
    assert "No suggestions yet for this conversation." in texts(post_canvas(INIT, canvas_request("999")))


def test_initialize_for_an_intercom_workspace_not_connected(post_canvas):
    response = post_canvas(INIT, canvas_request(app_id="elsewhere"))
    assert "This Intercom workspace is not connected to Cue yet." in texts(response)


@pytest.mark.parametrize("path", [INIT, SUBMIT])
@pytest.mark.parametrize(
    ("signature", "code"),
    [(False, "signature_missing"), ("zz", "signature_missing"), ("0" * 64, "signature_invalid")],
)
def test_unsigned_or_wrongly_signed_is_401(post_canvas, conversation, path, signature, code):
    response = post_canvas(path, submit_request("send_text", "hi"), signature=signature)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert_nothing_kept()


def test_a_webhook_style_signature_is_not_a_canvas_signature(post_canvas, conversation):
    body = json.dumps(canvas_request()).encode()
    response = post_canvas(INIT, body, signature=hub_signature(APP_SECRET, body).removeprefix("sha1="))
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", json.dumps({"admin": {"id": "1"}}).encode(), json.dumps({"workspace_id": 5}).encode()],
)
def test_malformed_requests_are_400(post_canvas, conversation, body):
    response = post_canvas(SUBMIT, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"
    assert_nothing_kept()


def test_canvas_bodies_over_the_limit_are_413(post_canvas, conversation, settings):
    settings.INTERCOM_WEBHOOK_MAX_BYTES = 500
    response = post_canvas(SUBMIT, submit_request("send_text", "x" * 1000))
    assert response.status_code == 413
    assert_nothing_kept()


def test_submit_a_written_reply_queues_it_as_the_clicking_teammate(post_canvas, conversation):
    response = post_canvas(SUBMIT, submit_request("send_text", "  We have refunded you.  "))
    assert "Reply on its way: it appears in the conversation in a moment." in texts(response)
    reply = OutboundReply.objects.get()
    assert (reply.conversation_id, reply.kind, reply.body, reply.admin_id) == (
        conversation.id,
        "comment",
        "We have refunded you.",
        ADMIN["id"],
    )
    assert reply.source == "canvas"
    action = CanvasAction.objects.get()
    assert (action.action, action.reply_id, action.admin_id) == ("send_text", reply.id, ADMIN["id"])
    [run] = TaskRun.objects.all()
    assert (run.name, run.args) == ("apps.integrations.tasks.send_reply", [reply.id])


def test_submit_a_suggestion_as_a_note(post_canvas, conversation, with_suggestions):
    post_canvas(SUBMIT, submit_request("note:12"))
    reply = OutboundReply.objects.get()
    assert (reply.kind, reply.body, reply.source_id) == ("note", SUGGESTIONS[1]["body"], "12")
    assert CanvasAction.objects.get().suggestion_id == 12


def test_dismiss_records_the_choice_and_sends_nothing(post_canvas, conversation, with_suggestions):
    response = post_canvas(SUBMIT, submit_request("dismiss:11"))
    assert "Dismissed." in texts(response)
    action = CanvasAction.objects.get()
    assert (action.action, action.suggestion_id, action.reply_id) == ("dismiss", 11, None)
    assert not OutboundReply.objects.exists()
    assert not TaskRun.objects.exists()


def test_submit_without_text_asks_for_it(post_canvas, conversation):
    response = post_canvas(SUBMIT, submit_request("send_text", "   "))
    assert "Write a reply first." in texts(response)
    assert {"type": "textarea", "id": "reply_text", "label": "Or write a reply", "error": True} in components(response)
    assert_nothing_kept()


def test_submit_a_suggestion_that_is_gone(post_canvas, conversation, with_suggestions):
    assert "That suggestion is gone." in texts(post_canvas(SUBMIT, submit_request("send:404")))
    assert_nothing_kept()


@pytest.mark.parametrize("component_id", ["explode", "send:abc", "send", "", 7])
def test_submit_of_an_unknown_component_is_400(post_canvas, conversation, component_id):
    response = post_canvas(SUBMIT, submit_request("x") | {"component_id": component_id})
    assert response.status_code == 400
    assert_nothing_kept()


def test_submit_for_a_conversation_cue_has_not_seen(post_canvas, connection):
    response = post_canvas(
        SUBMIT, submit_request("send_text", "hello", conversation={"type": "conversation", "id": "9"})
    )
    assert "This conversation has not reached Cue yet; try again in a moment." in texts(response)
    assert_nothing_kept()


def test_a_canvas_request_only_reaches_its_own_workspace(post_canvas, make_workspace, connect):
    """Both workspaces have an Intercom conversation 123; a click in A's Intercom never replies in B's."""
    a, b = make_workspace("A"), make_workspace("B")
    connect(a, app_id="appaaaaa")
    connect(b, app_id="appbbbbb")
    Conversation.objects.create(workspace=b.workspace, intercom_id="123")
    response = post_canvas(SUBMIT, submit_request("send_text", "hello", workspace_id="appaaaaa"))
    assert "This conversation has not reached Cue yet; try again in a moment." in texts(response)
    assert_nothing_kept()


def test_own_app_secret_signs_for_its_own_workspace_only(post_canvas, make_workspace, connect, settings):
    settings.INTERCOM_CLIENT_SECRET = ""
    a, b = make_workspace("A"), make_workspace("B")
    connect(a, app_id="appaaaaa", method=ConnectionMethod.TOKEN, client_secret=OWN_SECRET)
    connect(b, app_id="appbbbbb", method=ConnectionMethod.TOKEN, client_secret="b-secret")
    Conversation.objects.create(workspace=a.workspace, intercom_id="123")
    ok = post_canvas(INIT, canvas_request(app_id="appaaaaa"), secret=OWN_SECRET)
    assert ok.status_code == 200
    forged = canvas_request(app_id="appbbbbb") | {"note": {"app_id": "appaaaaa"}}
    assert post_canvas(INIT, forged, secret=OWN_SECRET).status_code == 401


def test_the_canvas_is_trimmed_to_fit_canvas_kits_limit():
    huge = [{"id": i, "title": f"Entry {i}", "body": "word " * 5000, "score": 0.5} for i in range(5)]
    canvas = suggestions_canvas(huge)
    size = len(json.dumps(canvas).encode())
    assert size <= CANVAS_MAX_BYTES < 64 * 1024
    shown = [c["id"] for c in canvas["canvas"]["content"]["components"] if c["type"] == "button"]
    assert "send:0" in shown
    many = [{"id": i, "title": "t" * 2000, "body": "b" * 2000, "score": 0.5} for i in range(200)]
    assert len(json.dumps(suggestions_canvas(many)).encode()) <= CANVAS_MAX_BYTES


def test_the_schema_refuses_what_canvas_kit_refuses():
    """The schema is no rubber stamp: an unknown style, a button without an action, HTML-free but wrong types."""
    good = suggestions_canvas(SUGGESTIONS)
    assert_canvas_kit(good)
    for bad in (
        {"canvas": {"content": {"components": [{"type": "text", "text": "x", "style": "bold"}]}}},
        {"canvas": {"content": {"components": [{"type": "button", "id": "b", "label": "Go"}]}}},
        {"canvas": {"content": {"components": [{"type": "textarea", "id": "t", "error": "yes"}]}}},
        {"canvas": {"content": {"components": []}}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, CANVAS_KIT, cls=jsonschema.Draft202012Validator)
    with pytest.raises(AssertionError):
        assert_canvas_kit({"canvas": {"content": {"components": [{"type": "text", "text": "Settings &gt; Security"}]}}})


def test_entry_html_becomes_canvas_kit_markdown():
    """An entry's stored HTML reaches the sidebar as Markdown: entities decoded, bold and links kept, tags gone."""
    entry = {
        "id": 21,
        "title": "Reset <b>your</b> password",
        "body": (
            "<p>Open Settings &gt; Security &amp; click <strong>Reset password</strong>; see "
            '<a href="https://help.example.com/reset">the guide</a>.</p>'
            "<ul><li>Check spam</li><li>Links expire in 1*2 hours</li></ul><script>alert(1)</script>"
            '<a href="javascript:alert(1)">not a link</a>'
        ),
        "score": 0.8,
    }
    canvas = suggestions_canvas([entry])
    assert_canvas_kit(canvas)
    shown = [c["text"] for c in canvas["canvas"]["content"]["components"] if c["type"] == "text"]
    assert "**Reset your password**" in shown
    [body] = [t for t in shown if t.startswith("Open")]
    assert body == (
        "Open Settings > Security & click **Reset password**; see [the guide](https://help.example.com/reset).\n\n"
        "- Check spam\n- Links expire in 1\\*2 hours\nnot a link"
    )


def test_a_cut_preview_leaves_no_half_link_or_open_bold():
    from apps.integrations.canvas import _preview

    text = "Read **the whole guide** at [the help centre](https://help.example.com/a/very/long/path) today."
    for chars in range(10, len(text)):
        preview = _preview(text, chars)
        assert len(preview) <= chars
        assert preview.count("**") % 2 == 0, preview
        assert preview.count("[") == preview.count("](") == preview.count(")"), preview
