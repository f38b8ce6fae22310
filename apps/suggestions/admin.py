"""Admin screens for suggestions and knowledge gaps (read-mostly: rows are written by the suggestion step)."""

from django.contrib import admin

from apps.suggestions.models import DailyDigest, KnowledgeGap, Suggestion


@admin.register(Suggestion)
class SuggestionAdmin(admin.ModelAdmin):
    list_display = ("id", "workspace", "message", "title", "score", "rank", "status", "decided_at", "created_at")
    list_filter = ("status",)
    list_select_related = ("workspace",)
    raw_id_fields = ("workspace", "conversation", "message", "entry", "decided_by", "reply")


@admin.register(KnowledgeGap)
class KnowledgeGapAdmin(admin.ModelAdmin):
    list_display = ("id", "workspace", "message", "best_score", "created_at")
    list_select_related = ("workspace",)
    raw_id_fields = ("workspace", "conversation", "message")


@admin.register(DailyDigest)
class DailyDigestAdmin(admin.ModelAdmin):
    list_display = ("workspace", "day", "messages_received", "suggestions_shown", "suggestions_accepted", "emailed_at")
    list_filter = ("day",)
    raw_id_fields = ("workspace",)
    readonly_fields = [f.name for f in DailyDigest._meta.fields]
