"""The "suggestions" realtime source: a message's stored suggestions as the contract's payload."""

from apps.realtime.events import event_source_get
from apps.suggestions.models import Suggestion
from apps.suggestions.services import suggestions_create_for_message


def test_the_source_builds_the_contract_event(owner, kb, make_message):
    message = make_message(owner.workspace_id, "how long is express shipping")
    suggestions_create_for_message(message_id=message.id)
    event = event_source_get("suggestions")(message_id=message.id)
    payload = event.payload()
    assert event.topic == f"cue/{owner.workspace_id}/conversations/{message.conversation_id}/suggestions"
    assert (payload["type"], payload["version"]) == ("suggestions", 1)
    assert (payload["conversation_id"], payload["message_id"]) == (message.conversation_id, message.id)
    rows = list(Suggestion.objects.filter(message=message).order_by("rank"))
    assert [s["id"] for s in payload["suggestions"]] == [r.id for r in rows]
    first = payload["suggestions"][0]
    assert {k: first[k] for k in ("entry_id", "title", "rank")} == {
        "entry_id": rows[0].entry_id,
        "title": "Shipping times",
        "rank": 1,
    }


def test_nothing_to_publish_for_a_gap_or_a_deleted_message(owner, kb, make_message):
    gap = make_message(owner.workspace_id, "Do you sponsor football clubs?")
    suggestions_create_for_message(message_id=gap.id)
    source = event_source_get("suggestions")
    assert source(message_id=gap.id) is None
    assert source(message_id=10**9) is None
