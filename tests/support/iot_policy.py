"""A small evaluator of AWS IoT policy documents: does this policy allow this action on this resource?

It follows IAM's rules as IoT applies them: an explicit Deny wins, then an Allow, else denied; in
Action and Resource '*' matches any run of characters (also '/') and '?' one; MQTT's '+' and '#' in a
topic filter are plain characters of the resource name.
"""

import re


def _matches(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _applies(statement: dict, action: str, resource: str) -> bool:
    actions = any(_matches(a.lower(), action.lower()) for a in _as_list(statement.get("Action", [])))
    resources = any(_matches(r, resource) for r in _as_list(statement.get("Resource", [])))
    return actions and resources


def allowed(policies: list[dict], action: str, resource: str) -> bool:
    statements = [s for p in policies for s in p["Statement"]]
    if any(s["Effect"] == "Deny" and _applies(s, action, resource) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _applies(s, action, resource) for s in statements)


def can_subscribe(policies, *, region: str, account: str, topic_filter: str) -> bool:
    """Subscribe needs iot:Subscribe on the filter; the messages then need iot:Receive on each topic."""
    return allowed(policies, "iot:Subscribe", f"arn:aws:iot:{region}:{account}:topicfilter/{topic_filter}")


def can_receive(policies, *, region: str, account: str, topic: str) -> bool:
    return allowed(policies, "iot:Receive", f"arn:aws:iot:{region}:{account}:topic/{topic}")


def can_publish(policies, *, region: str, account: str, topic: str) -> bool:
    return allowed(policies, "iot:Publish", f"arn:aws:iot:{region}:{account}:topic/{topic}")


def can_connect(policies, *, region: str, account: str, client_id: str) -> bool:
    return allowed(policies, "iot:Connect", f"arn:aws:iot:{region}:{account}:client/{client_id}")
