"""The @durable_task decorator and the registry of task names."""

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import autodiscover_modules

_TASKS: dict[str, "DurableTask"] = {}


class UnknownTask(LookupError):
    pass


@dataclass(frozen=True)
class DurableTask:
    """A module-level function that runs through the ledger, at least once delivered, once in effect."""

    func: Callable[..., Any]
    name: str
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    retry_on: tuple[type[BaseException], ...] = ()
    permanent: tuple[type[BaseException], ...] = ()
    atomic: bool = True

    def is_permanent(self, exc: BaseException) -> bool:
        """Whether an error of the body is permanent (recorded rejected, never retried) or worth retrying.

        In order: `permanent=` wins, then `retry_on=`, then the error's own `retryable` attribute
        (`apps.integrations.client.IntercomError` carries one: False for 401/404/other 4xx, True for
        429, 5xx, timeouts and connection errors); any other error is retried (a bug, a lost
        database connection), then dead.
        """
        if isinstance(exc, self.permanent):
            return True
        if isinstance(exc, self.retry_on):
            return False
        return getattr(exc, "retryable", None) is False

    def __call__(self, *args, **kwargs):
        """Calling the task runs the function directly (what the worker does inside the ledger)."""
        return self.func(*args, **kwargs)

    def delay(self, *args, **kwargs):
        """Dispatch with default options: args and kwargs must be small JSON values (ids, not objects)."""
        from apps.tasks.services import task_dispatch

        return task_dispatch(task=self, args=args, kwargs=kwargs)

    def dispatch(self, *, args=(), kwargs=None, workspace_id=None, callback=None, error_callback=None):
        """Dispatch with options: the tenant, and callbacks called with this task's result / failure."""
        from apps.tasks.services import task_dispatch

        return task_dispatch(
            task=self,
            args=args,
            kwargs=kwargs or {},
            workspace_id=workspace_id,
            callback=callback,
            error_callback=error_callback,
        )


def durable_task(
    func: Callable | None = None,
    *,
    name: str | None = None,
    max_attempts: int = 5,
    backoff_seconds: float = 30,
    backoff_max_seconds: float = 3600,
    retry_on: tuple[type[BaseException], ...] = (),
    permanent: tuple[type[BaseException], ...] = (),
    atomic: bool = True,
):
    """Declare a durable task. Use on module-level functions in apps/<app>/tasks.py that take ids.

    `retry_on` / `permanent`: error classes retried with backoff / recorded as rejected at once
    (see `DurableTask.is_permanent`; an error's `retryable = False` makes it permanent without
    being listed). `atomic=True` runs the body in one transaction with its success mark (database
    work only); `atomic=False` runs it with no transaction open, for a body that calls another
    service: it owns its short transactions and its own once-ness (docs/tasks.md).
    """

    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")

    def wrap(f: Callable) -> DurableTask:
        task = DurableTask(
            func=f,
            name=name or f"{f.__module__}.{f.__qualname__}",
            max_attempts=max_attempts,
            backoff_seconds=backoff_seconds,
            backoff_max_seconds=backoff_max_seconds,
            retry_on=tuple(retry_on),
            permanent=tuple(permanent),
            atomic=atomic,
        )
        if "." in f.__qualname__ or "<" in f.__qualname__:
            raise TypeError(f"{task.name}: a durable task must be a module-level function")
        _TASKS[task.name] = task
        return task

    return wrap(func) if func is not None else wrap


def task_get(name: str) -> DurableTask:
    """The registered task, importing its module on first use (a cold worker has not imported it yet).

    A default name is the function's dotted path, so its module is imported; a custom `name=` is
    found by importing every installed app's `tasks` module.
    """
    if name not in _TASKS:
        module = name.rpartition(".")[0]
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not (module == exc.name or module.startswith(f"{exc.name}.")):
                raise  # the module exists but one of its imports is missing: show that
    if name not in _TASKS:
        autodiscover_modules("tasks")
    try:
        return _TASKS[name]
    except KeyError as exc:
        raise UnknownTask(name) from exc


def task_name_of(task: "DurableTask | str | None") -> str:
    if task is None:
        return ""
    return task if isinstance(task, str) else task.name
