"""Fixtures shared by the whole suite: API clients and workspaces with members."""

import itertools

import pytest
from rest_framework.test import APIClient

from apps.accounts import services
from apps.accounts.models import Membership, Role

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"


def _auth_client(membership: Membership) -> APIClient:
    from apps.accounts.api import token_pair_for

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(membership.user)['access']}")
    client.membership = membership
    return client


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters and cached values never leak from one test into another."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_workspace(db):
    """Create a workspace and its owner; returns the owner's membership."""

    def make(name: str | None = None) -> Membership:
        n = next(_counter)
        return services.workspace_signup(
            email=f"owner{n}@example.com", password=PASSWORD, workspace_name=name or f"Workspace {n}"
        )

    return make


@pytest.fixture
def make_member(db):
    """Add a member with a role to the owner's workspace."""

    def make(owner: Membership, role: str = Role.AGENT) -> Membership:
        n = next(_counter)
        return services.member_add(actor=owner, email=f"member{n}@example.com", password=PASSWORD, role=role)

    return make


@pytest.fixture
def owner(make_workspace) -> Membership:
    return make_workspace()


@pytest.fixture
def owner_client(owner) -> APIClient:
    return _auth_client(owner)


@pytest.fixture
def agent_client(owner, make_member) -> APIClient:
    return _auth_client(make_member(owner, Role.AGENT))


@pytest.fixture
def other_owner_client(make_workspace) -> APIClient:
    """The owner of a second, unrelated workspace (for tenancy tests)."""
    return _auth_client(make_workspace("Other company"))


@pytest.fixture
def client_for():
    return _auth_client
