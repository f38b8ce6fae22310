"""The AWS IoT policy a connected agent gets: connect as their client id, subscribe and receive in their tree."""

from apps.realtime import topics

# AWS IoT Core's limit on one policy document returned by a custom authorizer.
MAX_POLICY_CHARS = 2048


def _arn(region: str, account_id: str, kind: str, name: str) -> str:
    return f"arn:aws:iot:{region}:{account_id}:{kind}/{name}"


def _policy_pattern(topic_filter: str) -> str:
    """A filter as a policy pattern: an exact topic stays exact; from its first wildcard level on, '/*'."""
    levels = topic_filter.split("/")
    for position, level in enumerate(levels):
        if level in ("+", "#"):
            return "/".join(levels[:position]) + "/*"
    return topic_filter


def subscribe_resources(*, workspace_id: int, user_id: int) -> list[str]:
    """The topics and prefixes an agent may listen under, as policy patterns ('*' is the policy's wildcard).

    A prefix ends in '/*' after a whole level, so workspace 1 never matches workspace 12's tree.
    """
    filters = topics.subscribe_filters(workspace_id=workspace_id, user_id=user_id)
    return list(dict.fromkeys(_policy_pattern(f) for f in filters))


def agent_policy(*, workspace_id: int, user_id: int, client_id: str, region: str, account_id: str) -> dict:
    """Connect as `client_id`; Subscribe/Receive in the workspace's conversations and the agent's own branch.

    There is no iot:Publish at all: browsers only listen; Cue publishes from its tasks.
    """
    prefixes = subscribe_resources(workspace_id=workspace_id, user_id=user_id)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": _arn(region, account_id, "client", client_id)},
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [_arn(region, account_id, "topicfilter", p) for p in prefixes],
            },
            {
                "Effect": "Allow",
                "Action": "iot:Receive",
                "Resource": [_arn(region, account_id, "topic", p) for p in prefixes],
            },
        ],
    }
