"""Owner/admin API over the workspace's Intercom connection: read, connect by token or OAuth, disconnect."""

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponseRedirect
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsManager, IsManagerOrReadOnly, membership_of, workspace_of
from apps.integrations import selectors, services
from apps.integrations.models import IntercomConnection, Region
from apps.knowledge import selectors as knowledge_selectors
from apps.knowledge import sync as knowledge_sync
from apps.knowledge.models import SyncRun
from project.api import error_body, error_response

APP_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class ConnectionOutputSerializer(serializers.Serializer):
    connected = serializers.BooleanField(
        help_text="True while the connection is active (routes webhooks, sends replies)."
    )
    status = serializers.ChoiceField(
        choices=["not_connected", "active", "disabled"],
        help_text="'disabled': kept to say why (disabled_reason), routes and sends nothing; connect again.",
    )
    app_id = serializers.CharField(allow_null=True, help_text="The app Intercom says the token belongs to (GET /me).")
    region = serializers.CharField(allow_null=True)
    api_version = serializers.CharField(allow_null=True)
    method = serializers.CharField(allow_null=True)
    has_access_token = serializers.BooleanField()
    signature_secret = serializers.CharField(
        allow_null=True, help_text="Whose secret verifies this workspace's requests: 'workspace' or Cue's 'app'."
    )
    token_admin_id = serializers.CharField(allow_null=True)
    connected_at = serializers.DateTimeField(allow_null=True)
    admins_synced_at = serializers.DateTimeField(allow_null=True)
    verified_at = serializers.DateTimeField(
        allow_null=True, help_text="When Intercom last confirmed the token belongs to app_id; null: not yet."
    )
    took_over_at = serializers.DateTimeField(
        allow_null=True, help_text="When this workspace took the app over from another Cue workspace by proving it."
    )
    disabled_at = serializers.DateTimeField(allow_null=True)
    disabled_code = serializers.CharField(
        allow_null=True, help_text="token_refused, app_mismatch or app_claimed (taken over by another workspace)."
    )
    disabled_reason = serializers.CharField(allow_null=True)
    webhook_url = serializers.CharField()
    canvas_initialize_url = serializers.CharField()
    canvas_submit_url = serializers.CharField()


_CONNECTION_FIELDS = [
    "app_id",
    "region",
    "api_version",
    "method",
    "signature_secret",
    "token_admin_id",
    "connected_at",
    "admins_synced_at",
    "verified_at",
    "took_over_at",
    "disabled_at",
    "disabled_code",
    "disabled_reason",
]


def _connection_body(request, conn: IntercomConnection | None) -> dict:
    """The connection as the API shows it: never the token or the secret, only whether they are set."""
    urls = {
        "webhook_url": request.build_absolute_uri(reverse("intercom-webhook")),
        "canvas_initialize_url": request.build_absolute_uri(reverse("intercom-canvas-initialize")),
        "canvas_submit_url": request.build_absolute_uri(reverse("intercom-canvas-submit")),
    }
    if conn is None:
        empty = dict.fromkeys(_CONNECTION_FIELDS)
        return {"connected": False, "status": "not_connected", "has_access_token": False, **empty, **urls}
    return {
        "connected": conn.is_active,
        "status": "active" if conn.is_active else "disabled",
        "app_id": conn.app_id,
        "region": conn.region,
        "api_version": conn.api_version,
        "method": conn.method,
        "has_access_token": bool(conn.access_token),
        "signature_secret": "workspace" if conn.client_secret else "app",
        "token_admin_id": conn.token_admin_id or None,
        "connected_at": conn.connected_at,
        "admins_synced_at": conn.admins_synced_at,
        "verified_at": conn.verified_at,
        "took_over_at": conn.took_over_at,
        "disabled_at": conn.disabled_at,
        "disabled_code": conn.disabled_code or None,
        "disabled_reason": conn.disabled_reason or None,
        **urls,
    }


