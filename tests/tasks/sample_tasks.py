"""Durable tasks used by the backbone's tests. Their effect is a Workspace row with a known name."""

import threading
from collections import Counter

from django.db import connection

from apps.accounts.models import Workspace
from apps.tasks.invocation import check_deadline
from apps.tasks.registry import durable_task

# How many times each task body started, by name: proves "ran once", not only "took effect once".
calls: Counter = Counter()
# Names whose next run is killed mid-way (process death) or loses its database connection.
kill_next: set[str] = set()
drop_connection_next: set[str] = set()
# Lets a test hold a task mid-run while it delivers the same message again.
started = threading.Event()
release = threading.Event()


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way up records it."""


def reset() -> None:
    calls.clear()
    kill_next.clear()
    drop_connection_next.clear()
    started.clear()
    release.clear()
    in_transaction.clear()


@durable_task
def make_workspace(name: str) -> int:
    calls[name] += 1
    return Workspace.objects.create(name=name).id


@durable_task
def double(value: int) -> int:
    Workspace.objects.create(name=f"double:{value}")
    return value * 2


@durable_task
def record_result(value) -> None:
    Workspace.objects.create(name=f"callback:{value}")


@durable_task(max_attempts=3, backoff_seconds=10, backoff_max_seconds=60)
def always_fails(name: str) -> None:
    calls[name] += 1
    Workspace.objects.create(name=f"partial:{name}")  # rolled back with the failure
    raise RuntimeError(f"boom {name}")


@durable_task(max_attempts=3)
def raises_type_error(name: str) -> None:
    calls[name] += 1
    Workspace.objects.create(name=f"typeerror:{name}")
    raise TypeError("a bug inside the task")


@durable_task
def record_dead(info: dict) -> None:
    Workspace.objects.create(name=f"dead:{info['task']}")


@durable_task
def dies_midway(name: str) -> None:
    calls[name] += 1
    Workspace.objects.create(name=name)
    if name in kill_next:
        kill_next.discard(name)
        raise Killed(name)
    if name in drop_connection_next:
        drop_connection_next.discard(name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")


@durable_task
def holds_until_released(name: str) -> None:
    calls[name] += 1
    Workspace.objects.create(name=name)
    started.set()
    assert release.wait(timeout=20), "the test never released the task"


@durable_task
def watches_deadline(name: str) -> None:
    Workspace.objects.create(name=f"before-check:{name}")
    check_deadline()
    Workspace.objects.create(name=f"after-check:{name}")


@durable_task
def returns_a_set(name: str) -> set:
    Workspace.objects.create(name=name)
    return {name}


@durable_task(name="samples.renamed")
def renamed(name: str) -> None:
    Workspace.objects.create(name=name)


@durable_task
def measures(blob: str) -> int:
    return len(blob)


class Refused(Exception):
    """An error that says it is permanent, as Intercom's 401/404 do (`retryable = False`)."""

    retryable = False


class Passing(Exception):
    """An error that says retrying may work, as Intercom's 429/5xx do."""

    retryable = True


class Declared(Exception):
    """A plain error: its task declares what it means."""


# How each sample error task's body saw the database: inside a transaction or not.
in_transaction: dict[str, bool] = {}


@durable_task(max_attempts=3)
def raises(name: str, kind: str) -> None:
    """Raises the error named by `kind` after a write (rolled back: the task is atomic)."""
    calls[name] += 1
    Workspace.objects.create(name=f"partial:{name}")
    raise {"refused": Refused, "passing": Passing, "declared": Declared, "runtime": RuntimeError}[kind](name)


@durable_task(max_attempts=3, permanent=(Declared,), retry_on=(Refused,))
def declares(name: str, kind: str) -> None:
    """`permanent=` makes a plain error permanent; `retry_on=` overrides an error's own `retryable = False`."""
    calls[name] += 1
    raise {"refused": Refused, "declared": Declared}[kind](name)


@durable_task(atomic=False)
def calls_out(name: str) -> str:
    """A body that calls another service: no transaction open while it runs, its write committed on its own."""
    calls[name] += 1
    in_transaction[name] = connection.in_atomic_block
    Workspace.objects.create(name=name)
    started.set()
    assert release.wait(timeout=20), "the test never released the task"
    return name


@durable_task(atomic=False, max_attempts=3)
def calls_out_and_fails(name: str, kind: str) -> None:
    """Commits a write of its own, then fails: the write stays (the body owns its once-ness)."""
    calls[name] += 1
    Workspace.objects.create(name=f"kept:{name}:{calls[name]}")
    raise {"refused": Refused, "passing": Passing}[kind](name)


def workspace_names(prefix: str) -> list[str]:
    """The effects so far: names of Workspace rows starting with prefix (a name twice = a duplicated effect)."""
    return sorted(Workspace.objects.filter(name__startswith=prefix).values_list("name", flat=True))
