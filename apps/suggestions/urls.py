from django.urls import path

from apps.suggestions import api

urlpatterns = [
    path(
        "conversations/<int:conversation_id>/suggestions",
        api.ConversationSuggestionListApi.as_view(),
        name="conversation-suggestions",
    ),
    path("suggestions/<int:suggestion_id>/feedback", api.SuggestionFeedbackApi.as_view(), name="suggestion-feedback"),
    path("suggestions/stats", api.SuggestionStatsApi.as_view(), name="suggestion-stats"),
    path("knowledge/gaps", api.KnowledgeGapListApi.as_view(), name="knowledge-gap-list"),
    path("digests", api.DailyDigestListApi.as_view(), name="digest-list"),
]
