"""The pure-Python index for SQLite (the embedded default): same interface and formula, built per call.

It reads the workspace's whole knowledge base, which is fine for a laptop's knowledge base and is why
deployed stages run on PostgreSQL.
"""

from collections import Counter

from apps.knowledge.models import Entry, IndexTotals, LexemeStat
from apps.knowledge.ranking.scoring import (
    FUZZY_MIN_SIMILARITY,
    MAX_QUERY_LEXEMES,
    TITLE_BOOST,
    FieldPostings,
    FieldStats,
    trigram_similarity,
)
from apps.knowledge.text import lexemes_of


class PythonIndex:
    def __init__(self, workspace_id: int) -> None:
        self.workspace_id = workspace_id
        self._tf: dict[int, dict[str, float]] | None = None
        self._length: dict[int, int] = {}
        self._df: Counter = Counter()

    def _load(self) -> dict[int, dict[str, float]]:
        if self._tf is None:
            self._tf = {}
            entries = Entry.objects.filter(workspace_id=self.workspace_id, enabled=True)
            for entry_id, title, body, length in entries.values_list("id", "title", "body_text", "token_count"):
                tf: dict[str, float] = dict(lexemes_of(body))
                for lexeme, count in lexemes_of(title).items():
                    tf[lexeme] = tf.get(lexeme, 0) + TITLE_BOOST * count
                self._tf[entry_id] = tf
                self._length[entry_id] = length
                self._df.update(tf.keys())
        return self._tf

    def analyze(self, text: str) -> Counter:
        # A Counter keeps first-occurrence order: the message's first distinct lexemes are kept.
        return Counter(dict(list(lexemes_of(text).items())[:MAX_QUERY_LEXEMES]))

    def known(self, lexemes: list[str]) -> set[str]:
        self._load()
        return {lexeme for lexeme in lexemes if self._df.get(lexeme)}

    def nearest(self, terms: list[str]) -> dict[str, tuple[str, float]]:
        self._load()
        learnt = LexemeStat.objects.filter(workspace_id=self.workspace_id, evidence_entries__gt=0)
        vocabulary = set(self._df) | set(learnt.values_list("lexeme", flat=True))
        found = {}
        for term in terms:
            best = max(((trigram_similarity(term, v), v) for v in vocabulary), key=lambda p: (p[0], p[1]), default=None)
            if best and best[0] >= FUZZY_MIN_SIMILARITY:
                found[term] = (best[1], best[0])
        return found

    def body_stats(self, lexemes: list[str], totals: IndexTotals) -> FieldStats:
        tf = self._load()
        mean = sum(self._length.values()) / len(tf) if tf else 0.0
        return FieldStats(len(tf), mean, {t: self._df[t] for t in lexemes if self._df.get(t)})

    def body_postings(self, lexemes: list[str], also_ids: set[int]) -> FieldPostings:
        wanted = set(lexemes)
        postings = FieldPostings()
        for entry_id, tf in self._load().items():
            hits = {t: n for t, n in tf.items() if t in wanted}
            if hits:
                postings.tf[entry_id] = hits
                postings.length[entry_id] = self._length[entry_id]
        return postings
