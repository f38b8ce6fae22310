"""PostgreSQL's search index: a stored, GIN-indexed tsvector per entry and a trigram index on the vocabulary for typo matching.

SQLite (the embedded default) skips this migration: its ranker is pure Python.
"""

from django.db import migrations

# Long digit runs (order/account numbers) are removed before indexing; apps.knowledge.text has the same rule.
FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    r"""
    ALTER TABLE knowledge_entry ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, regexp_replace(title, '\m[0-9]{5,}\M', ' ', 'g')), 'A')
        || setweight(to_tsvector('english'::regconfig, regexp_replace(body_text, '\m[0-9]{5,}\M', ' ', 'g')), 'B')
    ) STORED
    """,
    # fastupdate off: every ranking reads this index, entries are written rarely; a pending list
    # (GIN's write buffer) would be scanned by every search until vacuum merged it.
    "CREATE INDEX knowledge_entry_search_gin ON knowledge_entry USING gin (search_vector) WITH (fastupdate = off)",
    # On lower(lexeme) (lexemes are lower-case already) so that only the similarity search uses it: on the
    # bare column the planner also picks it for exact lookups, where the unique btree is far faster.
    "CREATE INDEX knowledge_lexemestat_trgm ON knowledge_lexemestat USING gin (lower(lexeme) gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS knowledge_lexemestat_trgm",
    "DROP INDEX IF EXISTS knowledge_entry_search_gin",
    "ALTER TABLE knowledge_entry DROP COLUMN IF EXISTS search_vector",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_initial")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
