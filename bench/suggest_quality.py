"""Suggestion quality on the Bitext protocol (shared/data/bitext/README.md): Cue's ranker against BM25, same run.

Cue runs through its own code path on PostgreSQL: entries are imported as knowledge-base rows, every
query is ranked by apps.knowledge's ranking service, and history is given as feedback through its
evidence service. Usage: python bench/suggest_quality.py [path/to/customer_support.csv]
"""

import csv
import random
import re
import time
from collections import defaultdict
from pathlib import Path

from _setup import ROOT, bench_parser, django_on_postgres, drop_workspace, new_workspace
from rank_bm25 import BM25Okapi

# The data set lives in shared/ beside the checkout (../shared); a worktree may sit one level deeper.
_CANDIDATES = [
    base / "shared" / "data" / "bitext" / "customer_support.csv" for base in (ROOT.parent, ROOT.parent.parent)
]
DATA = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0])
PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")
HISTORY_SHARE = 0.3
EARLY_PER_ENTRY = 3


def load_protocol(path: Path = DATA):
    """Entries: each intent's first response (placeholders removed); queries: every other row."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    first = {}
    for i, row in enumerate(rows):
        first.setdefault(row["intent"], i)
    intents = list(first)
    entries = [PLACEHOLDER.sub("", rows[first[intent]]["response"]) for intent in intents]
    first_rows = set(first.values())
    queries = [(row["instruction"], row["intent"]) for i, row in enumerate(rows) if i not in first_rows]
    shuffled = list(queries)
    random.Random(0).shuffle(shuffled)
    cut = int(len(shuffled) * HISTORY_SHARE)
    history, tested = shuffled[:cut], shuffled[cut:]
    early, seen = [], defaultdict(int)
    for query, intent in history:
        if seen[intent] < EARLY_PER_ENTRY:
            early.append((query, intent))
            seen[intent] += 1
    return intents, entries, queries, history, early, tested


def figures(rankings, labels) -> dict:
    top1 = top3 = rr = none = 0
    for ranked, label in zip(rankings, labels, strict=True):
        if not ranked:
            none += 1
            continue
        top1 += ranked[0] == label
        top3 += label in ranked[:3]
        rr += 1 / (ranked.index(label) + 1) if label in ranked else 0
    n = len(labels)
    return {"top1": top1 / n, "top3": top3 / n, "mrr": rr / n, "none": none / n}


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def bm25_rankings(intents, entries, accepted, queries):
    """The anchor: rank-bm25's Okapi BM25 over lower-cased alphanumeric tokens of body (+ accepted messages)."""
    extra = defaultdict(list)
    for query, intent in accepted:
        extra[intent].append(query)
    documents = [text + " " + " ".join(extra[intent]) for intent, text in zip(intents, entries, strict=True)]
    model = BM25Okapi([tokens(document) for document in documents])
    out = []
    for query, _ in queries:
        scores = model.get_scores(tokens(query))
        order = sorted(range(len(intents)), key=lambda i: -scores[i])
        out.append([intents[i] for i in order if scores[i] > 0])
    return out


# The protocol's entry is the response text alone; Cue requires a title, so every entry gets the same
# neutral one: it adds no words that could tell entries apart (measured: an opening-sentence title
# instead, weighted as titles are, lowers top-1 with feedback by 0.003 to 0.013).
NEUTRAL_TITLE = "Saved reply"


def cue_rankings(intents, entries, accepted, queries):
    """Cue's code path: import the entries, record feedback, rank every query with the workspace's settings."""
    from apps.knowledge.selectors import entries_rank
    from apps.knowledge.services import entries_import, evidence_record

    workspace_id = new_workspace("bench quality")
    try:
        rows = [
            {"title": NEUTRAL_TITLE, "body": text, "external_id": intent}
            for intent, text in zip(intents, entries, strict=True)
        ]
        report = entries_import(workspace_id=workspace_id, rows=rows, source="bench")
        assert report.failed == 0, report.rows
        entry_of = {result.row: result.entry_id for result in report.rows}
        entry_id = {intent: entry_of[i] for i, intent in enumerate(intents, start=1)}
        intent_of = {v: k for k, v in entry_id.items()}
        for n, (query, intent) in enumerate(accepted):
            evidence_record(
                workspace_id=workspace_id,
                entry_id=entry_id[intent],
                message_ref=f"bench:{n}",
                text=query,
                action="accept",
            )
        out, started = [], time.perf_counter()
        for query, _ in queries:
            # limit=all entries so MRR sees the whole ranked list; the threshold is the workspace's default.
            ranked = entries_rank(workspace_id=workspace_id, text=query, limit=len(intents))
            out.append([intent_of[r.entry_id] for r in ranked])
        elapsed = time.perf_counter() - started
        return out, elapsed / max(1, len(queries))
    finally:
        drop_workspace(workspace_id)


def main() -> None:
    parser = bench_parser(__doc__, database="cue_bench_quality", env="BENCH_DATABASE_URL")
    parser.add_argument("data", nargs="?", type=Path, default=DATA, help="the Bitext CSV (default: %(default)s)")
    args = parser.parse_args()
    url = django_on_postgres(args.database_url)
    path = args.data
    intents, entries, queries, history, early, tested = load_protocol(path)
    print(f"data: {path.name}: {len(intents)} entries, {len(queries)} queries; database {url.rsplit('@', 1)[-1]}")
    print(f"feedback protocol: {len(history)} history (accepted), {len(tested)} tested; early: {len(early)} accepted")
    print()
    print(f"{'protocol':<34}{'ranker':<8}{'top-1':>7}{'top-3':>7}{'MRR':>7}{'none':>7}{'ms/query':>10}")
    for name, accepted, evaluated in (
        ("base (all queries)", [], queries),
        ("feedback (30 % history)", history, tested),
        (f"early ({EARLY_PER_ENTRY} accepted per entry)", early, tested),
    ):
        labels = [intent for _, intent in evaluated]
        anchor = figures(bm25_rankings(intents, entries, accepted, evaluated), labels)
        cue_ranked, per_query = cue_rankings(intents, entries, accepted, evaluated)
        cue = figures(cue_ranked, labels)
        for ranker, f, ms in (("BM25", anchor, ""), ("Cue", cue, f"{per_query * 1000:.2f}")):
            print(f"{name:<34}{ranker:<8}{f['top1']:>7.3f}{f['top3']:>7.3f}{f['mrr']:>7.3f}{f['none']:>7.3f}{ms:>10}")
    print()
    print("targets: base top-3 >= 0.80 and none <= 0.03; feedback top-1 >= 0.96 and top-3 >= 0.99; early top-1 >= 0.78")


if __name__ == "__main__":
    main()
