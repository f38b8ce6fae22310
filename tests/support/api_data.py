"""A workspace with a little of everything the API lists, for whole-API runs (schemathesis in the suite and
tools/schema_audit.py): a fuzzer signed in to an empty workspace only ever sees empty pages and 404s."""

from django.utils import timezone

from apps.accounts import services as accounts
from apps.accounts.models import Membership, Role
from apps.conversations.models import Conversation, Message
from apps.knowledge.services import entry_create
from apps.suggestions.digests import digest_build
from apps.suggestions.models import KnowledgeGap, Suggestion
from apps.tasks.models import TaskRun, TaskStatus

PASSWORD = "correct-horse-battery-staple"


def workspace_with_data(*, email: str = "fuzz-owner@example.com") -> Membership:
    """An owner's workspace with a teammate, entries, a conversation with messages, suggestions,
    a knowledge gap, a digest and a dead task; returns the owner's membership."""
    owner = accounts.workspace_signup(email=email, password=PASSWORD, workspace_name="Fuzzed company")
    workspace_id = owner.workspace_id
    accounts.member_add(actor=owner, email=f"agent-{email}", password=PASSWORD, role=Role.AGENT)
    entries = [
        entry_create(workspace_id=workspace_id, title=title, body=f"<p>{body}</p>", tags=["billing"])
        for title, body in [
            ("Refunds", "Refunds reach your card within five working days."),
            ("Reset your password", "Use the forgotten password link on the sign-in page."),
            ("Export invoices", "Invoices can be exported as PDF from the billing page."),
        ]
    ]
    conversation = Conversation.objects.create(
        workspace_id=workspace_id,
        intercom_id="fuzz-conversation",
        subject="Refund",
        customer_email="customer@example.com",
        last_message_at=timezone.now(),
    )
    messages = [
        Message.objects.create(
            conversation=conversation,
            workspace_id=workspace_id,
            intercom_part_id=f"fuzz-part-{n}",
            author_type="user",
            kind="comment",
            body_html=f"<p>{text}</p>",
            body_text=text,
        )
        for n, text in enumerate(["How do I get a refund?", "Where are my invoices?"])
    ]
    for rank, entry in enumerate(entries[:2], start=1):
        Suggestion.objects.create(
            workspace_id=workspace_id,
            conversation=conversation,
            message=messages[0],
            entry_id=entry.id,
            title=entry.title,
            body=entry.body_text,
            score=0.9 / rank,
            rank=rank,
        )
    KnowledgeGap.objects.create(
        workspace_id=workspace_id, conversation=conversation, message=messages[1], text=messages[1].body_text
    )
    digest_build(workspace_id=workspace_id, day=timezone.now().date())
    run = TaskRun.objects.create(name="apps.suggestions.tasks.suggest_replies", workspace_id=workspace_id)
    TaskRun.objects.filter(pk=run.pk).update(status=TaskStatus.DEAD, last_error="fuzz: a dead task to list")
    return owner
