"""Fixtures shared by the whole suite: API clients and workspaces with members."""

import itertools
import os

import pytest
from rest_framework.test import APIClient

from apps.accounts import services
from apps.accounts.models import Membership, Role
from tests.support.aws import MotoServer
from tests.support.lambda_harness import Handler, SnsCapture, stage_settings_values, write_stage_settings

_counter = itertools.count(1)
_moto: MotoServer | None = None


def pytest_configure(config):
    """One moto server on loopback for the whole run, set before anything makes a boto3 client.

    Zappa makes its SNS and STS clients when zappa.asynchronous is first imported: with the
    endpoint set here, no client in this process can ever reach AWS.
    """
    global _moto
    _moto = MotoServer().start()
    os.environ.update(_moto.env())


def pytest_unconfigure(config):
    if _moto is not None:
        _moto.stop()


@pytest.fixture(scope="session")
def moto_server() -> MotoServer:
    return _moto


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


# ------------------------------------------------------------------------------
# The Lambda path: a stage's entry point and its async SNS topic
# ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dev_settings_dir(tmp_path_factory):
    return write_stage_settings("dev", tmp_path_factory.mktemp("zappa-dev")).parent


@pytest.fixture
def lambda_handler(moto_server, dev_settings_dir, transactional_db):
    """The dev stage's entry point around the real Zappa handler, its remote_env served by moto's S3."""
    moto_server.reset()
    values = stage_settings_values(dev_settings_dir / "zappa_settings.py")
    moto_server.put_remote_env(values["REMOTE_ENV"], {"CUE_REMOTE_ENV_LOADED": "1"})
    with Handler(dev_settings_dir, function_name=f"{values['PROJECT_NAME']}-{values['API_STAGE']}") as handler:
        yield handler


@pytest.fixture
def sns(lambda_handler, moto_server, monkeypatch):
    """Tasks really publish to the stage's async topic (as in Lambda); the test delivers them back."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", lambda_handler.function_name)
    return SnsCapture(moto_server, lambda_handler)
