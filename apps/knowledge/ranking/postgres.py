"""The PostgreSQL index: lexemes from the 'english' configuration, candidates from the GIN-indexed tsvector.

No query here reads more than the postings of the message's rarest words (bounded by a budget), the
statistics rows of its words, and a trigram-indexed lookup for misspellings.
"""

from collections import Counter
from typing import Any

from django.db import connection

from apps.knowledge.models import IndexTotals
from apps.knowledge.ranking.scoring import (
    FUZZY_MIN_SIMILARITY,
    MAX_QUERY_LEXEMES,
    TITLE_BOOST,
    FieldPostings,
    FieldStats,
    candidate_terms,
)
from apps.knowledge.text import IDENTIFIER_PATTERN_SQL

# At most this many entries are read per message, found through its rarest words.
CANDIDATE_BUDGET = 300

_ANALYZE_SQL = """
    SELECT lexeme, cardinality(positions)
    FROM unnest(to_tsvector('english'::regconfig, regexp_replace(%s, %s, ' ', 'g')))
    ORDER BY positions[1]
    LIMIT %s
"""

_NEAREST_SQL = """
    SELECT q.term, best.lexeme, best.sim
    FROM unnest(%s::text[]) AS q(term)
    CROSS JOIN LATERAL (
        SELECT v.lexeme, similarity(lower(v.lexeme), q.term) AS sim
        FROM knowledge_lexemestat v
        WHERE v.workspace_id = %s AND (v.df > 0 OR v.evidence_entries > 0) AND lower(v.lexeme) %% q.term
            AND similarity(lower(v.lexeme), q.term) >= %s
        ORDER BY sim DESC, v.lexeme
        LIMIT 1
    ) best
"""

# Candidates: entries matching any of the chosen lexemes (GIN), and entries given by id, in one statement.
# Two branches of a UNION ALL rather than one WHERE with OR: the planner would give up the GIN bitmap scan
# for the OR. An entry both branches find comes back twice with the same values, which is harmless.
_CANDIDATES_BY_TERMS = """
    (SELECT id, token_count, search_vector FROM knowledge_entry
     WHERE workspace_id = %s AND enabled AND search_vector @@ %s::tsquery LIMIT %s)
"""
_CANDIDATES_BY_ID = """
    (SELECT id, token_count, search_vector FROM knowledge_entry
     WHERE workspace_id = %s AND enabled AND id = ANY(%s) LIMIT %s)
"""
_POSTINGS_SQL = """
    WITH candidates AS ({candidates})
    SELECT c.id, c.token_count, u.lexeme, u.weights
    FROM candidates c CROSS JOIN LATERAL unnest(c.search_vector) u
    WHERE u.lexeme = ANY(%s)
"""


def tsquery_literal(lexemes: list[str]) -> str:
    """An OR of the lexemes as tsquery input: any one of them matches (never an AND of the message)."""
    quoted = ("'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'" for lexeme in lexemes)
    return " | ".join(quoted)


class PostgresIndex:
    def __init__(self, workspace_id: int) -> None:
        self.workspace_id = workspace_id
        self._df: dict[str, int] = {}

    def analyze(self, text: str) -> Counter:
        with connection.cursor() as cursor:
            cursor.execute(_ANALYZE_SQL, [text, IDENTIFIER_PATTERN_SQL, MAX_QUERY_LEXEMES])
            return Counter(dict(cursor.fetchall()))

    def known(self, lexemes: list[str]) -> set[str]:
        """Which lexemes occur in some entry; remembers their document frequencies."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT lexeme, df FROM knowledge_lexemestat WHERE workspace_id = %s AND lexeme = ANY(%s) AND df > 0",
                [self.workspace_id, lexemes],
            )
            self._df.update(dict(cursor.fetchall()))
        return {lexeme for lexeme in lexemes if lexeme in self._df}

    def nearest(self, terms: list[str]) -> dict[str, tuple[str, float]]:
        with connection.cursor() as cursor:
            cursor.execute(_NEAREST_SQL, [terms, self.workspace_id, FUZZY_MIN_SIMILARITY])
            return {term: (lexeme, float(sim)) for term, lexeme, sim in cursor.fetchall()}

    def body_stats(self, lexemes: list[str], totals: IndexTotals) -> FieldStats:
        missing = [lexeme for lexeme in lexemes if lexeme not in self._df]
        if missing:
            self.known(missing)
        mean = totals.entry_tokens / totals.entries if totals.entries else 0.0
        return FieldStats(totals.entries, mean, {t: self._df[t] for t in lexemes if t in self._df})

    def body_postings(self, lexemes: list[str], also_ids: set[int]) -> FieldPostings:
        """The term frequencies of the query's lexemes in the candidate entries (one statement).

        Candidates: the entries holding the message's rarest words (within CANDIDATE_BUDGET), and the
        entries found through their evidence alone (also_ids), so that their body is scored too.
        """
        postings = FieldPostings()
        terms = candidate_terms({t: self._df[t] for t in lexemes if t in self._df}, CANDIDATE_BUDGET)
        branches: list[str] = []
        params: list[Any] = []
        if terms:
            branches.append(_CANDIDATES_BY_TERMS)
            params += [self.workspace_id, tsquery_literal(terms), CANDIDATE_BUDGET]
        if also_ids:
            branches.append(_CANDIDATES_BY_ID)
            params += [self.workspace_id, sorted(also_ids), CANDIDATE_BUDGET]
        if not branches:
            return postings
        with connection.cursor() as cursor:
            cursor.execute(_POSTINGS_SQL.format(candidates=" UNION ALL ".join(branches)), [*params, lexemes])
            for entry_id, length, lexeme, weights in cursor.fetchall():
                postings.length[entry_id] = length
                in_title = sum(1 for w in weights if w == "A")
                postings.tf.setdefault(entry_id, {})[lexeme] = TITLE_BOOST * in_title + (len(weights) - in_title)
        return postings