class IntercomConnectionApi(APIView):
    permission_classes = [IsManager]

    class IntercomConnectionPutInputSerializer(serializers.Serializer):
        access_token = serializers.RegexField(
            services.TOKEN_PATTERN,
            max_length=500,
            trim_whitespace=True,
            write_only=True,
            error_messages={"invalid": "An Intercom access token is printable ASCII without spaces."},
        )
        client_secret = serializers.CharField(max_length=200, trim_whitespace=True, write_only=True)
        app_id = serializers.RegexField(
            APP_ID_PATTERN,
            max_length=64,
            required=False,
            help_text="Optional: the app you expect. Intercom says which app the token belongs to; a different one is "
            "refused (400 app_mismatch).",
        )
        region = serializers.ChoiceField(choices=Region.choices, default=Region.US)

    @extend_schema(responses=ConnectionOutputSerializer)
    def get(self, request):
        conn = selectors.connection_for_workspace(workspace=workspace_of(request), include_disabled=True)
        return Response(ConnectionOutputSerializer(_connection_body(request, conn)).data)

    @extend_schema(
        request=IntercomConnectionPutInputSerializer,
        responses={
            200: OpenApiResponse(ConnectionOutputSerializer, description="The connection was replaced."),
            201: OpenApiResponse(ConnectionOutputSerializer, description="The workspace is now connected."),
            400: error_response("`invalid`, `token_invalid` (Intercom refused the token) or `app_mismatch`."),
            409: error_response("`app_taken`: another workspace connected the same app at that moment."),
            502: error_response("`intercom_error`: Intercom failed while asked whose token it is."),
            503: error_response(
                "`intercom_unavailable`: Intercom could not be reached, or `database_unavailable`; nothing stored."
            ),
        },
    )
    def put(self, request):
        """Connect by token: Intercom (GET /me) says which app it belongs to; taking it over from another workspace."""
        data = self.IntercomConnectionPutInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            conn, created = services.connection_set_token(actor=membership_of(request), **data.validated_data)
        except services.ConnectRefused as exc:
            return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status)
        body = ConnectionOutputSerializer(_connection_body(request, conn)).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=None, responses={204: None, 404: error_response("Intercom is not connected (`not_found`).")})
    def delete(self, request):
        if not services.connection_delete(workspace=workspace_of(request)):
            raise NotFound("Intercom is not connected.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class IntercomOAuthStartApi(APIView):
    permission_classes = [IsManager]

    class IntercomOAuthStartInputSerializer(serializers.Serializer):
        region = serializers.ChoiceField(choices=Region.choices, default=Region.US)

    class IntercomOAuthStartOutputSerializer(serializers.Serializer):
        authorize_url = serializers.URLField()

    @extend_schema(
        parameters=[OpenApiParameter("region", enum=Region.values)], responses=IntercomOAuthStartOutputSerializer
    )
    def get(self, request):
        """The URL to send the browser to; the console navigates there (a bearer token cannot follow a redirect)."""
        data = self.IntercomOAuthStartInputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        url = services.oauth_authorize_url(actor=membership_of(request), region=data.validated_data["region"])
        return Response(self.IntercomOAuthStartOutputSerializer({"authorize_url": url}).data)


class IntercomOAuthCallbackApi(APIView):
    """Intercom sends the browser here; the signed state stands in for the member's login."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[OpenApiParameter("code", str), OpenApiParameter("state", str)],
        responses={302: None},
    )
    def get(self, request):
        state = request.query_params.get("state", "")
        code = request.query_params.get("code", "")
        try:
            services.connection_complete_oauth(state=state, code=code)
        except services.OAuthFailed as exc:
            return _back_to_console({"intercom": "error", "reason": exc.reason})
        return _back_to_console({"intercom": "connected"})


def _back_to_console(params: dict) -> HttpResponseRedirect:
    base = settings.INTERCOM_OAUTH_RETURN_URL
    return HttpResponseRedirect(f"{base}{'&' if '?' in base else '?'}{urlencode(params)}")


# ------------------------------------------------------------------------------
# Help Center sync and history import (the runs live in apps.knowledge)
# ------------------------------------------------------------------------------
class SyncRunOutputSerializer(serializers.ModelSerializer):
    rate = serializers.SerializerMethodField(help_text="Items (articles or conversations) per second so far.")
    eta_seconds = serializers.SerializerMethodField(help_text="Seconds left at that rate; null when unknown.")

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "kind",
            "status",
            "done",
            "total",
            "errors",
            "rate",
            "eta_seconds",
            "pages",
            "tasks",
            "requests",
            "rate_limited",
            "paced_seconds",
            "resume_at",
            "counts",
            "params",
            "error_log",
            "last_error",
            "created_at",
            "updated_at",
            "finished_at",
        ]

    def get_rate(self, run: SyncRun) -> float:
        return knowledge_sync.run_progress(run)["rate"]

    def get_eta_seconds(self, run: SyncRun) -> float | None:
        return knowledge_sync.run_progress(run)["eta_seconds"]


class SyncRunListOutputSerializer(serializers.Serializer):
    """Not a page: the latest runs, newest first, under `results`."""

    results = SyncRunOutputSerializer(many=True)


class IntercomSyncApi(APIView):
    """GET: any member sees the latest runs with their progress. POST: an owner or admin starts one or both."""

    permission_classes = [IsManagerOrReadOnly]

    class SyncStartInputSerializer(serializers.Serializer):
        articles = serializers.BooleanField(default=False, help_text="Sync the Help Center's articles.")
        history_days = serializers.IntegerField(
            min_value=1,
            max_value=settings.CUE_SYNC_HISTORY_MAX_DAYS,
            required=False,
            allow_null=True,
            default=None,
            help_text="Import the closed conversations of the last N days.",
        )

        def validate(self, attrs):
            if not attrs["articles"] and not attrs["history_days"]:
                raise serializers.ValidationError("Ask for articles, history_days, or both.")
            return attrs

    class SyncStartOutputSerializer(serializers.Serializer):
        runs = SyncRunOutputSerializer(many=True)

    @extend_schema(responses=SyncRunListOutputSerializer)
    def get(self, request):
        runs = knowledge_selectors.sync_run_list(workspace_id=workspace_of(request).id)
        return Response({"results": SyncRunOutputSerializer(runs, many=True).data})

    @extend_schema(
        request=SyncStartInputSerializer,
        responses={
            202: SyncStartOutputSerializer,
            409: error_response("Intercom is not connected (`not_connected`), or a run is going (`run_in_progress`)."),
        },
    )
    def post(self, request):
        data = self.SyncStartInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            runs = knowledge_sync.sync_start(
                workspace_id=workspace_of(request).id,
                articles=data.validated_data["articles"],
                history_days=data.validated_data["history_days"],
                started_by_id=membership_of(request).id,
            )
        except knowledge_sync.NotConnected:
            return Response(
                error_body("not_connected", "Connect Intercom first: there is nothing to sync from."),
                status=status.HTTP_409_CONFLICT,
            )
        except knowledge_sync.RunInProgress as exc:
            return Response(
                error_body("run_in_progress", str(exc), {"run": [str(exc.run.id)]}), status=status.HTTP_409_CONFLICT
            )
        return Response({"runs": SyncRunOutputSerializer(runs, many=True).data}, status=status.HTTP_202_ACCEPTED)
