"""Intercom's REST API: the region's host, the pinned Intercom-Version, timeouts, and retries that honour Retry-After.

Only tasks call it (and the OAuth callback, which must trade its code while the browser waits).
Errors are typed so callers can tell a token to reconnect (401) and a gone object (404) from
a passing failure worth retrying (429, 5xx, timeouts).

HTTP goes through urllib3 (with certifi's CA bundle, as requests would): requests is Zappa's
deploy-time dependency, left out of the Lambda package, which spares every cold start the
import Django REST framework makes of it when it is installed.
"""

import logging
import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import certifi
import urllib3
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, HTTPError, ReadTimeoutError

from apps.tasks.invocation import remaining_seconds

logger = logging.getLogger(__name__)

USER_AGENT = "Cue/1.0 (+intercom integration)"


class IntercomError(Exception):
    """A call to Intercom that did not succeed. `retryable`: trying again later may work."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, code: str = "", request_id: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id


class IntercomAuthError(IntercomError):
    """401: the access token is revoked or wrong (or belongs to another region): reconnect Intercom."""


class IntercomNotFound(IntercomError):
    """404: the conversation, admin or tag does not exist (any more) in this Intercom workspace."""


class IntercomClientError(IntercomError):
    """Another 4xx: the request itself is wrong; repeating it will not help."""


class IntercomRateLimited(IntercomError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class IntercomPaced(IntercomError):
    """Intercom's rate-limit window is nearly spent and resets later than this invocation can wait: stop here.

    Raised before a call is made (nothing was sent), so the caller parks its work until `resume_at` (epoch).
    """

    retryable = True

    def __init__(self, message: str, *, resume_at: float, **kwargs):
        super().__init__(message, **kwargs)
        self.resume_at = resume_at


class IntercomServerError(IntercomError):
    retryable = True


class IntercomTimeout(IntercomError):
    """No answer in time: Intercom may or may not have done it."""

    retryable = True


class IntercomConnectionError(IntercomError):
    retryable = True


def _http() -> urllib3.PoolManager:
    # No retries or redirects of urllib3's own: the client decides what may be repeated (Intercom does not redirect).
    return urllib3.PoolManager(ca_certs=certifi.where(), retries=False)


def _timeout(*, connect: float | None = None, read: float | None = None) -> urllib3.Timeout:
    """Intercom's HTTP timeouts: the settings' (INTERCOM_HTTP_*_TIMEOUT_SECONDS) unless given."""
    return urllib3.Timeout(
        connect=settings.INTERCOM_HTTP_CONNECT_TIMEOUT_SECONDS if connect is None else connect,
        read=settings.INTERCOM_HTTP_READ_TIMEOUT_SECONDS if read is None else read,
    )


def _error_details(response: urllib3.BaseHTTPResponse) -> tuple[str, str, str]:
    """Intercom's error body: {"type": "error.list", "request_id", "errors": [{"code", "message"}]}."""
    try:
        body = response.json()
    except ValueError:
        return "", response.data.decode("utf-8", "replace")[:200], ""
    if not isinstance(body, dict):
        return "", str(body)[:200], ""
    errors = body.get("errors") if isinstance(body.get("errors"), list) else []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    return str(first.get("code", "")), str(first.get("message", ""))[:500], str(body.get("request_id", ""))


def retry_after_seconds(response: urllib3.BaseHTTPResponse, *, now: float | None = None) -> float | None:
    """How long Intercom asks us to wait: Retry-After (seconds or HTTP date), else X-RateLimit-Reset (epoch)."""
    now = time.time() if now is None else now
    value = response.headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError):
            pass
    reset = response.headers.get("X-RateLimit-Reset")
    if reset and reset.strip().isdigit():
        return max(0.0, int(reset) - now)
    return None


