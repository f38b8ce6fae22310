"""Faults on demand for tests and bench/faults.py: an unreachable database, inserts that fail inside PostgreSQL,
an SNS that never answers, and a task bus that redelivers."""

import json
import os
import random
import socket
import threading
import uuid
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


@contextmanager
def inserts_fail(table: str, *, how: str = "connection_lost", alias: str = "default"):
    """Every INSERT into `table` fails inside PostgreSQL (a trigger), until the block ends.

    `connection_lost`: the inserting session is terminated (as by a failover or a killed backend; the
    client sees the connection go). `error`: the insert raises (SQLSTATE P0001). Committed, so use it
    with a transactional test or outside tests' transactions (the bench).
    """
    action = {
        "connection_lost": "PERFORM pg_terminate_backend(pg_backend_pid());",
        "error": "RAISE EXCEPTION 'injected fault: insert into % refused', TG_TABLE_NAME;",
    }[how]
    name = f"cue_fault_{uuid.uuid4().hex[:12]}"
    conn = connections[alias]
    quoted = conn.ops.quote_name(table)
    with conn.cursor() as cursor:
        cursor.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {action} RETURN NEW; END $$"
        )
        cursor.execute(f"CREATE TRIGGER {name} BEFORE INSERT ON {quoted} FOR EACH ROW EXECUTE FUNCTION {name}()")
    try:
        yield
    finally:
        conn.close()  # it may be the session the trigger terminated
        with conn.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {quoted}")
            cursor.execute(f"DROP FUNCTION IF EXISTS {name}()")


class Blackhole:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers (a hung endpoint)."""

    def __init__(self):
        self._server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._server.settimeout(0.1)  # so the accepting thread sees the stop
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            self._held.append(conn)  # read nothing, answer nothing, keep it open

    def __enter__(self) -> "Blackhole":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()
        for conn in self._held:
            conn.close()


@contextmanager
def sns_blackholed():
    """Every SNS call of the task publisher goes to a Blackhole (connects, then waits forever); restored after.

    Only SNS: STS and the rest still reach their usual endpoint (moto in the suite and the bench).
    """
    from apps.tasks import publisher

    saved = os.environ.get("AWS_ENDPOINT_URL_SNS")
    with Blackhole() as hole:
        os.environ["AWS_ENDPOINT_URL_SNS"] = hole.url
        publisher.clients_reset()
        try:
            yield hole
        finally:
            if saved is None:
                os.environ.pop("AWS_ENDPOINT_URL_SNS", None)
            else:
                os.environ["AWS_ENDPOINT_URL_SNS"] = saved
            publisher.clients_reset()


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
