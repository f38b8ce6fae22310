"""Workspace isolation of the policy an agent gets: workspace A's credential reaches nothing of B's."""

import json
from pathlib import Path

import pytest
from django.conf import settings

from apps.realtime.policies import agent_policy
from tests.support import iot_policy
from tests.support.events import ACCOUNT, REGION

WHERE = {"region": REGION, "account": ACCOUNT}
A, B = 1, 12  # 12 starts with 1: a prefix match without the trailing '/' would leak
AGENT, COLLEAGUE = 3, 34


@pytest.fixture
def policy_a() -> list[dict]:
    return [agent_policy(workspace_id=A, user_id=AGENT, client_id="cue-1-3-abc", region=REGION, account_id=ACCOUNT)]


@pytest.mark.parametrize(
    "topic_filter",
    [f"cue/{A}/conversations/#", f"cue/{A}/conversations/+/suggestions", f"cue/{A}/conversations/42/messages"]
    + [f"cue/{A}/conversations", f"cue/{A}/conversations/+/#"]
    + [f"cue/{A}/agents/{AGENT}/#", f"cue/{A}/agents/{AGENT}/notices"],
)
def test_a_may_subscribe_in_its_own_tree(policy_a, topic_filter):
    assert iot_policy.can_subscribe(policy_a, topic_filter=topic_filter, **WHERE)


@pytest.mark.parametrize(
    "topic_filter",
    [f"cue/{B}/#", f"cue/{B}/conversations/#", f"cue/{B}/conversations/42/suggestions", f"cue/{B}/agents/{AGENT}/#"]
    + [f"cue/{B}/conversations", f"cue/{B}/conversations/+/#", f"cue/{A}/conversationsX", f"cue/{A}/+"]
    + ["#", "cue/#", "cue/+/conversations/#", "cue/+/conversations", f"cue/+/agents/{AGENT}/#"]
    + [f"cue/{A}/#", f"cue/{A}/agents/#", f"cue/{A}/agents/{COLLEAGUE}/#", f"cue/{A}/agents/+/notices"]
    + [f"cue-staging/{A}/conversations/#"],
)
def test_a_may_not_subscribe_outside_it(policy_a, topic_filter):
    """B's tree, wildcards across workspaces, a colleague's branch, another stage's root: all denied."""
    assert not iot_policy.can_subscribe(policy_a, topic_filter=topic_filter, **WHERE)


def test_a_receives_its_messages_and_not_bs(policy_a):
    assert iot_policy.can_receive(policy_a, topic=f"cue/{A}/conversations/42/suggestions", **WHERE)
    assert not iot_policy.can_receive(policy_a, topic=f"cue/{B}/conversations/42/suggestions", **WHERE)
    assert iot_policy.can_receive(policy_a, topic=f"cue/{A}/conversations", **WHERE), "the conversation list"
    assert iot_policy.can_receive(policy_a, topic=f"cue/{A}/conversations/42/messages", **WHERE)
    assert not iot_policy.can_receive(policy_a, topic=f"cue/{B}/conversations", **WHERE)
    assert not iot_policy.can_receive(policy_a, topic=f"cue/{A}/conversationsX", **WHERE)
    assert not iot_policy.can_receive(policy_a, topic=f"cue/{A}/agents/{COLLEAGUE}/notices", **WHERE)


@pytest.mark.parametrize(
    "topic", [f"cue/{A}/conversations/42/suggestions", f"cue/{B}/conversations/42/suggestions", "anything"]
)
def test_a_may_publish_nowhere(policy_a, topic):
    """Browsers only listen: no publish in B's tree, nor in A's own (no one can forge a suggestion)."""
    assert not iot_policy.can_publish(policy_a, topic=topic, **WHERE)


def test_policies_of_two_workspaces_share_nothing():
    """Every resource in A's policy is outside B's, and the other way round."""
    a = agent_policy(workspace_id=A, user_id=AGENT, client_id="a", region=REGION, account_id=ACCOUNT)
    b = agent_policy(workspace_id=B, user_id=AGENT, client_id="b", region=REGION, account_id=ACCOUNT)
    for mine, theirs in ((a, b), (b, a)):
        for statement in theirs["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for resource in resources:
                concrete = resource.replace("*", "x/y")
                assert not iot_policy.allowed([mine], statement["Action"], concrete), concrete


def test_the_evaluator_applies_iam_rules():
    """Explicit Deny wins over Allow; '*' spans levels; '+' and '#' are plain characters."""
    policy = {
        "Statement": [
            {"Effect": "Allow", "Action": "iot:*", "Resource": "arn:aws:iot:r:a:topic/cue/*"},
            {"Effect": "Deny", "Action": "iot:Publish", "Resource": "arn:aws:iot:r:a:topic/cue/1/*"},
        ]
    }
    assert iot_policy.allowed([policy], "iot:Receive", "arn:aws:iot:r:a:topic/cue/1/x/y")
    assert not iot_policy.allowed([policy], "iot:Publish", "arn:aws:iot:r:a:topic/cue/1/x")
    assert iot_policy.allowed([policy], "iot:Publish", "arn:aws:iot:r:a:topic/cue/2/x")
    assert not iot_policy.allowed([policy], "iot:Receive", "arn:aws:iot:r:a:topic/other/1")
    literal = {"Statement": [{"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "arn:x:topicfilter/cue/+"}]}
    assert iot_policy.allowed([literal], "iot:Subscribe", "arn:x:topicfilter/cue/+")
    assert not iot_policy.allowed([literal], "iot:Subscribe", "arn:x:topicfilter/cue/1")


@pytest.mark.parametrize(("stage", "root"), [("production", "cue"), ("staging", "cue-staging"), ("dev", "cue-dev")])
def test_each_stage_role_may_discover_the_endpoint_and_publish_in_its_own_tree_only(stage, root):
    """iam/<stage>.json (the stage's least-privilege role): iot:DescribeEndpoint, iot:Publish under its root only."""
    role = [json.loads((Path(settings.BASE_DIR) / "iam" / f"{stage}.json").read_text())]
    assert iot_policy.allowed(role, "iot:DescribeEndpoint", "*")
    for topic in (f"{root}/1/conversations/42/suggestions", f"{root}/1/conversations"):
        assert iot_policy.can_publish(role, topic=topic, **WHERE), topic
    for other in {"cue", "cue-staging", "cue-dev"} - {root}:
        assert not iot_policy.can_publish(role, topic=f"{other}/1/conversations", **WHERE), other
    assert not iot_policy.can_publish(role, topic="other-app/1/x", **WHERE)
    assert not iot_policy.allowed(role, "iot:Subscribe", f"arn:aws:iot:{REGION}:{ACCOUNT}:topicfilter/{root}/#")
