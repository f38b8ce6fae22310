"""The worker: webhooks of both generations mirrored into conversations and messages, in any order, once."""

import pytest

from apps.conversations.models import Conversation as ConversationRow
from apps.conversations.models import Message
from apps.integrations import services
from apps.integrations.models import DeliveryStatus, WebhookDelivery
from apps.tasks.models import TaskRun, TaskStatus
from apps.tasks.outcomes import Outcome
from apps.tasks.services import task_execute
from tests.integrations.intercom_payloads import ADMIN, APP_ID, CUSTOMER, OTHER_ADMIN, Conversation, encode

pytestmark = pytest.mark.django_db

SUGGEST = "apps.suggestions.tasks.suggest_replies"


@pytest.fixture
def deliver(post_webhook, django_capture_on_commit_callbacks):
    """Post a webhook and run what it dispatched (inline, as outside Lambda); returns the response."""

    def run(payload):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_webhook(payload)
        assert response.status_code == 200, response.content
        return response

    return run


def suggestion_runs() -> list[TaskRun]:
    return list(TaskRun.objects.filter(name=SUGGEST).order_by("created_at"))


@pytest.mark.parametrize("generation", [1, 2])
def test_new_conversation_is_mirrored_with_its_opening_message(connection, deliver, generation):
    conversation = Conversation(generation)
    deliver(conversation.user_created())
    row = ConversationRow.objects.get()
    assert row.workspace_id == connection.workspace_id
    assert row.intercom_id == conversation.id
    assert row.state == "open"
    assert (row.customer_id, row.customer_name, row.customer_email) == (
        CUSTOMER["id"],
        CUSTOMER["name"],
        CUSTOMER["email"],
    )
    assert row.assignee_id == ""
    assert row.intercom_url.startswith("https://app.intercom")
    assert conversation.id in row.intercom_url
    [message] = Message.objects.all()
    assert message.intercom_part_id == f"source:{conversation.source_id}"
    assert message.kind == "comment"
    assert message.author_type == ("user" if generation == 1 else "lead")
    assert message.author_id == CUSTOMER["id"]
    assert message.body_html == conversation.opening_body
    assert message.body_text == "Hello! My invoice is wrong & I was charged twice."
    assert row.last_message_text == message.body_text
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PROCESSED


@pytest.mark.parametrize("generation", [1, 2])
def test_a_conversations_life_in_every_topic(connection, deliver, generation):
    """Created, assigned, replied, noted, snoozed, opened, closed: the state follows, every part is kept once."""
    conversation = Conversation(generation)
    conversation.tag("81", "billing")
    for event in [
        conversation.user_created(),
        conversation.admin_assigned(to=OTHER_ADMIN),
        conversation.user_replied("<p>Any news?</p>"),
        conversation.admin_replied("<p>Refund on its way.</p>"),
        conversation.admin_noted("<p>Refund approved.</p>"),
        conversation.admin_snoozed(),
    ]:
        deliver(event)
    row = ConversationRow.objects.get()
    assert row.state == "snoozed"
    assert row.snoozed_until is not None
    assert row.assignee_id == OTHER_ADMIN["id"]
    assert row.tags == [{"id": "81", "name": "billing"}]
    deliver(conversation.admin_opened())
    deliver(conversation.admin_closed())
    row.refresh_from_db()
    assert row.state == "closed"
    assert row.snoozed_until is None
    kinds = list(Message.objects.order_by("created_at_intercom", "id").values_list("kind", "author_type"))
    customer = "user" if generation == 1 else "lead"
    assert kinds == [
        ("comment", customer),
        ("assignment", "admin"),
        ("comment", customer),
        ("comment", "admin"),
        ("note", "admin"),
        ("snooze", "admin"),
        ("open", "admin"),
        ("close", "admin"),
    ]
    assert row.last_message_text == "Refund approved."
    # The opening message and the customer's reply, not the teammates' parts, ask for suggestions.
    customer_messages = Message.objects.filter(kind="comment", author_type=customer).order_by("id")
    assert [r.args for r in suggestion_runs()] == [[m.id] for m in customer_messages]
    assert all(r.status == TaskStatus.SUCCEEDED for r in suggestion_runs())


@pytest.mark.parametrize("generation", [1, 2])
def test_an_older_event_never_overwrites_newer_state(connection, deliver, generation):
    """Closed arrives before an earlier reply: the conversation stays closed, and the reply is still added."""
    conversation = Conversation(generation)
    created = conversation.user_created()
    replied = conversation.user_replied("<p>Hello?</p>")
    assigned = conversation.admin_assigned()
    closed = conversation.admin_closed()
    deliver(closed)
    deliver(assigned)
    deliver(replied)
    deliver(created)
    row = ConversationRow.objects.get()
    assert row.state == "closed"
    assert row.assignee_id == ADMIN["id"]
    assert row.updated_at_intercom.timestamp() == closed["data"]["item"]["updated_at"]
    assert Message.objects.count() == 4
    results = list(WebhookDelivery.objects.order_by("id").values_list("result__state_applied", flat=True))
    assert results == [True, False, False, False]


def test_same_second_events_are_ordered_by_the_notification_time(connection, deliver):
    """Two events with the same conversation updated_at: the later notification wins, whatever the arrival order."""
    conversation = Conversation(2)
    first = conversation.admin_assigned(to=ADMIN)
    conversation.clock -= 60  # Intercom's updated_at has one-second resolution: the same value twice
    second = conversation.admin_assigned(to=OTHER_ADMIN)
    second["created_at"] = first["created_at"] + 1
    deliver(second)
    deliver(first)
    assert ConversationRow.objects.get().assignee_id == OTHER_ADMIN["id"]


