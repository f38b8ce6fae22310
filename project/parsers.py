"""Untrusted JSON, read safely: DRF's parser hardened, and the helpers the webhook and import readers share.

Two kinds of hostile JSON otherwise become 500s far from where they entered:
- nesting deeper than Python's recursion limit (`[[[[...`) raises RecursionError while parsing;
- a lone surrogate escape (`"\\udc00"` with no partner) parses into a str that cannot be encoded as UTF-8,
  so PostgreSQL (and any UTF-8 writer) refuses it at insert time.
An API body carrying either is a 400 naming the problem (and, for a surrogate, where it is). Text that Cue
must keep whatever it holds (an Intercom webhook) is repaired instead: each lone surrogate becomes U+FFFD.
(Its own module because DRF's views import the parser setting at import.)
"""

import json
import re
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers

# A surrogate can only enter a parsed str through a \uD800-\uDFFF escape (strict UTF-8 decoding refuses
# encoded surrogates), so a body without one is not walked at all.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


class JSONDocumentError(ValueError):
    """The document is not usable JSON: the message says why, in words a caller can act on."""


def _walk(data: Any):
    """(path, container, key, string) for every string in data, keys included, without recursion."""
    stack = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                yield where, value, key, None
                stack.append((where, item))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                stack.append((f"{path}[{index}]", item))
        elif isinstance(value, str):
            yield path, None, None, value


def lone_surrogate_path(data: Any) -> str | None:
    """Where the first string holding a lone surrogate is (a dotted path, `tags[0]`), or None."""
    for path, container, key, string in _walk(data):
        text = key if container is not None else string
        if isinstance(text, str) and _SURROGATE.search(text):
            return _safe(path) or "(the document)"
    return None


def _safe(text: str) -> str:
    # json.loads joins an escaped pair into one character, so any surrogate left in a str is alone.
    return _SURROGATE.sub(REPLACEMENT, text)


def lone_surrogates_replaced(data: Any) -> Any:
    """data with every lone surrogate (in values and keys) replaced by U+FFFD; escaped pairs were already joined."""
    if isinstance(data, str):
        return _safe(data)
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if any(isinstance(key, str) and _SURROGATE.search(key) for key in value):
                items = [(_safe(key), item) for key, item in value.items()]
                value.clear()
                value.update(items)
            for key, item in value.items():
                if isinstance(item, str):
                    value[key] = _safe(item)
                else:
                    stack.append(item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, str):
                    value[index] = _safe(item)
                else:
                    stack.append(item)
    return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON.")


def json_loads(raw: bytes | str, *, repair: bool = False) -> Any:
    """Parse untrusted JSON: JSONDocumentError for bad JSON, too deep a nesting, or (unless repair) a lone surrogate."""
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise JSONDocumentError("nested too deeply.") from exc
    except ValueError as exc:  # bad JSON, and bytes that are not UTF-8
        raise JSONDocumentError(str(exc)) from exc
    probe = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if not _SURROGATE_ESCAPE.search(probe):
        return data
    if repair:
        return lone_surrogates_replaced(data)
    where = lone_surrogate_path(data)
    if where is not None:
        raise JSONDocumentError(
            f"{where}: holds a lone surrogate escape (\\ud800-\\udfff without its pair), which is not a character."
        )
    return data


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, but too deep a nesting or a lone surrogate is a 400 naming it, not a 500 later."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read()
        try:
            if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
                raw = raw.decode(encoding)
            return json_loads(raw)
        except (JSONDocumentError, UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from exc
