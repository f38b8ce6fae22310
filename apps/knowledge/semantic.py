"""Meaning as well as words: small static word vectors, so "reimbursement" finds the entry that says "refund".

apps/knowledge/data/word_vectors.bin (built by tools/build_word_vectors.py from a general English sentence
model; nothing in it comes from any workspace) maps a Snowball stem, the lexeme Cue's index stores, to a
128-dimension int8 vector and a weight that makes common words count for little (SIF). A text's meaning
is the weighted sum of its lexemes' vectors: sums add up, so an entry's accepted-evidence meaning is kept
by adding each accepted message's vector (and subtracting it when a verdict changes). Ranking compares
directions (cosine), so sums never need normalising.

No model runs at request time and nothing beyond the standard library is needed: the file is read once
per process, the first time a text needs a meaning (1.8 MB, about 30 milliseconds).
"""

import json
import math
import operator
import struct
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from operator import mul
from pathlib import Path

from apps.knowledge.text import lexemes_of

VECTORS_FILE = Path(__file__).resolve().parent / "data" / "word_vectors.bin"
MAGIC = b"CUEWV1\n"


@dataclass(frozen=True)
class WordVectors:
    dims: int
    rows: dict[str, tuple[float, memoryview]]  # lexeme -> (SIF weight, int8 vector)


@lru_cache(maxsize=1)
def word_vectors(path: Path = VECTORS_FILE) -> WordVectors:
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path} is not a Cue word-vector file")
    header_end = data.index(b"\n", len(MAGIC))
    header = json.loads(data[len(MAGIC) : header_end])
    (names_size,) = struct.unpack_from("<I", data, header_end + 1)
    names_start = header_end + 5
    lines = data[names_start : names_start + names_size].decode().splitlines()
    dims, vectors = header["dims"], memoryview(data)[names_start + names_size :].cast("b")
    if len(lines) != header["count"] or len(vectors) != dims * len(lines):
        raise ValueError(f"{path} is truncated")
    rows = {}
    for i, line in enumerate(lines):
        lexeme, weight = line.split("\t")
        rows[lexeme] = (float(weight), vectors[i * dims : (i + 1) * dims])
    return WordVectors(dims, rows)


def meaning_of(counts: Mapping[str, float]) -> array | None:
    """The weighted sum of the vectors of a text's lexemes (lexeme -> count); None when no lexeme is known."""
    vectors = word_vectors()
    total: list[float] | None = None
    for lexeme, count in counts.items():
        row = vectors.rows.get(lexeme)
        if row is None or count <= 0:
            continue
        weight = row[0] * count
        if total is None:
            total = [weight * x for x in row[1]]
        else:
            total = [t + weight * x for t, x in zip(total, row[1], strict=True)]
    return array("f", total) if total is not None else None


def to_bytes(meaning: array | None) -> bytes | None:
    return meaning.tobytes() if meaning is not None else None


def from_bytes(value: bytes | memoryview | None) -> array | None:
    if not value:
        return None
    meaning = array("f")
    meaning.frombytes(bytes(value))
    return meaning


def total(*meanings: array | None, sign: int = 1) -> array | None:
    """The sum of meanings, each after the first times `sign` (missing ones count as nothing); None if all are."""
    present = [m for m in meanings if m is not None]
    if not present:
        return None
    first, *rest = meanings
    summed = array("f", first) if first is not None else array("f", bytes(4 * len(present[0])))
    combine = operator.add if sign == 1 else operator.sub
    for meaning in rest:
        if meaning is not None:
            if len(meaning) != len(summed):
                raise ValueError(f"meanings of {len(summed)} and {len(meaning)} dimensions cannot be added")
            summed = array("f", list(map(combine, summed, meaning)))  # map: a third of a generator's time
    return summed


def add(stored: bytes | memoryview | None, meaning: array | None, sign: int = 1) -> bytes | None:
    """A stored sum with one more (sign=1) or one fewer (sign=-1) text's meaning in it."""
    return to_bytes(total(from_bytes(stored), meaning, sign=sign))


def _norm(meaning: array) -> float:
    return math.sqrt(sum(map(mul, meaning, meaning)))


def cosine(a: array | None, b: array | None) -> float:
    """How alike two meanings are (as `similarities` scores them), 0 when either is missing or empty."""
    return similarities(a, {0: b}).get(0, 0.0)


def similarities(query: array | None, meanings: Mapping[int, array | None]) -> dict[int, float]:
    """Each meaning's likeness to the query's, 0..1 (opposite directions count as unlike, not negative)."""
    query_norm = _norm(query) if query is not None else 0.0
    if query is None or query_norm <= 1e-9:
        return {}
    found = {}
    for key, meaning in meanings.items():
        norm = _norm(meaning) if meaning is not None else 0.0
        if meaning is not None and norm > 1e-9:
            found[key] = max(0.0, sum(map(mul, query, meaning)) / (query_norm * norm))
    return found


def entry_meaning(title: str, body_text: str) -> bytes | None:
    """An entry's stored meaning: its title's and body's words, as the pure-Python analyzer reads them."""
    return to_bytes(meaning_of(lexemes_of(title) + lexemes_of(body_text)))
