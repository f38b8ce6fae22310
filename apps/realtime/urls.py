from django.urls import path

from apps.realtime import api

urlpatterns = [
    path("realtime/connection", api.RealtimeConnectionApi.as_view(), name="realtime-connection"),
]