def test_a_part_seen_in_two_notifications_is_stored_once(connection, deliver):
    """Intercom can describe one part in two topics' notifications: one message, one suggestion."""
    conversation = Conversation(1)
    replied = conversation.user_replied()
    again = dict(replied, id="notif_another-topic-same-part", topic="conversation.user.created")
    deliver(replied)
    deliver(again)
    assert WebhookDelivery.objects.count() == 2
    assert Message.objects.count() == 2  # the opening message and the reply
    assert len(suggestion_runs()) == 2


def test_processing_a_delivery_twice_has_one_effect(connection, post_webhook):
    """The worker run again on a processed delivery (a redelivered task, an operator) changes nothing."""
    post_webhook(Conversation(2).user_replied())
    delivery = WebhookDelivery.objects.get()
    first = services.delivery_process(delivery_id=delivery.id)
    second = services.delivery_process(delivery_id=delivery.id)
    assert first == second
    assert Message.objects.count() == 2
    assert TaskRun.objects.filter(name=SUGGEST).count() == 2


def test_message_html_is_sanitised_and_text_is_clean(connection, deliver):
    conversation = Conversation(2)
    deliver(
        conversation.user_replied(
            '<p>Click <a href="javascript:alert(1)" onclick="x()">here</a><script>steal()</script></p>'
            "<ul><li>one</li><li>two&nbsp;&amp; three</li></ul><p><br></p>"
        )
    )
    message = Message.objects.exclude(intercom_part_id__startswith="source:").get()
    assert "script" not in message.body_html
    assert "javascript:" not in message.body_html
    assert "onclick" not in message.body_html
    assert message.body_text == "Click here\n\none\n\ntwo & three"


def test_empty_and_action_parts_do_not_trigger_suggestions(connection, deliver):
    conversation = Conversation(1)
    conversation.opening_body = "<p> </p>"
    deliver(conversation.user_created())
    deliver(conversation.admin_closed())
    assert suggestion_runs() == []


def test_a_delivery_whose_item_is_unreadable_is_skipped_and_its_task_rejected(connection, post_webhook):
    """An envelope that passed the endpoint but whose conversation cannot be read: skipped, rejected, not retried."""
    post_webhook(Conversation(2).user_replied())
    delivery = WebhookDelivery.objects.get()
    delivery.body = delivery.body.replace('"type":"conversation","id"', '"type":"conversation","idx"', 1)
    delivery.save()
    run = TaskRun.objects.get(name="apps.integrations.tasks.process_delivery")
    assert task_execute(task_id=str(run.id)) is Outcome.REJECTED
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SKIPPED
    assert "id" in delivery.result["error"]
    run.refresh_from_db()
    assert run.status == TaskStatus.REJECTED
    assert run.next_attempt_at is None
    assert run.last_error.startswith("permanent error, not retried: DeliveryUnreadable: delivery ")
    assert not ConversationRow.objects.exists()
    # A duplicate delivery of the message does nothing more.
    assert task_execute(task_id=str(run.id)) is Outcome.DONE


def test_generation_2_url_is_built_for_the_region(owner, connect, deliver):
    connect(owner, region="eu")
    conversation = Conversation(2)
    deliver(conversation.user_created())
    assert ConversationRow.objects.get().intercom_url == (
        f"https://app.eu.intercom.com/a/apps/{APP_ID}/inbox/inbox/conversation/{conversation.id}"
    )


def test_webhooks_of_two_workspaces_never_touch_each_other(make_workspace, connect, deliver):
    """The same conversation and part ids in two Intercom workspaces land in two Cue workspaces, separately."""
    a, b = make_workspace("A"), make_workspace("B")
    connect(a, app_id="appaaaaa")
    connect(b, app_id="appbbbbb")
    in_a = Conversation(2, app_id="appaaaaa", conversation_id="555")
    in_b = Conversation(2, app_id="appbbbbb", conversation_id="555")
    in_b.source_id = in_a.source_id
    deliver(in_a.user_created())
    deliver(in_a.admin_closed())
    deliver(in_b.user_created())
    rows = {r.workspace_id: r for r in ConversationRow.objects.all()}
    assert rows[a.workspace_id].state == "closed"
    assert rows[b.workspace_id].state == "open"
    assert Message.objects.filter(workspace_id=a.workspace_id).count() == 2
    assert Message.objects.filter(workspace_id=b.workspace_id).count() == 1
    assert all(m.conversation.workspace_id == m.workspace_id for m in Message.objects.select_related("conversation"))


@pytest.mark.parametrize("generation", [1, 2])
def test_lone_surrogate_escapes_are_made_safe_and_the_conversation_mirrored(connection, deliver, generation):
    """`\\udc00` alone is valid JSON but no character PostgreSQL can store: it becomes U+FFFD, nothing goes dead."""
    conversation = Conversation(generation)
    conversation.opening_body = "<p>Charged twice \udc00 help</p>"
    created = conversation.user_created()
    replied = conversation.user_replied(body="<p>Still \ud83d waiting \ud83d\ude00</p>")
    created["data"]["item"]["tags\udfff"] = {"type": "tag.list", "tags": []}  # a key, too
    for payload in (created, replied):
        assert b"\\udc00" in encode(payload) or b"\\ud83d w" in encode(payload)
        deliver(payload)
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == [DeliveryStatus.PROCESSED] * 2
    row = ConversationRow.objects.get()
    assert row.intercom_id == conversation.id
    texts = list(Message.objects.order_by("created_at").values_list("body_text", flat=True))
    assert texts == ["Charged twice \ufffd help", "Still \ufffd waiting \U0001f600"]
    assert TaskRun.objects.filter(status=TaskStatus.DEAD).count() == 0
