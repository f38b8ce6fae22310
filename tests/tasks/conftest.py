"""Fixtures for the task backbone's tests: sample-task state reset, and moving the ledger's clock."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.tasks import sample_tasks


@pytest.fixture(autouse=True)
def _fresh_sample_tasks():
    sample_tasks.reset()
    yield
    sample_tasks.release.set()  # never leave a worker thread waiting
    sample_tasks.reset()


@pytest.fixture
def later():
    """A moment `seconds` from now: what the sweeper sees when that much time has passed."""

    def at(seconds: float):
        return timezone.now() + timedelta(seconds=seconds)

    return at
