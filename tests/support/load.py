"""The load scenario shared by tests/reliability and bench/faults.py: signed webhooks for many workspaces, counted."""

import random
from collections import Counter
from dataclasses import dataclass, field

SUGGEST = "apps.suggestions.tasks.suggest_replies"


@dataclass
class LoadResult:
    webhooks: int = 0
    redelivered_webhooks: int = 0
    deliveries: int = 0
    duplicates_delivered: int = 0
    expected_messages: dict[int, int] = field(default_factory=dict)
    stored_messages: dict[int, int] = field(default_factory=dict)
    suggest_runs: int = 0
    lost: int = 0
    duplicated: int = 0


def load_run(*, post, bus, apps: dict[int, str], webhooks: int, seed: int = 9) -> LoadResult:
    """Post `webhooks` signed webhooks spread over the workspaces in `apps` ({workspace_id: intercom app id}).

    Each conversation is a `user.created` then a `user.replied` (two messages). 10 % of webhooks are
    posted twice (Intercom redelivering); every task is delivered at least once and 10 % twice, shuffled
    (the bus). Counts what was stored against what was sent.
    """
    from apps.conversations.models import Message
    from apps.tasks.models import TaskRun, TaskStatus
    from tests.integrations.intercom_payloads import Conversation

    rng = random.Random(seed)
    result = LoadResult(webhooks=webhooks)
    streams: list[list[dict]] = []
    expected: Counter = Counter()
    workspace_ids = list(apps)
    for n in range(0, webhooks, 2):
        workspace_id = workspace_ids[(n // 2) % len(workspace_ids)]
        conversation = Conversation(1 + (n // 2) % 2, app_id=apps[workspace_id])
        stream = [conversation.user_created()]
        if n + 1 < webhooks:
            stream.append(conversation.user_replied(f"<p>Is my invoice fixed yet? ({n})</p>"))
        streams.append(stream)
        expected[workspace_id] += len(stream)
    # Interleave conversations (and workspaces) while keeping each conversation's own order.
    order = [i for i, stream in enumerate(streams) for _ in stream]
    rng.shuffle(order)
    cursors = Counter()
    for i in order:
        payload = streams[i][cursors[i]]
        cursors[i] += 1
        for _ in range(2 if rng.random() < 0.1 else 1):
            response = post(payload)
            assert response.status_code == 200, response.content
        result.redelivered_webhooks += 0 if response.json()["status"] == "accepted" else 1
        if len(bus.pending) >= 200:  # workers keep up with the flood in batches
            bus.run_all()
    bus.run_all()

    result.expected_messages = dict(expected)
    stored = Counter(
        Message.objects.filter(conversation__workspace_id__in=workspace_ids).values_list(
            "conversation__workspace_id", flat=True
        )
    )
    result.stored_messages = {w: stored.get(w, 0) for w in workspace_ids}
    message_ids = set(Message.objects.filter(conversation__workspace_id__in=workspace_ids).values_list("id", flat=True))
    succeeded = TaskRun.objects.filter(name=SUGGEST, status=TaskStatus.SUCCEEDED)
    runs = Counter(args[0] for args in succeeded.values_list("args", flat=True) if args[0] in message_ids)
    result.suggest_runs = sum(runs.values())
    result.lost = sum(max(0, expected[w] - result.stored_messages[w]) for w in workspace_ids) + sum(
        1 for m in message_ids if runs[m] == 0
    )
    result.duplicated = sum(max(0, result.stored_messages[w] - expected[w]) for w in workspace_ids) + sum(
        n - 1 for n in runs.values() if n > 1
    )
    result.deliveries = bus.deliveries
    result.duplicates_delivered = bus.duplicates
    return result
