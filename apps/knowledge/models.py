"""The knowledge base: entries, what agents taught Cue about them, and the search index's statistics."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class EntryKind(models.TextChoices):
    SAVED_REPLY = "saved_reply", "Saved reply"
    ARTICLE = "article", "Article"


class Entry(models.Model):
    """One saved reply or help article of a workspace.

    On PostgreSQL the table also has `search_vector`, a stored generated tsvector (title weighted A,
    body B) with a GIN index, added by migration 0002: the database keeps it in step with every
    write, bulk ones included, so no Python code maintains it and the model does not declare it.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="knowledge_entries")
    title = models.CharField(max_length=300)
    body_html = models.TextField()
    body_text = models.TextField(help_text="The body as plain text: what is searched and ranked.")
    kind = models.CharField(max_length=20, choices=EntryKind.choices, default=EntryKind.SAVED_REPLY)
    tags = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    source = models.CharField(max_length=40, default="manual", help_text="Where the entry came from, e.g. csv.")
    external_id = models.CharField(max_length=200, blank=True, default="")
    # Indexable words of title + body: BM25's document length, the same on every database.
    token_count = models.PositiveIntegerField(default=0)
    # Words of the customer messages accepted (dismissed) for this entry: its evidence profiles' lengths.
    accepted_tokens = models.PositiveIntegerField(default=0)
    dismissed_tokens = models.PositiveIntegerField(default=0)
    # What the entry means, and what its accepted messages mean (apps/knowledge/semantic.py): float32 sums
    # of word vectors. Null when none of its words has a vector (or, for accepted_meaning, no evidence).
    meaning = models.BinaryField(null=True, blank=True, editable=False)
    accepted_meaning = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "entries"
        constraints = [
            # Re-importing a file updates the rows it created instead of duplicating them.
            models.UniqueConstraint(
                fields=["workspace", "source", "external_id"],
                condition=~models.Q(external_id=""),
                name="knowledge_entry_external_id_unique",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "-updated_at"])]

    def __str__(self) -> str:
        return self.title


class EvidenceAction(models.TextChoices):
    ACCEPT = "accept", "Accepted"
    DISMISS = "dismiss", "Dismissed"


class EntryEvidence(models.Model):
    """A customer message an agent accepted (or dismissed) this entry for: what the ranker learns from."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="evidence")
    # The caller's stable id of the customer message (e.g. "message:42"): one verdict per message and entry.
    message_ref = models.CharField(max_length=200)
    action = models.CharField(max_length=10, choices=EvidenceAction.choices)
    text = models.TextField()
    token_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "entry evidence"
        constraints = [
            models.UniqueConstraint(fields=["entry", "message_ref"], name="knowledge_evidence_one_per_message"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.entry_id} for {self.message_ref}"


class EvidenceTerm(models.Model):
    """Inverted index of the evidence: how often a lexeme occurs in an entry's accepted/dismissed messages.

    Looked up by (workspace, lexeme), so ranking reads only the postings of the message's words.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    entry = models.ForeignKey(Entry, on_delete=models.CASCADE, related_name="evidence_terms")
    lexeme = models.CharField(max_length=200)
    accepted = models.PositiveIntegerField(default=0)
    dismissed = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entry", "lexeme"], name="knowledge_evidence_term_unique")]
        indexes = [models.Index(fields=["workspace", "lexeme"], name="knowledge_evterm_ws_lexeme")]

    def __str__(self) -> str:
        return f"{self.lexeme}@{self.entry_id}"


class LexemeStat(models.Model):
    """A workspace's vocabulary: in how many entries (df) and accepted-evidence profiles a lexeme occurs.

    df is BM25's document frequency, kept by the entry services on PostgreSQL (the pure-Python index
    counts for itself), so ranking never counts over the whole knowledge base. Every known lexeme is
    here, so misspellings are matched against this one trigram-indexed table.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    lexeme = models.CharField(max_length=200)
    df = models.IntegerField(default=0)
    evidence_entries = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "lexeme"], name="knowledge_lexemestat_unique")]

    def __str__(self) -> str:
        return f"{self.lexeme}: {self.df}"


class IndexTotals(models.Model):
    """Per-workspace sizes of the ranked collections (entries, accepted and dismissed evidence profiles)."""

    workspace = models.OneToOneField("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    entries = models.IntegerField(default=0)
    entry_tokens = models.BigIntegerField(default=0)
    accepted_profiles = models.IntegerField(default=0)
    accepted_tokens = models.BigIntegerField(default=0)
    dismissed_profiles = models.IntegerField(default=0)
    dismissed_tokens = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "index totals"

    def __str__(self) -> str:
        return f"index totals of workspace {self.workspace_id}"


DEFAULT_SUGGESTION_THRESHOLD = 0.05
DEFAULT_TOP_K = 3


class KnowledgeSettings(models.Model):
    """A workspace's suggestion tuning: how good a match must be, and how many to show."""

    workspace = models.OneToOneField("accounts.Workspace", on_delete=models.CASCADE, related_name="knowledge_settings")
    suggestion_threshold = models.FloatField(
        default=DEFAULT_SUGGESTION_THRESHOLD, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    top_k = models.PositiveSmallIntegerField(
        default=DEFAULT_TOP_K, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "knowledge settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(suggestion_threshold__gte=0, suggestion_threshold__lte=1),
                name="knowledge_settings_threshold_range",
            ),
            models.CheckConstraint(
                condition=models.Q(top_k__gte=1, top_k__lte=10), name="knowledge_settings_top_k_range"
            ),
        ]

    def __str__(self) -> str:
        return f"knowledge settings of workspace {self.workspace_id}"
