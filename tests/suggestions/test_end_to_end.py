"""End to end: a signed Intercom webhook → Zappa handler → tasks over SNS → suggestion on MQTT → feedback → Intercom.

Everything real on this machine: the Zappa handler, moto's SNS, PostgreSQL, the shared Mosquitto, and
Intercom's REST API as an HTTP server on loopback.
"""

import json
import time

import pytest

from apps.integrations.models import IntercomAdmin, OutboundReply, ReplyStatus
from apps.knowledge.models import EntryEvidence
from apps.knowledge.services import entry_create
from apps.suggestions.models import Suggestion, SuggestionStatus
from apps.tasks.models import TaskRun, TaskStatus
from tests.integrations.conftest import connect, connection, intercom_api, intercom_settings  # noqa: F401
from tests.integrations.intercom_payloads import ADMIN, Conversation
from tests.integrations.test_replies import FakeConversations
from tests.integrations.test_webhook_lambda import webhook_event
from tests.realtime.conftest import _fresh_backends, mqtt_backend, mqtt_url, subscribe, topic_root  # noqa: F401
from tests.support.events import apigw_v1, response_json

SILENCE_SECONDS = 0.5
ENTRIES = [
    ("Double charge", "<p>Sorry about the double charge! The second charge on your invoice is reversed "
     "automatically within three days.</p>"),
    ("Reset your password", "<p>Open Settings, choose Security and click Forgot password.</p>"),
    ("Shipping times", "<p>Standard shipping takes three to five days.</p>"),
]  # fmt: skip


@pytest.fixture
def intercom(intercom_api):  # noqa: F811
    return FakeConversations(intercom_api)


def test_webhook_to_suggestion_on_mqtt_to_reply_in_intercom(
    sns,
    lambda_handler,
    connection,  # noqa: F811
    make_workspace,
    mqtt_backend,  # noqa: F811
    topic_root,  # noqa: F811
    subscribe,  # noqa: F811
    intercom,
    intercom_api,  # noqa: F811
    client_for,
):
    workspace_id = connection.workspace_id
    entries = {t: entry_create(workspace_id=workspace_id, title=t, body=b) for t, b in ENTRIES}
    bystander = make_workspace("Bystander")
    for title, body in ENTRIES:  # the same knowledge base elsewhere: it must hear nothing
        entry_create(workspace_id=bystander.workspace_id, title=title, body=body)
    mine = subscribe(mqtt_backend, [f"{topic_root}/{workspace_id}/#"])
    theirs = subscribe(mqtt_backend, [f"{topic_root}/{bystander.workspace_id}/#"])

    # 1. Intercom posts a signed webhook: a new conversation whose customer was charged twice.
    conversation = Conversation(2)
    result = lambda_handler(webhook_event(apigw_v1, conversation.user_created()))
    assert result["statusCode"] == 200, result
    assert response_json(result) == {"status": "accepted"}

    # 2. Every task runs through SNS and the handler: process_delivery → (publish_event of the new conversation
    #    and its message, suggest_replies → publish_event of its suggestions).
    delivered = [json.loads(m)["args"][0]["task"] for m in sns.run_all()]
    assert delivered[0] == "apps.integrations.tasks.process_delivery"
    assert sorted(delivered[1:]) == [
        "apps.realtime.tasks.publish_event",
        "apps.realtime.tasks.publish_event",
        "apps.suggestions.tasks.suggest_replies",
    ]
    assert set(TaskRun.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}

    # 3. The agents' topic gets the suggestion, best first: the double-charge entry.
    got = mine.wait_for(lambda m: m.topic.endswith("/suggestions"))
    suggestion = Suggestion.objects.get(rank=1)
    assert got.topic == f"{topic_root}/{workspace_id}/conversations/{suggestion.conversation_id}/suggestions"
    payload = got.payload
    assert (payload["type"], payload["version"], payload["message_id"]) == ("suggestions", 1, suggestion.message_id)
    top = payload["suggestions"][0]
    assert (top["id"], top["entry_id"], top["title"], top["rank"]) == (
        suggestion.id,
        entries["Double charge"].id,
        "Double charge",
        1,
    )
    time.sleep(SILENCE_SECONDS)
    assert theirs.received == [], "another workspace's topic hears nothing"
    assert sorted(m.payload["type"] for m in mine.received) == ["conversation", "message", "suggestions"]

    # 4. The agent accepts it and sends it as a reply: the reply task calls Intercom once.
    intercom_api.expect_request(f"/conversations/{conversation.id}/reply", method="POST").respond_with_handler(
        intercom.post(conversation.id)
    )
    agent = client_for(connection.connected_by)
    response = agent.post(
        f"/api/suggestions/{suggestion.id}/feedback", {"action": "accept", "send_as": "reply"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    assert [json.loads(m)["args"][0]["task"] for m in sns.run_all(times=2)] == ["apps.integrations.tasks.send_reply"]
    assert intercom.calls() == [("POST", f"/conversations/{conversation.id}/reply")]
    [(request, _)] = intercom_api.log
    sent = json.loads(request.data)
    assert sent["message_type"] == "comment"
    assert "double charge" in sent["body"]
    reply = OutboundReply.objects.get()
    assert reply.status == ReplyStatus.SENT
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.reply_id) == (SuggestionStatus.ACCEPTED, reply.id)


def test_an_agents_typed_reply_teaches_through_sns_and_the_handler(
    sns,
    lambda_handler,
    connection,  # noqa: F811
    make_workspace,
):
    """The agent types the entry's answer in Intercom: process_delivery → learn_from_reply, each delivered twice."""
    workspace_id = connection.workspace_id
    entries = {t: entry_create(workspace_id=workspace_id, title=t, body=b) for t, b in ENTRIES}
    bystander = make_workspace("Bystander")
    theirs = entry_create(workspace_id=bystander.workspace_id, title="Double charge", body=ENTRIES[0][1])
    IntercomAdmin.objects.create(workspace_id=workspace_id, intercom_id=ADMIN["id"], membership=connection.connected_by)

    conversation = Conversation(2)
    assert lambda_handler(webhook_event(apigw_v1, conversation.user_created()))["statusCode"] == 200
    sns.run_all()
    shown = Suggestion.objects.get(entry=entries["Double charge"])
    assert shown.status == SuggestionStatus.SHOWN

    typed = "<p>Hi there, sorry about the double charge! The second charge on your invoice is reversed " \
        "automatically within three days.</p><p>Best, Cordelia</p>"  # fmt: skip
    assert lambda_handler(webhook_event(apigw_v1, conversation.admin_replied(typed)))["statusCode"] == 200
    delivered = [json.loads(m)["args"][0]["task"] for m in sns.run_all(times=2)]
    assert delivered[0] == "apps.integrations.tasks.process_delivery"
    assert sorted(delivered[1:]) == ["apps.realtime.tasks.publish_event", "apps.suggestions.tasks.learn_from_reply"]
    assert set(TaskRun.objects.values_list("status", flat=True)) == {TaskStatus.SUCCEEDED}

    assert list(EntryEvidence.objects.values_list("entry_id", "message_ref", "action")) == [
        (entries["Double charge"].id, f"message:{shown.message_id}", "accept")
    ], "one accept, though every task was delivered twice"
    shown.refresh_from_db()
    assert shown.status == SuggestionStatus.ACCEPTED
    assert not EntryEvidence.objects.filter(entry=theirs).exists(), "another workspace's twin entry learns nothing"
