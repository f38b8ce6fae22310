from django.contrib import admin, messages

from apps.knowledge import services
from apps.knowledge.models import Entry, EntryEvidence, EntryProposal, KnowledgeSettings, ProposalStatus, SyncRun


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    """Read-mostly: edits go through the API so the search statistics stay in step."""

    list_display = (
        "id",
        "title",
        "kind",
        "enabled",
        "source",
        "source_locale",
        "retired_at",
        "workspace",
        "updated_at",
    )
    list_filter = ("kind", "enabled", "source", "source_locale")
    search_fields = ("title", "external_id", "source_url")
    raw_id_fields = ("workspace",)
    readonly_fields = [f.name for f in Entry._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(EntryEvidence)
class EntryEvidenceAdmin(admin.ModelAdmin):
    list_display = ("id", "entry", "action", "message_ref", "workspace", "created_at")
    list_filter = ("action",)
    raw_id_fields = ("workspace", "entry")
    readonly_fields = [f.name for f in EntryEvidence._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(KnowledgeSettings)
class KnowledgeSettingsAdmin(admin.ModelAdmin):
    list_display = ("workspace", "suggestion_threshold", "top_k", "updated_at")
    raw_id_fields = ("workspace",)


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    """Help Center syncs and history imports of every workspace: where each is, what it did, what failed."""

    list_display = ("id", "kind", "status", "workspace", "done", "total", "errors", "rate_limited", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("id", "last_error")
    raw_id_fields = ("workspace", "started_by")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    readonly_fields = [f.name for f in SyncRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(EntryProposal)
class EntryProposalAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "times_sent", "status", "workspace", "updated_at")
    list_filter = ("status",)
    search_fields = ("title", "body_text")
    raw_id_fields = ("workspace", "entry", "decided_by")
    readonly_fields = [f.name for f in EntryProposal._meta.fields]
    actions = ["accept", "dismiss"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Accept the selected proposals into the knowledge base", permissions=["change"])
    def accept(self, request, queryset):
        done = 0
        for proposal in queryset.filter(status=ProposalStatus.PROPOSED):
            services.proposal_accept(proposal=proposal, decided_by_id=None)
            done += 1
        self.message_user(request, f"{done} proposal(s) accepted.", messages.SUCCESS)

    @admin.action(description="Dismiss the selected proposals", permissions=["change"])
    def dismiss(self, request, queryset):
        done = 0
        for proposal in queryset.filter(status=ProposalStatus.PROPOSED):
            services.proposal_dismiss(proposal=proposal, decided_by_id=None)
            done += 1
        self.message_user(request, f"{done} proposal(s) dismissed.", messages.SUCCESS)
