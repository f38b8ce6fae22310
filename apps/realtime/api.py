"""Realtime API: what a signed-in agent's browser needs to subscribe to its workspace's events."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import membership_of
from apps.realtime import services
from apps.realtime.backends import RealtimeUnavailable
from project.api import error_response


class RealtimeServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Realtime is unavailable right now; poll the REST API and try again later."
    default_code = "realtime_unavailable"


class RealtimeCredentialsOutputSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(help_text="A realtime token: good for connecting only, until expires_at.")


class RealtimeConnectionApi(APIView):
    """GET: url, client id, topics and (in AWS) a short-lived credential for this member."""

    class RealtimeConnectionOutputSerializer(serializers.Serializer):
        backend = serializers.ChoiceField(choices=["iot", "mqtt", "log"])
        mode = serializers.ChoiceField(
            choices=["live", "poll"],
            help_text="live: connect to url and listen; poll: realtime is off here, poll the REST API every "
            "poll_seconds (url is null).",
        )
        poll_seconds = serializers.IntegerField(
            help_text="How often to poll the REST API in poll mode, and while a live connection is down."
        )
        url = serializers.CharField(allow_null=True, help_text="MQTT over WebSockets; null when realtime is off.")
        client_id = serializers.CharField()
        topics = serializers.ListField(child=serializers.CharField(), help_text="Topic filters to subscribe to.")
        qos = serializers.IntegerField()
        credentials = RealtimeCredentialsOutputSerializer(allow_null=True, help_text="Null where the broker is open.")
        expires_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        responses={
            200: RealtimeConnectionOutputSerializer,
            503: error_response(
                "Realtime cannot issue a connection now (`realtime_unavailable`: poll the REST API), "
                "or the database cannot be reached (`database_unavailable`)."
            ),
        }
    )
    def get(self, request):
        try:
            details = services.connection_issue(membership=membership_of(request))
        except RealtimeUnavailable as exc:
            raise RealtimeServiceUnavailable from exc
        response = Response(self.RealtimeConnectionOutputSerializer(details).data)
        response["Cache-Control"] = "no-store"  # it carries a credential
        return response
