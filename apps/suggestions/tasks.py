"""Async entry points of suggestions: the step a new customer message triggers."""

from apps.tasks.registry import durable_task


@durable_task
def suggest_replies(message_id: int) -> int | None:
    """Rank the knowledge base against a new customer message and store its suggestions.

    The contract (apps.conversations dispatches it, with the message's workspace, when a NEW
    customer message is stored; a redelivered webhook never dispatches it twice):
    takes the Message id, returns the message id for a callback such as publishing.
    Until the suggestions issue fills it in, it does nothing.
    """
    return message_id
