"""Ranking latency per customer message on PostgreSQL at 1,000, 10,000 and 100,000 knowledge-base entries.

One workspace grows through Cue's own import service; at each size the same customer messages are ranked
by apps.knowledge's ranking service (entries_rank, the suggestion step's call) and timed one by one.
Entries are synthetic saved replies: sentences of the Bitext responses recombined, plus words from a
Zipf-distributed vocabulary of made-up product terms, so frequent words stay frequent as the base grows.
Usage: python bench/suggest_latency.py [--sizes 1000,10000,100000] [--queries 400]
"""

import random
import re
import statistics
import time

from _setup import bench_parser, django_on_postgres, drop_workspace, new_workspace, p95
from suggest_quality import DATA, load_protocol

SEED = 7
PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}")


def sentence_pool() -> list[str]:
    import csv

    with DATA.open(newline="", encoding="utf-8") as f:
        responses = [PLACEHOLDER.sub("", row["response"]) for row in csv.DictReader(f)]
    pool = {s.strip() for text in responses for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.split()) >= 4}
    return sorted(pool)


def made_up_vocabulary(rng: random.Random, size: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "zu", "ter", "ven", "dra", "pol", "qui", "sen", "rab", "tix", "mon", "gal"]
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 5))))
    return sorted(words)


def entries(rng: random.Random, pool: list[str], vocabulary: list[str], weights: list[float], count: int, start: int):
    for n in range(start, start + count):
        terms = rng.choices(vocabulary, weights=weights, k=6)
        sentences = rng.sample(pool, rng.randint(3, 7))
        yield {
            "title": f"{terms[0].title()} {terms[1]}: " + " ".join(sentences[0].split()[:6]),
            "body": "<p>" + "</p><p>".join(sentences) + "</p><p>" + " ".join(terms[2:]) + "</p>",
            "external_id": f"bench-{n}",
        }


def measure(workspace_id: int, messages: list[str]) -> list[float]:
    from apps.knowledge.selectors import entries_rank

    for message in messages[:20]:  # warm the caches and the connection
        entries_rank(workspace_id=workspace_id, text=message)
    timings = []
    for message in messages:
        started = time.perf_counter()
        entries_rank(workspace_id=workspace_id, text=message)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main() -> None:
    parser = bench_parser(__doc__, database="cue_bench_latency", env="BENCH_DATABASE_URL")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--evidence", type=int, default=2000, help="accepted messages recorded as feedback")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    url = django_on_postgres(args.database_url)

    from django.db import connection

    from apps.knowledge.models import Entry
    from apps.knowledge.services import entries_import, evidence_record

    rng = random.Random(SEED)
    pool = sentence_pool()
    vocabulary = made_up_vocabulary(rng, 50_000)
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    _, _, queries, history, _, _ = load_protocol()
    messages = [query for query, _ in rng.sample(queries, args.queries)]
    feedback = rng.sample(history, min(args.evidence, len(history)))

    print(f"database {url.rsplit('@', 1)[-1]}; {len(messages)} messages per size; {len(pool)} source sentences")
    print(f"{'entries':>8}{'import s':>10}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}")
    workspace_id = new_workspace("bench latency")
    medians, have = {}, 0
    try:
        for size in sizes:
            started = time.perf_counter()
            entries_import(
                workspace_id=workspace_id,
                rows=entries(rng, pool, vocabulary, weights, size - have, have),
                source="bench",
            )
            imported = time.perf_counter() - started
            if have == 0:
                ids = list(Entry.objects.filter(workspace_id=workspace_id).values_list("id", flat=True))
                for n, (text, _) in enumerate(feedback):
                    evidence_record(
                        workspace_id=workspace_id,
                        entry_id=rng.choice(ids),
                        message_ref=f"bench:{n}",
                        text=text,
                        action="accept",
                    )
            have = size
            # The steady state autovacuum keeps: statistics current, dead rows of earlier runs gone.
            with connection.cursor() as cursor:
                for table in ("knowledge_entry", "knowledge_lexemestat", "knowledge_evidenceterm"):
                    cursor.execute(f"VACUUM ANALYZE {table}")
            timings = measure(workspace_id, messages)
            medians[size] = statistics.median(timings)
            print(f"{size:>8}{imported:>10.1f}{medians[size]:>11.2f}{p95(timings):>9.2f}{max(timings):>9.2f}")
    finally:
        drop_workspace(workspace_id)
    first, last = sizes[0], sizes[-1]
    print()
    print(f"median at {last:,} / median at {first:,}: {medians[last] / medians[first]:.2f}x (target <= 3x)")
    if 10_000 in medians:
        print("target: p95 <= 25 ms at 10,000 entries")


if __name__ == "__main__":
    main()
