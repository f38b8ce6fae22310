"""What code knows about the invocation running it: its deadline, and whether a request is waiting for an answer."""

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

# Monotonic deadline (seconds) of the current invocation; None outside Lambda.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("cue_invocation_deadline", default=None)
# True while an HTTP request is being answered (project.middleware.AnsweringRequestMiddleware): what is
# sent to another service then must not hold the answer (apps.tasks.publisher's tight SNS timeouts).
_answering: contextvars.ContextVar[bool] = contextvars.ContextVar("cue_answering_request", default=False)


class DeadlineNear(Exception):
    """Raised by check_deadline(): stop now, before Lambda kills the invocation."""


@contextmanager
def invocation(context) -> Iterator[None]:
    """Record the deadline of a Lambda invocation for the code it runs."""
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else None
    token = _deadline.set(time.monotonic() + remaining_ms / 1000 if remaining_ms is not None else None)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining_seconds() -> float | None:
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def check_deadline() -> None:
    """Call between units of work: raises DeadlineNear inside the safety margin."""
    remaining = remaining_seconds()
    if remaining is not None and remaining < settings.CUE_TASK_DEADLINE_MARGIN_SECONDS:
        raise DeadlineNear(f"{remaining:.1f}s left in the invocation")


@contextmanager
def answering_request() -> Iterator[None]:
    """Mark the code inside as answering an HTTP request (its caller is waiting)."""
    token = _answering.set(True)
    try:
        yield
    finally:
        _answering.reset(token)


def answering_request_now() -> bool:
    return _answering.get()
