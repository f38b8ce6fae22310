"""Intercom's URLs: the agent API (under /api/) and the endpoints Intercom itself calls (public, signed)."""

from django.urls import path

from apps.integrations import api, views

api_urlpatterns = [
    path("integrations/intercom", api.IntercomConnectionApi.as_view(), name="intercom-connection"),
    path("integrations/intercom/oauth/start", api.IntercomOAuthStartApi.as_view(), name="intercom-oauth-start"),
    path("integrations/intercom/sync", api.IntercomSyncApi.as_view(), name="intercom-sync"),
    path(
        "integrations/intercom/oauth/callback", api.IntercomOAuthCallbackApi.as_view(), name="intercom-oauth-callback"
    ),
]

intercom_urlpatterns = [
    path("webhooks/intercom", views.intercom_webhook, name="intercom-webhook"),
    path("intercom/canvas/initialize", views.canvas_initialize, name="intercom-canvas-initialize"),
    path("intercom/canvas/submit", views.canvas_submit, name="intercom-canvas-submit"),
]
