"""AWS event shapes as Lambda receives them (API Gateway v1/v2, SNS, EventBridge) and a Lambda context."""

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass
class LambdaContext:
    """The attributes of the context object the Lambda Python runtime passes."""

    function_name: str = "cue-dev"
    timeout_ms: int = 30_000
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_ms - (time.monotonic() - self.started) * 1000))


def _body(body, headers: dict, base64_body: bool) -> tuple[str | None, bool]:
    if body is None:
        return None, False
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    raw = body.encode() if isinstance(body, str) else body
    if base64_body:
        return base64.b64encode(raw).decode(), True
    return raw.decode(), False


def apigw_v1(
    method, path, *, headers=None, body=None, query=None, base64_body=False, stage="dev", source_ip="203.0.113.9"
):
    """A REST API (v1) proxy event, as API Gateway sends it for https://<id>.execute-api.../<stage><path>."""
    headers = {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "X-Forwarded-Proto": "https"} | (headers or {})
    text, is_b64 = _body(body, headers, base64_body)
    query = query or {}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "path": f"/{stage}{path}",
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "requestTimeEpoch": int(time.time() * 1000),
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }


def apigw_v2(
    method,
    path,
    *,
    headers=None,
    body=None,
    query=None,
    base64_body=False,
    cookies=None,
    stage="dev",
    source_ip="203.0.113.9",
):
    """An HTTP API (payload 2.0) event for a named stage: rawPath carries the stage prefix."""
    headers = {"host": "abc123.execute-api.us-east-1.amazonaws.com", "x-forwarded-proto": "https"} | {
        k.lower(): v for k, v in (headers or {}).items()
    }
    text, is_b64 = _body(body, headers, base64_body)
    query = query or {}
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": f"/{stage}{path}",
        "rawQueryString": urlencode(query),
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "domainName": headers["host"],
            "http": {"method": method, "path": f"/{stage}{path}", "protocol": "HTTP/1.1", "sourceIp": source_ip},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": is_b64,
    }
    if query:
        event["queryStringParameters"] = query
    if text is not None:
        event["body"] = text
    if cookies:
        event["cookies"] = cookies
    return event


def sns_event(message: str, topic_arn: str, message_id: str | None = None) -> dict:
    """An SNS notification delivered to a Lambda subscription."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id or str(uuid.uuid4()),
                    "TopicArn": topic_arn,
                    "Subject": None,
                    "Message": message,
                    "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    "SignatureVersion": "1",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def scheduled_event(rule_name: str) -> dict:
    """An EventBridge scheduled event; Zappa names rules '<function>-<module.function>'."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule_name}"],
        "detail": {},
    }


def response_json(result: dict) -> dict:
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)
