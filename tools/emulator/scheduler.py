"""EventBridge on this machine: the stage's scheduled rules fire on their expressions, on a clock tests can move.

The Timeline runs every timed action of the emulator (rule fires, delayed SNS deliveries, async
retries) on one clock: the real one plus an offset. `advance()` moves the offset forward and runs
at once what became due, so a `rate(1 minute)` job fires in a test without waiting a minute; the
application's own clock (timezone.now()) does not move.
"""

import heapq
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tools.emulator.function import ACCOUNT, StageFunction
from tools.schedules import next_fire


class Timeline:
    """Actions due at clock times, run on a thread (or by `advance()`); each action runs once."""

    def __init__(self):
        self._offset = 0.0
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def monotonic(self) -> float:
        return time.monotonic() + self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def after(self, seconds: float, action: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (self.monotonic() + seconds, next(self._order), action))
            self._cond.notify()

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        self.after((when - self.now()).total_seconds(), action)

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def advance(self, delta: timedelta) -> int:
        """Move the clock forward and run everything now due (in this thread); how many actions ran."""
        with self._cond:
            self._offset += delta.total_seconds()
        ran = self._run_due()
        with self._cond:
            self._cond.notify()
        return ran

    def _pop_due(self) -> list[Callable[[], None]]:
        with self._cond:
            due = []
            while self._heap and self._heap[0][0] <= self.monotonic():
                due.append(heapq.heappop(self._heap)[2])
            return due

    def _run_due(self) -> int:
        ran = 0
        while due := self._pop_due():  # an action may schedule another that is already due
            for action in due:
                action()
                ran += 1
        return ran

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                wait = self._heap[0][0] - self.monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._cond.wait(timeout=min(wait, 1.0) if wait is not None else 1.0)
            self._run_due()

    def start(self) -> "Timeline":
        self._thread = threading.Thread(target=self._loop, name="timeline", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify()
        if self._thread:
            self._thread.join(timeout=5)


def scheduled_event(rule_name: str, when: datetime, region: str) -> dict:
    """What a Zappa rule delivers: EventBridge's scheduled event through Zappa's input template."""
    return {
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "region": region,
        "detail": {},
        "version": "0",
        "resources": [f"arn:aws:events:{region}:{ACCOUNT}:rule/{rule_name}"],
        "id": str(uuid.uuid4()),
        "kwargs": {},
    }


class Scheduler:
    """Arms each rule on the timeline at its next fire time; a fire invokes the function asynchronously."""

    def __init__(self, *, rules: list[dict], function: StageFunction, timeline: Timeline):
        self.rules = rules
        self.function = function
        self.timeline = timeline
        self.fired: list[tuple[str, datetime]] = []
        self._created = timeline.now()
        self._stopped = False

    def next_fires(self) -> dict[str, datetime | None]:
        now = self.timeline.now()
        return {r["name"]: next_fire(r["expression"], now, anchor=self._created) for r in self.rules}

    def start(self) -> "Scheduler":
        for rule in self.rules:
            self._arm(rule, self._created)
        return self

    def stop(self) -> None:
        self._stopped = True

    def _arm(self, rule: dict, after: datetime) -> None:
        when = next_fire(rule["expression"], after, anchor=self._created)
        if when is not None:
            self.timeline.at(when, lambda: self._fire(rule, when))

    def _fire(self, rule: dict, when: datetime) -> None:
        if self._stopped:
            return
        self.fired.append((rule["name"], when))
        event = scheduled_event(rule["name"], when, self.function.region)
        self.function.submit(event, f"schedule {rule['name']} {rule['expression']}")
        self._arm(rule, when)
