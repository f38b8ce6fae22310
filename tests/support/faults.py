"""Faults on demand for tests and bench/faults.py: an unreachable database, and a task bus that redelivers."""

import json
import random
import socket
from contextlib import contextmanager

from django.db import connections


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def database_unreachable(alias: str = "default"):
    """Every new connection goes to a closed port (as when PostgreSQL is down); restored after."""
    conn = connections[alias]
    conn.close()
    saved = conn.settings_dict["HOST"], conn.settings_dict["PORT"]
    conn.settings_dict["HOST"], conn.settings_dict["PORT"] = "127.0.0.1", closed_port()
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict["HOST"], conn.settings_dict["PORT"] = saved


class RedeliveringBus:
    """Stands in for SNS: captures every published task, then delivers each at least once, some twice, shuffled.

    Use with AWS_LAMBDA_FUNCTION_NAME set (so tasks publish) and apps.tasks.publisher.publish replaced
    by `bus.publish`.
    """

    def __init__(self, *, duplicate_ratio: float = 0.1, seed: int = 9):
        self.pending: list[dict] = []
        self.random = random.Random(seed)
        self.duplicate_ratio = duplicate_ratio
        self.published = 0
        self.deliveries = 0
        self.duplicates = 0

    def publish(self, envelope: dict) -> str:
        self.published += 1
        # A copy, as the wire would carry it.
        self.pending.append(json.loads(json.dumps(envelope)))
        return f"msg-{self.published}"

    def run_all(self, max_rounds: int = 20) -> None:
        from apps.tasks.runner import run_task_message

        for _ in range(max_rounds):
            if not self.pending:
                return
            batch, self.pending = self.pending, []
            extra = [m for m in batch if self.random.random() < self.duplicate_ratio]
            batch = batch + extra
            self.duplicates += len(extra)
            self.random.shuffle(batch)
            for envelope in batch:
                self.deliveries += 1
                run_task_message(envelope)
        raise AssertionError(f"tasks still publishing after {max_rounds} rounds")
