from django.urls import path

from apps.knowledge import api

urlpatterns = [
    path("knowledge/entries", api.EntryListApi.as_view(), name="knowledge-entry-list"),
    path("knowledge/entries/<int:entry_id>", api.EntryDetailApi.as_view(), name="knowledge-entry-detail"),
    path("knowledge/import", api.EntryImportApi.as_view(), name="knowledge-import"),
    path("knowledge/rank", api.EntryRankApi.as_view(), name="knowledge-rank"),
    path("knowledge/settings", api.KnowledgeSettingsApi.as_view(), name="knowledge-settings"),
    path("knowledge/proposals", api.ProposalListApi.as_view(), name="knowledge-proposal-list"),
    path(
        "knowledge/proposals/<int:proposal_id>/accept",
        api.ProposalAcceptApi.as_view(),
        name="knowledge-proposal-accept",
    ),
    path(
        "knowledge/proposals/<int:proposal_id>/dismiss",
        api.ProposalDismissApi.as_view(),
        name="knowledge-proposal-dismiss",
    ),
]
