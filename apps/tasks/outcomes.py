"""What one delivery of a task did: the values the runner returns, the logs carry and benches count.

A `StrEnum`: every member is its string value (`Outcome.SUCCEEDED == "succeeded"`), so logs, JSON
and anything that compared the old bare strings read the same. No Django import: the runner
(Zappa's `task_path`) may load it before the ledger's models.
"""

from enum import StrEnum


class Outcome(StrEnum):
    # The delivery ran the task.
    SUCCEEDED = "succeeded"  # its effect and the success mark are committed
    FAILED = "failed"  # a retryable error: recorded, the sweeper sends it again after a backoff
    DEAD = "dead"  # a retryable error on its last attempt (or its claim ran out on the last one)
    REJECTED = "rejected"  # a permanent error: recorded with its reason, never retried
    LOST = "lost"  # another delivery took the claim over while this one ran; nothing recorded by this one
    # The delivery did not run the task.
    DONE = "done"  # the task already finished (succeeded, dead or rejected): a duplicate delivery
    BUSY = "busy"  # another delivery holds a live claim
    NOT_DUE = "not_due"  # a failed task whose backoff has not passed
    MISSING = "missing"  # no ledger row with this id
    INVALID = "invalid"  # a message without a valid task id (dropped by the runner)
