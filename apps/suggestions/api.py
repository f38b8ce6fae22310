"""Agent API for suggestions: a conversation's suggestions, feedback on one, knowledge gaps, acceptance stats."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsMember, membership_required, workspace_of
from apps.conversations.models import Conversation
from apps.conversations.selectors import conversation_get
from apps.suggestions import selectors, services
from apps.suggestions.models import SentAs, Suggestion
from project.api import Conflict, Pagination, error_response, paginated


class SentReplyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="pending, sent or failed")
    error = serializers.CharField(help_text="Why Intercom refused it (failed only).")
    sent_at = serializers.DateTimeField(allow_null=True)


class SuggestionOutputSerializer(serializers.ModelSerializer):
    reply = SentReplyOutputSerializer(
        allow_null=True, read_only=True, help_text="The reply or note sent to Intercom for it (send_as), and its fate."
    )

    class Meta:
        model = Suggestion
        fields = [
            "id",
            "entry_id",
            "rank",
            "score",
            "status",
            "title",
            "body",
            "message_id",
            "conversation_id",
            "sent_as",
            "reply",
            "decided_at",
            "created_at",
        ]


class ConversationSuggestionListApi(APIView):
    permission_classes = [IsMember]

    class ConversationSuggestionFilterSerializer(serializers.Serializer):
        since = serializers.DateTimeField(
            required=False,
            help_text="ISO 8601 date-time: only suggestions created after it (what a reconnecting client missed).",
        )
        message = serializers.IntegerField(required=False, min_value=1, help_text="Only this message's suggestions.")

    @extend_schema(parameters=[ConversationSuggestionFilterSerializer], responses=SuggestionOutputSerializer(many=True))
    def get(self, request, conversation_id: int):
        """The conversation's suggestions, newest customer message first, best first within a message."""
        filters = self.ConversationSuggestionFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        try:
            conversation = conversation_get(workspace=workspace_of(request), conversation_id=conversation_id)
        except Conversation.DoesNotExist as exc:
            raise Http404 from exc
        suggestions = selectors.suggestion_list(
            conversation=conversation,
            since=filters.validated_data.get("since"),
            message_id=filters.validated_data.get("message"),
        )
        return paginated(request, self, suggestions, SuggestionOutputSerializer)


class SuggestionFeedbackApi(APIView):
    permission_classes = [IsMember]

    class SuggestionFeedbackInputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=list(services.ACTIONS))
        send_as = serializers.ChoiceField(choices=SentAs.values, required=False)

    @extend_schema(
        request=SuggestionFeedbackInputSerializer,
        responses={
            200: SuggestionOutputSerializer,
            409: error_response("The suggestion was already decided the other way (`conflict`)."),
        },
    )
    def post(self, request, suggestion_id: int):
        """Accept or dismiss; accepting with send_as queues it to Intercom as a reply or a note.

        The same verdict again answers 200 and changes nothing; a different one on a decided
        suggestion is 409.
        """
        membership = membership_required(request)
        # Another workspace's suggestion is unknown here whatever the body says: 404 before any 400.
        if not selectors.suggestion_exists(workspace_id=membership.workspace_id, suggestion_id=suggestion_id):
            raise Http404
        data = self.SuggestionFeedbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            suggestion, _changed = services.suggestion_feedback(
                membership=membership,
                suggestion_id=suggestion_id,
                action=data.validated_data["action"],
                send_as=data.validated_data.get("send_as"),
            )
        except Suggestion.DoesNotExist as exc:
            raise Http404 from exc
        except services.SuggestionAlreadyDecided as exc:
            raise Conflict(str(exc)) from exc
        if suggestion.reply is not None:
            suggestion.reply.refresh_from_db()  # a task run inline (local) may have sent it already
        return Response(SuggestionOutputSerializer(suggestion).data)


class KnowledgeGapOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    message_id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    text = serializers.CharField()
    best_score = serializers.FloatField()
    created_at = serializers.DateTimeField()


class KnowledgeGapListApi(APIView):
    permission_classes = [IsMember]

    @extend_schema(responses=KnowledgeGapOutputSerializer(many=True))
    def get(self, request):
        """Customer messages that found no good suggestion, newest first: what the knowledge base lacks."""
        gaps = selectors.knowledge_gap_list(workspace_id=workspace_of(request).id)
        return paginated(request, self, gaps, KnowledgeGapOutputSerializer)


class EntryAcceptanceOutputSerializer(serializers.Serializer):
    entry_id = serializers.IntegerField()
    title = serializers.CharField()
    suggested = serializers.IntegerField()
    accepted = serializers.IntegerField()
    dismissed = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True)


class AcceptanceTotalsOutputSerializer(serializers.Serializer):
    suggested = serializers.IntegerField()
    accepted = serializers.IntegerField()
    dismissed = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True)


class SuggestionStatsPagination(Pagination):
    """A page of entries' acceptance, and beside it the workspace's totals (the schema says so too)."""

    def get_paginated_response_schema(self, schema: dict) -> dict:
        page = super().get_paginated_response_schema(schema)
        count = {"type": "integer"}
        totals = {
            "type": "object",
            "description": "The workspace's totals (AcceptanceTotalsOutputSerializer).",
            "required": ["suggested", "accepted", "dismissed", "acceptance_rate"],
            "properties": {
                "suggested": count,
                "accepted": count,
                "dismissed": count,
                "acceptance_rate": {"type": "number", "format": "double", "nullable": True},
            },
        }
        return {
            **page,
            "required": [*page.get("required", []), "totals"],
            "properties": {**page["properties"], "totals": totals},
        }


class SuggestionStatsApi(APIView):
    permission_classes = [IsMember]
    pagination_class = SuggestionStatsPagination

    @extend_schema(responses=EntryAcceptanceOutputSerializer(many=True))
    def get(self, request):
        """Acceptance by entry (accepted / suggested), most suggested first, and the workspace's totals."""
        totals, by_entry = selectors.suggestion_stats(workspace_id=workspace_of(request).id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(by_entry, request, view=self)
        rows = [{**row, "acceptance_rate": selectors.acceptance_rate(**_rate_args(row))} for row in page]
        response = paginator.get_paginated_response(EntryAcceptanceOutputSerializer(rows, many=True).data)
        totals = {**totals, "acceptance_rate": selectors.acceptance_rate(**_rate_args(totals))}
        response.data["totals"] = AcceptanceTotalsOutputSerializer(totals).data
        return response


def _rate_args(row: dict) -> dict:
    return {"accepted": row["accepted"], "suggested": row["suggested"]}


class DailyDigestOutputSerializer(serializers.Serializer):
    day = serializers.DateField()
    messages_received = serializers.IntegerField()
    suggestions_shown = serializers.IntegerField()
    suggestions_accepted = serializers.IntegerField()
    suggestions_dismissed = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True)
    gaps = serializers.JSONField()
    emailed_at = serializers.DateTimeField(allow_null=True)


class DailyDigestListApi(APIView):
    """The workspace's daily digests, newest day first (built every morning by the daily_digest job)."""

    @extend_schema(responses=DailyDigestOutputSerializer(many=True))
    def get(self, request):
        digests = selectors.digest_list(workspace_id=workspace_of(request).id)
        return paginated(request, self, digests, DailyDigestOutputSerializer)
