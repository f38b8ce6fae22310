"""Cue's URL map: the public paths are fixed in shared/design/API.md."""

from django.contrib import admin
from django.urls import include, path

from apps.console.views import home
from apps.integrations.urls import api_urlpatterns as intercom_api_urls
from apps.integrations.urls import intercom_urlpatterns
from project import views

urlpatterns = [
    path("", home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("console/", include("apps.console.urls")),
    path("admin/", admin.site.urls),
    path(
        "api/schema/",
        views.lazy_view("drf_spectacular.views.SpectacularAPIView", authentication_classes=[], permission_classes=[]),
        name="schema",
    ),
    path(
        "api/docs/",
        views.lazy_view(
            "drf_spectacular.views.SpectacularSwaggerView",
            url_name="schema",
            authentication_classes=[],
            permission_classes=[],
        ),
        name="docs",
    ),
    path("api/", include("apps.accounts.urls")),
    path("api/", include("apps.tasks.urls")),
    path("api/", include("apps.realtime.urls")),
    path("api/", include(intercom_api_urls)),
    path("api/", include("apps.conversations.urls")),
    path("", include(intercom_urlpatterns)),
    path("api/", include("apps.knowledge.urls")),
    path("api/", include("apps.suggestions.urls")),
]

handler400 = "project.api.handler400"
handler403 = "project.api.handler403"
handler404 = "project.api.handler404"
handler500 = "project.api.handler500"
