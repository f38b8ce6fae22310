"""Knowledge-base fixtures: a small hand-written knowledge base, and both ranking indexes."""

import pytest

from apps.knowledge import ranking
from apps.knowledge.ranking.python import PythonIndex
from apps.knowledge.services import entry_create

HELP_CENTRE = [
    ("Reset your password", "<p>To reset your password, open <b>Settings</b>, choose Security and click "
     "<em>Forgot password</em>. We email you a reset link that works for one hour.</p>"),
    ("Refunds", "<p>We refund any order within 30 days. Refunds reach your card in five to ten business days; "
     "you can follow the refund status on the Orders page.</p>"),
    ("Shipping times", "<p>Standard shipping takes three to five days, express shipping one or two days. "
     "International delivery can take up to three weeks.</p>"),
    ("Cancel an order", "<p>You can cancel an order until it ships: open Orders, pick the order and press "
     "Cancel. A cancelled order is refunded in full.</p>"),
    ("Change your invoice address", "<p>Invoices use the billing address of your account. Change it under "
     "Billing, then download the corrected invoice.</p>"),
]  # fmt: skip


@pytest.fixture(params=["postgres", "python"])
def index_kind(request, monkeypatch):
    """Run a ranking test through PostgreSQL's index and through the pure-Python (SQLite) one."""
    if request.param == "python":
        monkeypatch.setattr(ranking, "_index_for", lambda workspace_id: PythonIndex(workspace_id))
    return request.param


@pytest.fixture
def make_kb():
    """Create the hand-written help centre in a workspace; returns {title: entry}."""

    def make(workspace_id: int, entries=HELP_CENTRE) -> dict:
        return {title: entry_create(workspace_id=workspace_id, title=title, body=body) for title, body in entries}

    return make


@pytest.fixture
def kb(owner, make_kb) -> dict:
    return make_kb(owner.workspace_id)
