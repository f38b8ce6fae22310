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
    # Where a synced entry lives at its source (an Intercom article: its locale, URL, last edit there).
    source_locale = models.CharField(max_length=20, blank=True, default="")
    source_url = models.URLField(max_length=1000, blank=True, default="")
    source_updated_at = models.DateTimeField(null=True, blank=True)
    # The sync run that last saw it at its source; one that did not see it retires it (disabled, kept).
    source_run_id = models.BigIntegerField(null=True, blank=True, editable=False)
    retired_at = models.DateTimeField(null=True, blank=True, help_text="When its source removed or unpublished it.")
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
            # Re-importing a file (re-syncing an article, per locale) updates the rows it created instead of
            # duplicating them.
            models.UniqueConstraint(
                fields=["workspace", "source", "external_id", "source_locale"],
                condition=~models.Q(external_id=""),
                name="knowledge_entry_source_unique",
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
    """A workspace's suggestion tuning (how good a match must be, how many to show) and what to sync."""

    workspace = models.OneToOneField("accounts.Workspace", on_delete=models.CASCADE, related_name="knowledge_settings")
    suggestion_threshold = models.FloatField(
        default=DEFAULT_SUGGESTION_THRESHOLD, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    top_k = models.PositiveSmallIntegerField(
        default=DEFAULT_TOP_K, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    # The Help Center locales synced into the knowledge base ("en", "fr", ...); empty: each article's default.
    article_locales = models.JSONField(default=list, blank=True)
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


# ------------------------------------------------------------------------------
# Knowledge from Intercom: Help Center sync and history import runs, and entries proposed from history
# ------------------------------------------------------------------------------
class SyncKind(models.TextChoices):
    ARTICLES = "articles", "Help Center sync"
    HISTORY = "history", "History import"


class SyncStatus(models.TextChoices):
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for Intercom's rate limit"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class SyncRun(models.Model):
    """One Help Center sync or history import: a chain of page tasks, and where it is.

    The run row is the chain's memory: each page task reads `cursor` (the page to fetch) and
    `offset` (how many of its items are done), does its part in the task's one transaction and
    moves them on in the same commit, so a task killed mid-page is redone from the last commit
    and no item is applied twice.
    """

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=SyncKind.choices)
    status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    # articles: {"locales": [...]}; history: {"days": N, "since": epoch}
    params = models.JSONField(default=dict, blank=True)
    cursor = models.CharField(max_length=500, blank=True, default="")
    offset = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True, blank=True)
    errors = models.PositiveIntegerField(default=0)
    error_log = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True)
    counts = models.JSONField(default=dict, blank=True, help_text="What the run did: created, updated, retired...")
    requests = models.PositiveIntegerField(default=0)
    rate_limited = models.PositiveIntegerField(default=0, help_text="429 answers seen.")
    paced_seconds = models.FloatField(default=0.0, help_text="Time waited for Intercom's rate limit to reset.")
    # Intercom's rate-limit window as the last call saw it, handed from one page task to the next.
    rate_limit = models.IntegerField(null=True, blank=True)
    rate_remaining = models.IntegerField(null=True, blank=True)
    rate_reset = models.FloatField(null=True, blank=True, help_text="Epoch seconds when the window resets.")
    tasks = models.PositiveIntegerField(default=0, help_text="Page tasks run.")
    resume_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="knowledge_syncrun_ws_idx"),
            models.Index(fields=["resume_at"], name="knowledge_syncrun_wait_idx", condition=models.Q(status="waiting")),
        ]
        constraints = [
            # One run of a kind at a time per workspace: two would race on the same entries and cursor.
            models.UniqueConstraint(
                fields=["workspace", "kind"],
                condition=models.Q(status__in=["running", "waiting"]),
                name="knowledge_syncrun_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} run {self.id} of workspace {self.workspace_id} ({self.status})"


class ProposalStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    ACCEPTED = "accepted", "Accepted"
    DISMISSED = "dismissed", "Dismissed"


class ReplyOccurrence(models.Model):
    """An agent reply, by its normalised text, seen in one conversation: recurring ones become proposals."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    text_key = models.CharField(max_length=64)
    conversation_ref = models.CharField(max_length=100)
    question = models.TextField(blank=True, help_text="What the customer had asked (an example for the proposal).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "text_key", "conversation_ref"], name="knowledge_reply_once_per_conversation"
            )
        ]

    def __str__(self) -> str:
        return f"{self.text_key[:8]} in {self.conversation_ref}"


class EntryProposal(models.Model):
    """An entry proposed from a reply the team sent in many conversations that no entry holds."""

    workspace = models.ForeignKey("accounts.Workspace", on_delete=models.CASCADE, related_name="+")
    text_key = models.CharField(max_length=64)
    title = models.CharField(max_length=300)
    body_html = models.TextField()
    body_text = models.TextField()
    times_sent = models.PositiveIntegerField(default=0, help_text="Conversations the reply was sent in.")
    example_questions = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=ProposalStatus.choices, default=ProposalStatus.PROPOSED)
    entry = models.ForeignKey(Entry, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_by = models.ForeignKey(
        "accounts.Membership", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "text_key"], name="knowledge_proposal_one_per_text"),
        ]
        indexes = [
            models.Index(fields=["workspace", "status", "-times_sent"], name="knowledge_proposal_ws_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title} (x{self.times_sent}, {self.status})"
