"""The words Cue ranks on, and how nearly two texts say the same words (HTML helpers: project.html)."""

import re
from collections import Counter
from functools import lru_cache
from itertools import pairwise

# ------------------------------------------------------------------------------
# The words Cue ranks on (the pure-Python twin of PostgreSQL's 'english' configuration)
# ------------------------------------------------------------------------------

# PostgreSQL's english.stop (the Snowball list), so both databases drop the same words.
_STOP_WORDS_TEXT = """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
    herself it its itself they them their theirs themselves what which who whom this that these those am is are
    was were be been being have has had having do does did doing a an the and but if or because as until while of
    at by for with about against between into through during before after above below to from up down in out on
    off over under again further then once here there when where why how all any both each few more most other
    some such no nor not only own same so than too very s t can will just don should now"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

# Long digit runs are order, account or phone numbers: they name one customer's case, never a topic,
# and must not turn one customer's identifier into evidence for an entry. Short numbers
# (error codes, years, plan sizes) stay. The same pattern is used in PostgreSQL (see the migration).
IDENTIFIER_PATTERN = re.compile(r"\b[0-9]{5,}\b")
IDENTIFIER_PATTERN_SQL = r"\m[0-9]{5,}\M"

_WORD = re.compile(r"[^\W_]+")


@lru_cache(maxsize=1)
def _stemmer():
    # Imported on first use: snowballstemmer loads every language's stemmer (a tenth of a Lambda
    # cold start without bytecode), and most invocations rank nothing.
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=50_000)
def _stem(word: str) -> str:
    return _stemmer().stemWord(word)


def words_of(text: str) -> list[str]:
    """Lower-cased words of a text, identifiers and stop words removed (unstemmed)."""
    text = IDENTIFIER_PATTERN.sub(" ", text.lower())
    return [w for w in _WORD.findall(text) if w not in STOP_WORDS]


def lexemes_of(text: str) -> Counter:
    """Stemmed words with their counts: what the pure-Python ranker indexes and searches."""
    return Counter(_stem(w) for w in words_of(text))


def token_count(text: str) -> int:
    """How many indexable words a text has: the document length BM25 normalises by, on every database."""
    return len(words_of(text))


# ------------------------------------------------------------------------------
# Near-identical texts (an agent's reply that repeats a saved reply)
# ------------------------------------------------------------------------------


def _word_pairs(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < 2:
        return {tuple(words)} if words else set()
    return set(pairwise(words))


def text_overlap(a: str, b: str) -> float:
    """How nearly two plain texts say the same words in the same order, 0..1 (1: the same words).

    The Dice coefficient of their sets of adjacent word pairs, case and punctuation ignored, stop words
    kept (here the wording is what counts, not the topic). Changing one word costs the two pairs it is
    in, so a new greeting or signature lowers it a little; the same topic in other words shares few pairs.
    """
    pairs_a, pairs_b = _word_pairs(a), _word_pairs(b)
    if not pairs_a or not pairs_b:
        return 0.0
    return 2 * len(pairs_a & pairs_b) / (len(pairs_a) + len(pairs_b))
