"""The AWS IoT Core custom authorizer: checks a realtime token, returns the agent's policy.

IoT invokes Cue's Lambda function with its own event shape, which Zappa's handler does not route;
project/lambda_entry.py sends it here. The browser connects with MQTT username
`<anything>?x-amz-customauthorizer-name=<authorizer>` and its realtime token as the password.
"""

import base64
import binascii
import logging
import os
import time

logger = logging.getLogger(__name__)

# IoT re-invokes the authorizer this often on a live connection: a removed member is cut off within it.
REFRESH_AFTER_SECONDS = 300
# IoT's bounds for disconnectAfterInSeconds.
MIN_CONNECTION_SECONDS, MAX_CONNECTION_SECONDS = 300, 86_400


def is_iot_authorizer_event(event) -> bool:
    """The shape IoT Core sends a custom authorizer: protocols, protocolData, connectionMetadata."""
    return isinstance(event, dict) and "connectionMetadata" in event and "protocols" in event


def _deny(reason: str, event: dict) -> dict:
    connection = (event.get("connectionMetadata") or {}).get("id")
    logger.warning("realtime connection refused", extra={"reason": reason, "connection_id": connection})
    return {
        "isAuthenticated": False,
        "principalId": "denied",
        "disconnectAfterInSeconds": MIN_CONNECTION_SECONDS,
        "refreshAfterInSeconds": REFRESH_AFTER_SECONDS,
        "policyDocuments": [],
    }


def _password_of(event: dict) -> str | None:
    mqtt = (event.get("protocolData") or {}).get("mqtt") or {}
    encoded = mqtt.get("password")
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def iot_authorize(event: dict, *, region: str, account_id: str) -> dict:
    """isAuthenticated with a policy for the token's workspace, or a refusal; never raises."""
    from apps.accounts.selectors import membership_is_active
    from apps.realtime.policies import agent_policy
    from apps.realtime.tokens import InvalidRealtimeToken, realtime_token_verify

    token = _password_of(event)
    if token is None:
        return _deny("no token in the MQTT password", event)
    try:
        claims = realtime_token_verify(token)
    except InvalidRealtimeToken as exc:
        return _deny(f"invalid token: {exc}", event)
    client_id = ((event.get("protocolData") or {}).get("mqtt") or {}).get("clientId")
    if client_id != claims.client_id:
        return _deny("client id is not the one the token was issued for", event)
    try:
        if not membership_is_active(user_id=claims.user_id, workspace_id=claims.workspace_id):
            return _deny("not an active member of the token's workspace", event)
    except Exception:  # a database outage refuses the connection; the browser retries
        logger.exception("realtime authorizer could not check the membership")
        return _deny("membership check failed", event)

    remaining = int(claims.expires_at.timestamp() - time.time())
    policy = agent_policy(
        workspace_id=claims.workspace_id,
        user_id=claims.user_id,
        client_id=claims.client_id,
        region=region,
        account_id=account_id,
    )
    logger.info(
        "realtime connection allowed",
        extra={"workspace_id": claims.workspace_id, "user_id": claims.user_id, "client_id": claims.client_id},
    )
    return {
        "isAuthenticated": True,
        "principalId": f"ws{claims.workspace_id}user{claims.user_id}",  # IoT wants [a-zA-Z0-9]{1,128}
        # The connection ends when the token does (IoT's floor is 5 minutes: the refresh then refuses it).
        "disconnectAfterInSeconds": max(MIN_CONNECTION_SECONDS, min(MAX_CONNECTION_SECONDS, remaining)),
        "refreshAfterInSeconds": REFRESH_AFTER_SECONDS,
        "policyDocuments": [policy],
    }


def iot_authorizer_handler(event: dict, context) -> dict:
    """Lambda entry for the authorizer: the account and region come from the invoked function's ARN."""
    arn = getattr(context, "invoked_function_arn", "") or ""
    parts = arn.split(":")
    region = parts[3] if len(parts) > 4 else os.environ.get("AWS_REGION", "us-east-1")
    account_id = parts[4] if len(parts) > 4 else ""
    if not account_id:
        return _deny("no account id in the invocation context", event)
    return iot_authorize(event, region=region, account_id=account_id)
