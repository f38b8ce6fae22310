"""What another database connection sees while a worker waits on another service (no transaction, no row lock)."""

from django.db import OperationalError, connection, transaction
from django.db.models import Model

from apps.tasks.services import task_execute


def while_intercom_is_called(*rows: Model, task_id) -> dict:
    """Probe from another thread (say, the Intercom stand-in's handler) while a task calls out.

    `rows_locked`: whether any of `rows` is locked (SELECT ... FOR UPDATE NOWAIT from this thread's
    own connection); `transactions_open`: connections to this database idle in a transaction (the
    worker's, if it waits inside one); `redelivery`: the outcome of delivering the task again now
    (its live claim keeps the duplicate away: busy). Closes this thread's connection.
    """
    seen = {}
    try:
        with transaction.atomic():
            for row in rows:
                type(row).objects.select_for_update(nowait=True).get(pk=row.pk)
        seen["rows_locked"] = False
    except OperationalError:
        seen["rows_locked"] = True
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'"
        )
        seen["transactions_open"] = cursor.fetchone()[0]
    seen["redelivery"] = task_execute(task_id=str(task_id))
    connection.close()
    return seen
