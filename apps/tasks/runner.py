"""The function every task message names as its `task_path`: Zappa's SNS router calls it."""

import logging
import uuid

from apps.tasks.outcomes import Outcome

logger = logging.getLogger(__name__)


def run_task_message(envelope: dict) -> Outcome:
    """Run one delivery of a durable task: Zappa calls this with the envelope dispatch (or the sweeper) sent."""
    from apps.tasks.services import task_execute

    try:
        task_id = str(uuid.UUID(str(envelope["task_id"])))
    except (TypeError, KeyError, ValueError):
        # Nothing to claim or record: raising would only make Lambda deliver the same bad message again.
        logger.error("task message without a valid task id dropped", extra={"envelope": str(envelope)[:500]})
        return Outcome.INVALID
    try:
        return task_execute(task_id=task_id)
    except TypeError as exc:
        # Zappa's run_function calls a function again with fewer arguments when it raises TypeError:
        # a TypeError escaping here would run the delivery up to three times.
        raise RuntimeError(f"task {task_id} failed: {exc}") from exc
