"""The ranking arithmetic shared by the PostgreSQL and pure-Python indexes: BM25 per field, normalised to 0..1.

Every function here is pure: the indexes gather term frequencies and statistics, this module scores them,
so both databases rank by exactly the same formula.
"""

import math
from dataclasses import dataclass, field

# Okapi BM25's usual constants (Robertson & Zaragoza): nothing here is tuned to one data set.
K1 = 1.2
B = 0.75
# A word in the title counts as much as this many in the body (BM25F-style field boost).
TITLE_BOOST = 2.0
# pg_trgm's own default threshold: a misspelt word is read as the known word it most resembles, if this close.
FUZZY_MIN_SIMILARITY = 0.3
# A body's (and accepted evidence's) score is the mean of its word score (BM25) and its meaning score
# (cosine of word vectors, semantic.py): the two count equally, nothing is tuned to one data set.
MEANING_WEIGHT = 0.5
# Meaning re-ranks this many of the best entries by words (two-stage retrieval): bounded work per message;
# an entry below them keeps its word score alone, blended with no meaning.
MEANING_RERANK_DEPTH = 50
# How much a matching dismissed message can take off an entry's score (at most half of it).
DISMISS_WEIGHT = 0.5
# A customer message is ranked on its first characters and distinct words: bounded work for huge messages.
MAX_MESSAGE_CHARS = 5000
MAX_QUERY_LEXEMES = 64
# Entries found through their evidence alone whose body is also read and scored (the best ones).
EVIDENCE_BODY_LOOKUPS = 50


@dataclass
class FieldStats:
    """What BM25 needs to know about one collection: its size, mean length and document frequencies."""

    documents: int = 0
    mean_length: float = 0.0
    df: dict[str, int] = field(default_factory=dict)


@dataclass
class FieldPostings:
    """Per document: the (weighted) frequency of each query lexeme, and the document's length."""

    tf: dict[int, dict[str, float]] = field(default_factory=dict)
    length: dict[int, int] = field(default_factory=dict)


def idf(df: int, documents: int) -> float:
    """BM25's inverse document frequency, the non-negative variant (Lucene's)."""
    return math.log(1.0 + (documents - df + 0.5) / (df + 0.5))


def field_scores(query: dict[str, float], postings: FieldPostings, stats: FieldStats) -> dict[int, float]:
    """BM25 of each document for the query, divided by the best score the query could reach: 0..1.

    The bound is each query term at saturation (tf → ∞), so a document containing every word of
    the message often scores near 1 and one sharing only a common word scores near 0.
    """
    if not postings.tf or stats.documents <= 0:
        return {}
    weights = {term: q * idf(stats.df.get(term, 0), stats.documents) for term, q in query.items()}
    ceiling = sum(weights.values()) * (K1 + 1)
    if ceiling <= 0:
        return {}
    mean_length = stats.mean_length or 1.0
    scores = {}
    for doc_id, tfs in postings.tf.items():
        norm = K1 * (1 - B + B * postings.length.get(doc_id, 0) / mean_length)
        total = 0.0
        for term, tf in tfs.items():
            if tf > 0 and term in weights:
                total += weights[term] * tf * (K1 + 1) / (tf + norm)
        if total > 0:
            scores[doc_id] = min(1.0, total / ceiling)
    return scores


def combine(body: dict[int, float], accepted: dict[int, float]) -> dict[int, float]:
    """One 0..1 word score per entry from its body and its accepted evidence.

    They combine like independent chances (1 - (1-a)(1-b)): either alone keeps its own score, together
    they reinforce, and an entry nobody gave feedback on ranks exactly on its body.
    """
    combined = {}
    for entry_id in body.keys() | accepted.keys():
        score = 1 - (1 - body.get(entry_id, 0.0)) * (1 - accepted.get(entry_id, 0.0))
        if score > 0:
            combined[entry_id] = score
    return combined


def dismiss(scores: dict[int, float], dismissed: dict[int, float]) -> dict[int, float]:
    """Scores scaled down where the message is like the messages this entry was dismissed for."""
    return {
        entry_id: score * (1 - DISMISS_WEIGHT * dismissed.get(entry_id, 0.0))
        for entry_id, score in scores.items()
        if score > 0
    }


def with_meaning(words: dict[int, float], meaning: dict[int, float]) -> dict[int, float]:
    """Word scores blended with meaning scores (each 0..1) for the entries either knows."""
    blended = {}
    for entry_id in words.keys() | meaning.keys():
        score = (1 - MEANING_WEIGHT) * words.get(entry_id, 0.0) + MEANING_WEIGHT * meaning.get(entry_id, 0.0)
        if score > 0:
            blended[entry_id] = score
    return blended


def trigrams(word: str) -> set[str]:
    """pg_trgm's trigrams of one word: padded with two spaces in front and one behind."""
    padded = f"  {word} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def trigram_similarity(a: str, b: str) -> float:
    """pg_trgm's similarity(): shared trigrams over all trigrams."""
    ta, tb = trigrams(a), trigrams(b)
    union = len(ta | tb)
    return len(ta & tb) / union if union else 0.0


def candidate_terms(df: dict[str, int], budget: int) -> list[str]:
    """The rarest query terms whose postings together stay within budget (at least one).

    Entries are fetched through these terms only; every query term still counts in their scores.
    A document sharing only very common words with the message would score near zero anyway.
    """
    chosen: list[str] = []
    spent = 0
    for term in sorted(df, key=lambda t: (df[t], t)):
        if chosen and spent + df[term] > budget:
            break
        chosen.append(term)
        spent += df[term]
    return chosen
