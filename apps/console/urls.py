from django.urls import path

from apps.console.views import console

urlpatterns = [path("", console, name="console")]
