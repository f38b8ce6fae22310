"""A stand-in for Intercom's Help Center and conversation history, served by a real HTTP server on 127.0.0.1.

Shapes follow Intercom's API 2.11 (its published OpenAPI description): GET /articles pages by number
(`pages.{page, per_page, total_pages, next}`, newest edit first, each article with `state`, `url`,
`updated_at`, `default_locale` and `translated_content` per locale), GET /articles/<id>, POST
/conversations/search (cursor pagination: `pagination.starting_after`, `pages.next.starting_after`),
GET /conversations/<id>. Every answer carries X-RateLimit-Limit/-Remaining/-Reset of a fixed window;
a call over the limit is a 429. Faults on demand: a path that fails (500) the next N times, a path
refused for good (401, 404), a 429 next. `on_request` is called with each request before it is
answered (in the server's thread: a test probes the database from there while the worker waits).
Used by the tests (with pytest-httpserver's fixture) and by bench/intercom_sync.py (a server of its own).
"""

import base64
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.integrations.intercom_payloads import ADMIN, CUSTOMER, part_v2

_ids = itertools.count(9100000)
HELP_HOST = "https://help.example.com"


def article(
    title: str,
    body: str,
    *,
    article_id: str | None = None,
    updated_at: int = 1700000000,
    state: str = "published",
    translations: dict | None = None,
) -> dict:
    """An article as GET /articles lists it (default locale en), with optional other locales' content."""
    article_id = article_id or str(next(_ids))
    slug = title.lower().replace(" ", "-")
    content = {
        "type": "article_content",
        "title": title,
        "description": "",
        "body": body,
        "author_id": int(ADMIN["id"]),
        "state": state,
        "created_at": updated_at - 100,
        "updated_at": updated_at,
        "url": f"{HELP_HOST}/en/articles/{article_id}-{slug}",
    }
    translated = {"type": "article_translated_content", "en": content}
    for locale, (t_title, t_body, t_state) in (translations or {}).items():
        translated[locale] = content | {
            "title": t_title,
            "body": t_body,
            "state": t_state,
            "url": f"{HELP_HOST}/{locale}/articles/{article_id}",
        }
    return {
        "type": "article",
        "id": article_id,
        "workspace_id": "i6wc9ipe",
        "parent_id": 125685,
        "parent_type": "collection",
        "parent_ids": [125685],
        "default_locale": "en",
        **{k: content[k] for k in ("title", "description", "body", "author_id", "state", "created_at", "url")},
        "updated_at": updated_at,
        "translated_content": translated,
    }


def closed_conversation(exchanges: list[tuple[str, str]], *, updated_at: int, conversation_id: str | None = None):
    """A closed 2.x conversation: the customer opens with the first question, an admin answers each one.

    The last answer is sent as Intercom sends "reply and close": a `close` part carrying the reply.
    """
    conversation_id = conversation_id or str(next(_ids))
    start = updated_at - 60 * (2 * len(exchanges) + 1)
    parts = []
    clock = start
    for index, (question, answer) in enumerate(exchanges):
        if index:
            clock += 60
            parts.append(part_v2("comment", author=CUSTOMER, author_type="lead", body=question, created_at=clock))
        clock += 60
        last = index == len(exchanges) - 1
        part_type = "close" if last else "comment"
        parts.append(part_v2(part_type, author=ADMIN, author_type="admin", body=answer, created_at=clock))
    return {
        "type": "conversation",
        "id": conversation_id,
        "created_at": start,
        "updated_at": updated_at,
        "state": "closed",
        "open": False,
        "title": "",
        "source": {
            "type": "conversation",
            "id": str(next(_ids)),
            "delivered_as": "customer_initiated",
            "subject": "",
            "body": exchanges[0][0],
            "author": {"type": "lead", "id": CUSTOMER["id"], "name": CUSTOMER["name"], "email": CUSTOMER["email"]},
        },
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": CUSTOMER["id"]}]},
        "admin_assignee_id": int(ADMIN["id"]),
        "team_assignee_id": None,
        "tags": {"type": "tag.list", "tags": []},
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": parts,
            "total_count": len(parts),
        },
    }


