"""Reading knowledge-base files (CSV or JSON) into rows, and validating one row: shared by the API and the command."""

import csv
import io
import itertools
from collections.abc import Iterable, Iterator
from typing import IO, cast

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.knowledge.models import EntryKind
from project.parsers import JSONDocumentError, json_loads

FORMATS = ("csv", "json")
MAX_BODY_CHARS = 100_000
MAX_TAGS = 20


class ImportFileError(ValueError):
    """The file as a whole cannot be read: nothing of it is imported."""


@extend_schema_field({"type": "array", "items": {"type": "string"}})
@extend_schema_field(
    {
        "oneOf": [
            {"type": "array", "items": {"type": "string", "maxLength": 50}, "maxItems": MAX_TAGS},
            {"type": "string", "description": "Tags separated by commas or semicolons (a CSV cell)."},
        ]
    }
)
class TagsField(serializers.Field):
    """A list of strings, or one string of tags separated by commas or semicolons (a CSV cell)."""

    default_error_messages = {"invalid": "Give tags as a list of strings or a comma-separated string."}

    def to_internal_value(self, data):
        if data is None or data == "":
            return []
        if isinstance(data, str):
            data = data.replace(";", ",").split(",")
        if not isinstance(data, list) or not all(isinstance(tag, str) for tag in data):
            self.fail("invalid")
        if any("\x00" in tag for tag in data):
            # PostgreSQL cannot store NUL in text or JSON: refused here rather than a 500 at insert.
            raise serializers.ValidationError("Null characters are not allowed in tags.")
        tags = list(dict.fromkeys(tag.strip() for tag in data if tag.strip()))
        if len(tags) > MAX_TAGS or any(len(tag) > 50 for tag in tags):
            raise serializers.ValidationError(f"At most {MAX_TAGS} tags of at most 50 characters each.")
        return tags

    def to_representation(self, value):
        return value


class EntryImportRowSerializer(serializers.Serializer):
    """One imported entry. Unknown columns are ignored; blank optional cells take their defaults."""

    title = serializers.CharField(max_length=300)
    body = serializers.CharField(max_length=MAX_BODY_CHARS, trim_whitespace=False)
    kind = serializers.ChoiceField(choices=EntryKind.choices, required=False, default=EntryKind.SAVED_REPLY)
    tags = TagsField(required=False, default=list)
    enabled = serializers.BooleanField(required=False, default=True)
    external_id = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    # DRF's metaclass takes declared fields off the class: no clash with Field.source (the stubs cannot tell).
    source = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")  # type: ignore[assignment]

    def to_internal_value(self, data):
        if isinstance(data, dict):
            # A CSV leaves optional cells blank; a JSON export may carry ids as numbers.
            data = {k: v for k, v in data.items() if not (k in ("kind", "enabled") and v in ("", None))}
            if isinstance(data.get("external_id"), int) and not isinstance(data.get("external_id"), bool):
                data["external_id"] = str(data["external_id"])
        return super().to_internal_value(data)


def row_validate(row) -> tuple[dict | None, dict | None]:
    """(clean data, None) or (None, field errors) for one row."""
    if not isinstance(row, dict):
        return None, {"non_field_errors": ["A row must be an object with title and body."]}
    serializer = EntryImportRowSerializer(data=row)
    if serializer.is_valid():
        return dict(serializer.validated_data), None
    return None, {field: [str(e) for e in errors] for field, errors in serializer.errors.items()}


def format_guess(name: str | None, declared: str | None) -> str:
    if declared:
        if declared not in FORMATS:
            raise ImportFileError(f"Unknown format {declared!r}: use csv or json.")
        return declared
    if name and name.lower().endswith(".json"):
        return "json"
    if name and name.lower().endswith(".csv"):
        return "csv"
    raise ImportFileError("Cannot tell the file's format from its name: say csv or json.")


def rows_from_csv(stream: IO[bytes] | IO[str]) -> Iterator[dict]:
    """Rows of a UTF-8 CSV with a header line naming at least title and body (streamed, for large files)."""
    wrapper = None
    text: IO[str]
    if isinstance(stream.read(0), bytes):
        text = wrapper = io.TextIOWrapper(cast(IO[bytes], stream), encoding="utf-8-sig", newline="")
    else:
        text = cast(IO[str], stream)
    try:
        yield from _csv_rows(text)
    finally:
        if wrapper is not None:
            wrapper.detach()  # the caller's file stays open (and can tell how far it was read)


def _csv_rows(stream: IO[str]) -> Iterator[dict]:
    reader = csv.DictReader(stream)
    try:
        header = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFileError(f"The CSV cannot be read: {exc}") from exc
    missing = {"title", "body"} - {name.strip() for name in header if name}
    if missing:
        raise ImportFileError(
            f"The CSV header must name the columns title and body (missing: {', '.join(sorted(missing))})."
        )
    try:
        for row in reader:
            yield {(k or "").strip(): v for k, v in row.items() if k is not None}
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportFileError(f"The CSV cannot be read at line {reader.line_num}: {exc}") from exc


def rows_from_json(data) -> list:
    """Rows of a JSON document: a list of entry objects, or an object with such a list under "entries"."""
    if isinstance(data, dict) and "entries" in data:
        data = data["entries"]
    if not isinstance(data, list):
        raise ImportFileError('JSON must be a list of entries or {"entries": [...]}.')
    return data


def rows_upto(rows: Iterable, *, limit: int) -> list:
    """At most limit rows, read lazily: one row more is an ImportFileError, and the rest of the file is never parsed."""
    taken = list(itertools.islice(rows, limit + 1))
    close = getattr(rows, "close", None)
    if close is not None:
        close()  # a CSV generator lets go of the caller's file now, not at garbage collection
    if len(taken) > limit:
        raise ImportFileError(f"At most {limit} rows per upload; use `manage.py import_knowledge` for larger files.")
    return taken


def rows_from_file(stream: IO[bytes], fmt: str) -> Iterable:
    if fmt == "csv":
        return rows_from_csv(stream)
    try:
        return rows_from_json(json_loads(stream.read()))
    except JSONDocumentError as exc:
        raise ImportFileError(f"The JSON cannot be read: {exc}") from exc
