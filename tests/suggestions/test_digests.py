"""The daily digest: figures per workspace and day, stored once, mailed to owners once."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core import mail

from apps.conversations.models import Conversation, Message
from apps.suggestions.digests import digest_build, digest_email, digests_for_yesterday
from apps.suggestions.models import DailyDigest, KnowledgeGap, Suggestion
from tests.support.events import scheduled_event

DAY = date(2026, 11, 25)
NOON = datetime(2026, 11, 25, 12, tzinfo=UTC)


def _activity(workspace, *, customer_messages: int, accepted: int, dismissed: int, shown: int, gaps: int, when=NOON):
    conversation = Conversation.objects.create(workspace=workspace, intercom_id=f"c{workspace.id}-{when.day}")
    n = 0

    def message(author_type="user"):
        nonlocal n
        n += 1
        m = Message.objects.create(
            conversation=conversation,
            workspace=workspace,
            intercom_part_id=f"p{workspace.id}-{when.day}-{n}",
            author_type=author_type,
            kind="comment",
            body_text="How do I reset my password?",
        )
        Message.objects.filter(pk=m.pk).update(created_at=when)
        return m

    customer = [message() for _ in range(customer_messages)]
    message("admin")  # a teammate's reply is not a customer message
    statuses = ["accepted"] * accepted + ["dismissed"] * dismissed + ["shown"] * shown
    for rank, status in enumerate(statuses, start=1):
        s = Suggestion.objects.create(
            workspace=workspace,
            conversation=conversation,
            message=customer[0],
            title=f"Entry {rank}",
            body="...",
            score=0.5,
            rank=rank,
            status=status,
        )
        Suggestion.objects.filter(pk=s.pk).update(created_at=when)
    for m in customer[1 : 1 + gaps]:
        g = KnowledgeGap.objects.create(
            workspace=workspace, conversation=conversation, message=m, text="Do you ship to Mars?", best_score=0.1
        )
        KnowledgeGap.objects.filter(pk=g.pk).update(created_at=when)


@pytest.mark.django_db
def test_digest_counts_one_workspace_and_one_day(make_workspace):
    a = make_workspace("A").workspace
    b = make_workspace("B").workspace
    _activity(a, customer_messages=3, accepted=2, dismissed=1, shown=1, gaps=1)
    _activity(a, customer_messages=5, accepted=1, dismissed=0, shown=0, gaps=0, when=NOON + timedelta(days=1))
    _activity(b, customer_messages=7, accepted=0, dismissed=3, shown=0, gaps=2)
    digest = digest_build(workspace_id=a.id, day=DAY)
    assert digest.messages_received == 3
    assert digest.suggestions_shown == 4
    assert digest.suggestions_accepted == 2
    assert digest.suggestions_dismissed == 1
    assert digest.acceptance_rate == pytest.approx(2 / 3, abs=1e-4)
    assert [g["text"] for g in digest.gaps] == ["Do you ship to Mars?"]
    # Rebuilding the same day updates the one row.
    assert digest_build(workspace_id=a.id, day=DAY).pk == digest.pk
    assert DailyDigest.objects.filter(workspace=a).count() == 1


def test_daily_digest_job_through_the_handler_mails_owners_once(lambda_handler, make_workspace):
    owner = make_workspace("Acme")
    _activity(owner.workspace, customer_messages=2, accepted=1, dismissed=0, shown=0, gaps=1, when=NOON)
    rule = f"{lambda_handler.function_name}-apps.suggestions.jobs.daily_digest"
    event = scheduled_event(rule)
    mail.outbox.clear()
    from django.utils import timezone

    today = timezone.now().date()
    yesterday_noon = datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    Message.objects.update(created_at=yesterday_noon + timedelta(hours=12))
    Suggestion.objects.update(created_at=yesterday_noon + timedelta(hours=12))
    KnowledgeGap.objects.update(created_at=yesterday_noon + timedelta(hours=12))

    result = lambda_handler(event)
    assert result["built"] == 1 and result["emailed"] == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [owner.user.email]
    assert "customer messages: 2" in mail.outbox[0].body
    assert "acceptance rate: 100%" in mail.outbox[0].body
    # A second run the same morning (EventBridge can fire twice) sends nothing more.
    again = lambda_handler(event)
    assert again["emailed"] == 0
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_digest_email_is_sent_once(make_workspace):
    owner = make_workspace()
    digest = digest_build(workspace_id=owner.workspace_id, day=DAY)
    mail.outbox.clear()
    assert digest_email(digest_id=digest.id) is True
    assert digest_email(digest_id=digest.id) is False
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_digest_list_api_is_scoped_and_paginated(agent_client, owner, make_workspace, django_assert_max_num_queries):
    other = make_workspace("Other")
    digest_build(workspace_id=owner.workspace_id, day=DAY)
    digest_build(workspace_id=other.workspace_id, day=DAY - timedelta(days=1))
    with django_assert_max_num_queries(4):
        response = agent_client.get("/api/digests")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"][0]["day"] == DAY.isoformat()


@pytest.mark.django_db
def test_digests_for_yesterday_builds_every_workspace(make_workspace):
    make_workspace()
    make_workspace()
    assert digests_for_yesterday(today=DAY + timedelta(days=1))["built"] == 2