class IntercomClient:
    """One Intercom workspace's API, as one access token sees it."""

    def __init__(
        self,
        *,
        access_token: str,
        base_url: str,
        api_version: str,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_retries: int | None = None,
        max_retry_wait: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        http: urllib3.PoolManager | None = None,
        pace_floor: int | None = None,
        max_pace_wait: float = 0.0,
        pace_reserve: float = 0.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.timeout = _timeout(connect=connect_timeout, read=read_timeout)
        self.max_retries = settings.INTERCOM_HTTP_MAX_RETRIES if max_retries is None else max_retries
        self.max_retry_wait = (
            settings.INTERCOM_HTTP_MAX_RETRY_WAIT_SECONDS if max_retry_wait is None else max_retry_wait
        )
        self._sleep = sleep
        self._http = http or _http()
        # Pacing (long syncs): with fewer than `pace_floor` calls left in Intercom's window, wait for its reset
        # before the next call (here when it is at most `max_pace_wait` away and the invocation keeps
        # `pace_reserve` seconds, else IntercomPaced), so the limit slows the work down before any 429.
        self.pace_floor = pace_floor
        self.max_pace_wait = max_pace_wait
        self.pace_reserve = pace_reserve
        # What the calls cost, for progress reports: requests made, 429s seen, seconds waited for the window.
        self.requests = 0
        self.rate_limited = 0
        self.paced_seconds = 0.0
        self.rate_limit: int | None = None
        self.rate_remaining: int | None = None
        self.rate_reset: float | None = None
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/json",
            "Intercom-Version": api_version,
            "User-Agent": USER_AGENT,
        }

    @classmethod
    def for_connection(cls, connection, **kwargs) -> "IntercomClient":
        return cls(
            access_token=connection.access_token,
            base_url=settings.INTERCOM_API_HOSTS[connection.region],
            api_version=connection.api_version,
            **kwargs,
        )

    # --------------------------------------------------------------------------
    # The calls Cue makes
    # --------------------------------------------------------------------------
    def me(self) -> dict:
        """The admin the token belongs to, with `app.id_code` (the workspace's app id)."""
        return self.request("GET", "/me")

    def list_admins(self) -> list[dict]:
        body = self.request("GET", "/admins")
        return [a for a in body.get("admins") or [] if isinstance(a, dict)]

    def get_conversation(self, conversation_id: str) -> dict:
        return self.request("GET", f"/conversations/{conversation_id}")

    def reply_to_conversation(self, conversation_id: str, *, admin_id: str, body: str, message_type: str) -> dict:
        """Post a comment (to the customer) or a note (teammates only) as an admin.

        Not retried here after a 5xx or a read timeout: Intercom may have posted it, and it has no
        idempotency key. The caller (the send_reply task) retries later and looks first.
        """
        return self.request(
            "POST",
            f"/conversations/{conversation_id}/reply",
            json={"message_type": message_type, "type": "admin", "admin_id": admin_id, "body": body},
            retry_ambiguous=False,
        )

    def tag_conversation(self, conversation_id: str, *, tag_id: str, admin_id: str) -> dict:
        """Attach a tag (tagging twice changes nothing, so it is safe to retry)."""
        return self.request("POST", f"/conversations/{conversation_id}/tags", json={"id": tag_id, "admin_id": admin_id})

    def create_tag(self, name: str) -> dict:
        """Create the tag, or find it: Intercom answers with the existing tag of that name."""
        return self.request("POST", "/tags", json={"name": name})

    def list_articles(self, *, page: int, per_page: int) -> dict:
        """One page of the Help Center's articles: {"pages": {"page", "per_page", "total_pages", "next"?},
        "total_count", "data": [article...]}, newest edit first (API 2.x; per_page at most 250)."""
        return self.request("GET", "/articles", params={"page": page, "per_page": per_page})

    def search_conversations(self, *, query: dict, per_page: int, starting_after: str = "") -> dict:
        """One page of a conversation search: {"conversations", "total_count", "pages": {"next": {"starting_after"}}}.

        A search is a read, so it is safe to repeat after a timeout.
        """
        pagination: dict = {"per_page": per_page}
        if starting_after:
            pagination["starting_after"] = starting_after
        return self.request("POST", "/conversations/search", json={"query": query, "pagination": pagination})

    # --------------------------------------------------------------------------
    # Transport
    # --------------------------------------------------------------------------
    def request(
        self, method: str, path: str, *, json: Any = None, params: dict | None = None, retry_ambiguous: bool = True
    ) -> dict:
        """One call with retries: 429 always (nothing was done), 5xx and timeouts only when repeating is harmless."""
        url = f"{self.base_url}{path}" + (f"?{urlencode(params)}" if params else "")
        attempt = 0
        while True:
            self._pace()
            error = self._attempt(method, url, json=json)
            if isinstance(error, dict):
                return error
            retry = isinstance(error, IntercomRateLimited | IntercomConnectionError) or (
                retry_ambiguous and isinstance(error, IntercomServerError | IntercomTimeout)
            )
            if not retry or attempt >= self.max_retries:
                raise error
            wait = self._wait_for(error, attempt)
            if wait is None:
                raise error
            logger.warning(
                "intercom call will be retried",
                extra={"path": path, "status": error.status, "attempt": attempt + 1, "wait_seconds": round(wait, 3)},
            )
            self._sleep(wait)
            self.rate_remaining = None  # the wait was for the window's reset: pacing need not wait for it again
            attempt += 1

    def _pace(self) -> None:
        """Before a call: wait out a nearly spent rate-limit window, or raise IntercomPaced when it is too far."""
        if self.pace_floor is None or self.rate_remaining is None or self.rate_reset is None:
            return
        # A small window (a trial app's) must not be paced on every call: the floor is at most a fifth of it.
        floor = min(self.pace_floor, self.rate_limit // 5) if self.rate_limit else self.pace_floor
        if self.rate_remaining >= floor:
            return
        wait = self.rate_reset - time.time()
        if wait <= 0:
            self.rate_remaining = None
            return
        remaining = remaining_seconds()
        if wait > self.max_pace_wait or (remaining is not None and remaining - wait < self.pace_reserve):
            raise IntercomPaced(
                f"{self.rate_remaining} calls left in Intercom's window; it resets in {wait:.1f}s",
                resume_at=self.rate_reset,
            )
        logger.info("intercom pacing", extra={"wait_seconds": round(wait, 3), "rate_remaining": self.rate_remaining})
        self._sleep(wait)
        self.paced_seconds += wait
        self.rate_remaining = None

    def _note_rate_limit(self, response: urllib3.BaseHTTPResponse) -> None:
        remaining, reset = response.headers.get("X-RateLimit-Remaining"), response.headers.get("X-RateLimit-Reset")
        limit = response.headers.get("X-RateLimit-Limit")
        if limit and limit.strip().isdigit():
            self.rate_limit = int(limit)
        if remaining and remaining.strip().isdigit():
            self.rate_remaining = int(remaining)
        if reset and reset.strip().isdigit():
            self.rate_reset = float(reset)

    def _attempt(self, method: str, url: str, *, json: Any) -> dict | IntercomError:
        self.requests += 1
        try:
            response = self._http.request(method, url, json=json, headers=self._headers, timeout=self.timeout)
        except ConnectTimeoutError as exc:  # also a refused connection or an unknown host (NewConnectionError)
            # The connection was never made, so nothing was sent: safe to repeat any call.
            return IntercomConnectionError(f"Could not connect to Intercom: {exc}")
        except ReadTimeoutError as exc:
            return IntercomTimeout(f"Intercom did not answer within {self.timeout.read_timeout}s: {exc}")
        except HTTPError as exc:
            return IntercomTimeout(f"The connection to Intercom failed mid-request: {exc}")
        status = response.status
        self._note_rate_limit(response)
        if status < 400:
            if not response.data:
                return {}
            try:
                body = response.json()
            except ValueError:
                return IntercomServerError("Intercom answered with a body that is not JSON.", status=status)
            return body if isinstance(body, dict) else {"data": body}
        code, message, request_id = _error_details(response)
        details = {"status": status, "code": code, "request_id": request_id}
        if status == 401:
            return IntercomAuthError(f"Intercom refused the access token (401): {message or 'unauthorized'}", **details)
        if status == 404:
            return IntercomNotFound(f"Not found in Intercom (404): {message or url}", **details)
        if status == 429:
            self.rate_limited += 1
            wait = retry_after_seconds(response)
            return IntercomRateLimited(f"Intercom's rate limit was hit (429): {message}", retry_after=wait, **details)
        if status >= 500:
            return IntercomServerError(f"Intercom failed ({status}): {message}", **details)
        return IntercomClientError(f"Intercom refused the request ({status}): {message}", **details)

    def _wait_for(self, error: IntercomError, attempt: int) -> float | None:
        """Seconds to wait before the next try, or None when waiting here is not worth it (the task backs off)."""
        asked = error.retry_after if isinstance(error, IntercomRateLimited) else None
        # Full jitter on exponential backoff when Intercom did not say how long.
        wait = asked if asked is not None else random.uniform(0, min(8.0, 0.5 * 2**attempt))  # noqa: S311
        if wait > self.max_retry_wait:
            return None
        remaining = remaining_seconds()
        if remaining is not None and wait + self.timeout.connect_timeout + self.timeout.read_timeout > remaining - 1:
            return None
        return wait


def exchange_oauth_code(*, code: str, connect_timeout: float | None = None, read_timeout: float | None = None) -> str:
    """Trade an OAuth authorization code for an access token at the token endpoint (once: a code is single-use)."""
    try:
        response = _http().request(
            "POST",
            settings.INTERCOM_OAUTH_TOKEN_URL,
            fields={
                "code": code,
                "client_id": settings.INTERCOM_CLIENT_ID,
                "client_secret": settings.INTERCOM_CLIENT_SECRET,
            },
            encode_multipart=False,  # application/x-www-form-urlencoded, as OAuth's token endpoint takes it
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=_timeout(connect=connect_timeout, read=read_timeout),
        )
    except HTTPError as exc:
        raise IntercomConnectionError(f"Intercom's token endpoint could not be reached: {exc}") from exc
    if response.status != 200:
        code_, message, request_id = _error_details(response)
        raise IntercomClientError(
            f"Intercom refused the authorization code ({response.status}): {message}",
            status=response.status,
            code=code_,
            request_id=request_id,
        )
    try:
        body = response.json()
    except ValueError as exc:
        raise IntercomServerError("Intercom's token endpoint answered with a body that is not JSON.") from exc
    token = body.get("access_token") or body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise IntercomServerError("Intercom's token endpoint answered without an access token.")
    return token
