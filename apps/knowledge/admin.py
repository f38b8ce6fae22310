from django.contrib import admin

from apps.knowledge.models import Entry, EntryEvidence, KnowledgeSettings


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    """Read-mostly: edits go through the API so the search statistics stay in step."""

    list_display = ("id", "title", "kind", "enabled", "source", "workspace", "updated_at")
    list_filter = ("kind", "enabled", "source")
    search_fields = ("title", "external_id")
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
