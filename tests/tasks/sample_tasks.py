"""Durable tasks used by the backbone's tests. Their effect is a Workspace row with a known name."""

from apps.accounts.models import Workspace
from apps.tasks.registry import durable_task


@durable_task
def make_workspace(name: str) -> int:
    return Workspace.objects.create(name=name).id


@durable_task
def double(value: int) -> int:
    Workspace.objects.create(name=f"double:{value}")
    return value * 2


@durable_task
def record_result(value) -> None:
    Workspace.objects.create(name=f"callback:{value}")


@durable_task(max_attempts=3, backoff_seconds=0.01, backoff_max_seconds=0.01)
def always_fails(name: str) -> None:
    Workspace.objects.create(name=f"partial:{name}")  # rolled back with the failure
    raise RuntimeError(f"boom {name}")


@durable_task(max_attempts=3)
def raises_type_error(name: str) -> None:
    Workspace.objects.create(name=f"typeerror:{name}")
    raise TypeError("a bug inside the task")


@durable_task
def record_dead(info: dict) -> None:
    Workspace.objects.create(name=f"dead:{info['task']}")
