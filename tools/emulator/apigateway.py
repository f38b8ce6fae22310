"""API Gateway in front of the stage: a real HTTP request becomes the proxy event API Gateway sends.

`https://<api>.execute-api.<region>.amazonaws.com/<stage>/<path>` is served here as
`http://<host>:<port>/<stage>/<path>`; the event carries the execute-api host, the stage and the
client's address as API Gateway would (v1: REST API; v2: HTTP API, payload format 2.0), and the
function's answer is turned back into the HTTP response, with API Gateway's own refusals: 403 off
the stage's path, 413 over 10 MB, 502 for a failed or oversized answer, 504 after 29 seconds.
"""

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from tools.emulator.function import ACCOUNT, StageFunction

INTEGRATION_TIMEOUT_SECONDS = 29  # API Gateway's limit on waiting for the function
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response limit
# HTTP APIs pass these bodies as text and base64-encode the rest.
TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml", "+json", "+xml")


@dataclass
class HttpRequest:
    method: str
    target: str  # path and query string as received
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _gateway_error(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json")], json.dumps({"message": message}).encode())


class ApiGateway:
    """The stage's API (Zappa's `ANY /` and `ANY /{proxy+}` to the function) as a translator of requests."""

    def __init__(
        self, *, stage: str, version: str = "v1", binary_support: bool = True, region: str = "us-east-1", api_id=None
    ):
        if version not in ("v1", "v2"):
            raise ValueError(f"API Gateway version must be v1 or v2, not {version!r}")
        self.stage = stage
        self.version = version
        self.binary_support = binary_support
        self.region = region
        self.api_id = api_id or "local" + uuid.uuid4().hex[:5]

    @property
    def domain(self) -> str:
        return f"{self.api_id}.execute-api.{self.region}.amazonaws.com"

    def event_for(self, request: HttpRequest) -> dict | None:
        """The proxy event, or None when the path is not under /<stage> (API Gateway answers 403 itself)."""
        parts = urlsplit(request.target)
        prefix = f"/{self.stage}"
        if parts.path != prefix and not parts.path.startswith(prefix + "/"):
            return None
        headers = [(k, v) for k, v in request.headers if k.lower() not in ("host", "connection", "content-length")]
        headers += [
            ("Host", self.domain),
            ("X-Forwarded-For", request.source_ip),
            ("X-Forwarded-Port", "443"),
            ("X-Forwarded-Proto", "https"),
            ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"),
        ]
        if self.version == "v1":
            return self._v1(request, parts, headers, prefix)
        return self._v2(request, parts, headers)

    def _body(self, request: HttpRequest, content_type: str) -> tuple[str | None, bool]:
        if not request.body:
            return None, False
        if self.version == "v1":
            # Zappa's binary_support sets binaryMediaTypes to */*: every body then arrives base64-encoded.
            if self.binary_support:
                return base64.b64encode(request.body).decode(), True
            return request.body.decode("utf-8", "replace"), False
        if any(t in content_type.lower() for t in TEXT_TYPES):
            return request.body.decode("utf-8", "replace"), False
        return base64.b64encode(request.body).decode(), True

    def _v1(self, request: HttpRequest, parts, headers, prefix) -> dict:
        path = parts.path[len(prefix) :] or "/"
        multi_headers: dict[str, list[str]] = {}
        for key, value in headers:
            multi_headers.setdefault(key, []).append(value)
        query: dict[str, list[str]] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            query.setdefault(key, []).append(value)
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        body, is_base64 = self._body(request, content_type)
        now = time.time()
        return {
            "resource": "/" if path == "/" else "/{proxy+}",
            "path": unquote(path),
            "httpMethod": request.method,
            "headers": {k: v[-1] for k, v in multi_headers.items()},
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": None if path == "/" else {"proxy": unquote(path.lstrip("/"))},
            "stageVariables": None,
            "requestContext": {
                "resourceId": "proxy",
                "resourcePath": "/" if path == "/" else "/{proxy+}",
                "httpMethod": request.method,
                "extendedRequestId": uuid.uuid4().hex[:16],
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "path": parts.path,
                "accountId": ACCOUNT,
                "protocol": "HTTP/1.1",
                "stage": self.stage,
                "domainPrefix": self.api_id,
                "requestTimeEpoch": int(now * 1000),
                "requestId": str(uuid.uuid4()),
                "identity": {
                    "sourceIp": request.source_ip,
                    "userAgent": next((v for k, v in headers if k.lower() == "user-agent"), ""),
                },
                "domainName": self.domain,
                "apiId": self.api_id,
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }

    def _v2(self, request: HttpRequest, parts, headers) -> dict:
        joined: dict[str, str] = {}
        cookies: list[str] = []
        for key, value in headers:
            if key.lower() == "cookie":
                cookies += [c.strip() for c in value.split(";") if c.strip()]
                continue
            key = key.lower()
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        body, is_base64 = self._body(request, joined.get("content-type", ""))
        now = time.time()
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": parts.path,
            "rawQueryString": parts.query,
            "headers": joined,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": self.api_id,
                "domainName": self.domain,
                "domainPrefix": self.api_id,
                "http": {
                    "method": request.method,
                    "path": parts.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": request.source_ip,
                    "userAgent": joined.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": "$default",
                "stage": self.stage,
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "isBase64Encoded": is_base64,
        }
        if cookies:
            event["cookies"] = cookies
        if query:
            event["queryStringParameters"] = query
        if body is not None:
            event["body"] = body
        return event

    def response_from(self, result) -> HttpResponse:
        """The function's proxy result as API Gateway turns it into an HTTP response."""
        if not isinstance(result, dict) or "statusCode" not in result:
            return _gateway_error(502, "Internal server error")
        if len(json.dumps(result)) > MAX_RESPONSE_BYTES:
            return _gateway_error(502, "Internal server error")
        headers: list[tuple[str, str]] = []
        multi = result.get("multiValueHeaders") or {}
        for key, values in multi.items():
            headers += [(key, str(v)) for v in values]
        for key, value in (result.get("headers") or {}).items():
            if key not in multi:
                headers.append((key, str(value)))
        headers += [("Set-Cookie", cookie) for cookie in result.get("cookies") or []]
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        return HttpResponse(int(result["statusCode"]), headers, raw)

    def handle(self, request: HttpRequest, function: StageFunction) -> HttpResponse:
        if len(request.body) > MAX_REQUEST_BYTES:
            return _gateway_error(413, "Request Too Long")
        event = self.event_for(request)
        if event is None:
            return _gateway_error(403, "Missing Authentication Token")
        request_id = event["requestContext"]["requestId"]
        trigger = f"{self.version} {request.method} {urlsplit(request.target).path}"
        future = function.submit(event, trigger)
        wait = min(INTEGRATION_TIMEOUT_SECONDS, function.timeout_seconds)
        try:
            invocation = future.result(timeout=wait + 1)
        except FutureTimeout:
            # The function ran past its own timeout (502) or API Gateway's 29 s (504).
            function.log(f"{request_id} Endpoint request timed out after {wait} s")
            if wait < INTEGRATION_TIMEOUT_SECONDS:
                return _gateway_error(502, "Internal server error")
            return _gateway_error(504, "Endpoint request timed out")
        if invocation.failed:
            return _gateway_error(502, "Internal server error")
        response = self.response_from(invocation.result)
        response.headers += [("x-amzn-RequestId", request_id), ("x-amz-apigw-id", request_id[:16])]
        return response


class GatewayServer:
    """HTTP on host:port, each request through the ApiGateway to the function, on its own thread."""

    def __init__(self, gateway: ApiGateway, function: StageFunction, host: str = "127.0.0.1", port: int = 0):
        self.gateway = gateway
        self.function = function
        self._server = ThreadingHTTPServer((host, port), _handler_class(self._handle))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        return self._server.server_address[0]

    def _handle(self, request: HttpRequest) -> HttpResponse:
        return self.gateway.handle(request, self.function)

    def start(self) -> "GatewayServer":
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="api-gateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(handle: Callable[[HttpRequest], HttpResponse]):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "Server"
        sys_version = ""

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = HttpRequest(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
            )
            response = handle(request)
            self.send_response_only(response.status)
            for key, value in response.headers:
                if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(key, value)
            self.send_header("Date", self.date_time_string())
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
            pass  # the function's START/REPORT lines and Django's logs say what happened

    return Handler