@dataclass
class IntercomStandIn:
    """Articles and conversations behind Intercom's endpoints, with its pagination and rate limit."""

    server: HTTPServer
    rate_limit: int = 1000  # calls per window
    window_seconds: int = 10
    articles: dict[str, dict] = field(default_factory=dict)
    conversations: dict[str, dict] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # path -> answer 500 this many more times
    refused: dict[str, int] = field(default_factory=dict)  # path -> answer this status (401, 404) every time
    forced_429: int = 0  # answer the next N calls with a 429 (Retry-After: 1)
    on_request: Callable[[Request], None] | None = None
    calls: list[str] = field(default_factory=list)
    served_429: int = 0
    _window: tuple[int, int] = (0, 0)  # (window end epoch, calls in it)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> "IntercomStandIn":
        self.server.expect_request("/articles", method="GET").respond_with_handler(self._articles)
        self.server.expect_request(re.compile(r"^/articles/[^/]+$"), method="GET").respond_with_handler(self._article)
        self.server.expect_request("/conversations/search", method="POST").respond_with_handler(self._search)
        self.server.expect_request(re.compile(r"^/conversations/[^/]+$"), method="GET").respond_with_handler(
            self._conversation
        )
        return self

    # ------------------------------------------------------------------ data
    def add_articles(self, *articles: dict) -> None:
        for item in articles:
            self.articles[item["id"]] = item

    def add_conversations(self, *conversations: dict) -> None:
        for item in conversations:
            self.conversations[item["id"]] = item

    def roll_window(self) -> None:
        """Start a fresh rate-limit window now, as the clock passing the reset would (tests never sleep for it)."""
        with self._lock:
            self._window = (0, 0)

    def calls_to(self, prefix: str) -> int:
        return sum(1 for call in self.calls if call.startswith(prefix))

    # ------------------------------------------------------------------ transport
    def _limited(self, request: Request) -> Response | dict:
        """Count the call in the window: the rate-limit headers, or a 429 (forced, or over the limit)."""
        if self.on_request is not None:
            self.on_request(request)
        with self._lock:
            self.calls.append(f"{request.method} {request.path}?{request.query_string.decode()}")
            now = int(time.time())
            end, used = self._window
            if now >= end:
                end, used = now + self.window_seconds, 0
            used += 1
            self._window = (end, used)
            headers = {
                "X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Remaining": str(max(0, self.rate_limit - used)),
                "X-RateLimit-Reset": str(end),
            }
            if self.forced_429 or used > self.rate_limit:
                self.forced_429 = max(0, self.forced_429 - 1)
                self.served_429 += 1
                return self._json(
                    {"type": "error.list", "errors": [{"code": "rate_limit_exceeded", "message": "Slow down"}]},
                    429,
                    {**headers, "X-RateLimit-Remaining": "0", "Retry-After": "1"},
                )
            key = request.path if request.path != "/articles" else f"/articles?page={request.args.get('page', '1')}"
            if key in self.refused:
                error = {"code": "unauthorized" if self.refused[key] == 401 else "not_found", "message": "Refused"}
                return self._json({"type": "error.list", "errors": [error]}, self.refused[key], headers)
            if self.failures.get(key):
                self.failures[key] -= 1
                return self._json({"type": "error.list", "errors": [{"code": "server_error"}]}, 500, headers)
            return headers

    @staticmethod
    def _json(body, status: int, headers: dict) -> Response:
        return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")

    # ------------------------------------------------------------------ endpoints
    def _articles(self, request: Request) -> Response:
        limited = self._limited(request)
        if isinstance(limited, Response):
            return limited
        page, per_page = int(request.args.get("page", 1)), min(250, int(request.args.get("per_page", 25)))
        ordered = sorted(self.articles.values(), key=lambda a: (-a["updated_at"], a["id"]))
        total_pages = max(1, -(-len(ordered) // per_page))
        pages = {"type": "pages", "page": page, "per_page": per_page, "total_pages": total_pages}
        if page < total_pages:
            pages["next"] = f"https://api.intercom.io/articles?per_page={per_page}&page={page + 1}"
        data = ordered[(page - 1) * per_page : page * per_page]
        body = {"type": "list", "pages": pages, "total_count": len(ordered), "data": data}
        return self._json(body, 200, limited)

    def _article(self, request: Request) -> Response:
        limited = self._limited(request)
        if isinstance(limited, Response):
            return limited
        found = self.articles.get(request.path.rsplit("/", 1)[1])
        if found is None:
            return self._json({"type": "error.list", "errors": [{"code": "not_found"}]}, 404, limited)
        return self._json(found, 200, limited)

    def _search(self, request: Request) -> Response:
        limited = self._limited(request)
        if isinstance(limited, Response):
            return limited
        body = request.get_json()
        conditions = {c["field"]: c for c in body["query"]["value"]}
        since = conditions["updated_at"]["value"]
        matching = sorted(
            (c for c in self.conversations.values() if c["state"] == "closed" and c["updated_at"] > since),
            key=lambda c: (c["updated_at"], c["id"]),
        )
        per_page = min(150, int(body["pagination"].get("per_page", 20)))
        after = body["pagination"].get("starting_after")
        start = int(base64.b64decode(after).decode()) if after else 0
        chunk = matching[start : start + per_page]
        total_pages = max(1, -(-len(matching) // per_page))
        pages = {"type": "pages", "page": start // per_page + 1, "per_page": per_page, "total_pages": total_pages}
        if start + per_page < len(matching):
            cursor = base64.b64encode(str(start + per_page).encode()).decode()
            pages["next"] = {"page": start // per_page + 2, "starting_after": cursor}
        summaries = [{k: v for k, v in c.items() if k != "conversation_parts"} for c in chunk]
        answer = {"type": "conversation.list", "pages": pages, "total_count": len(matching), "conversations": summaries}
        return self._json(answer, 200, limited)

    def _conversation(self, request: Request) -> Response:
        limited = self._limited(request)
        if isinstance(limited, Response):
            return limited
        found = self.conversations.get(request.path.rsplit("/", 1)[1])
        if found is None:
            return self._json({"type": "error.list", "errors": [{"code": "not_found"}]}, 404, limited)
        return self._json(found, 200, limited)
