"""Agent API over the mirrored conversations: list, filter and search them; read one with its messages."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import membership_of, workspace_of
from apps.conversations import selectors
from apps.conversations.models import Conversation, ConversationState
from apps.integrations.selectors import admin_ids_of_member
from project.api import Pagination, paginated


class CustomerOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="customer_id")
    name = serializers.CharField(source="customer_name")
    email = serializers.CharField(source="customer_email")


class ConversationOutputSerializer(serializers.ModelSerializer):
    customer = CustomerOutputSerializer(source="*")
    assignee_name = serializers.CharField(
        allow_null=True, default=None, help_text="The assigned teammate's name, once teammates are synced."
    )
    last_customer_message_at = serializers.DateTimeField(
        allow_null=True, default=None, help_text="When the customer last wrote (Intercom's time)."
    )
    last_agent_reply_at = serializers.DateTimeField(
        allow_null=True, default=None, help_text="When a teammate last replied (Intercom's time)."
    )
    awaiting_reply = serializers.SerializerMethodField(
        help_text="The customer wrote after the last teammate reply (or nobody replied yet)."
    )

    class Meta:
        model = Conversation
        fields = [
            "id",
            "intercom_id",
            "state",
            "subject",
            "assignee_id",
            "team_assignee_id",
            "customer",
            "tags",
            "intercom_url",
            "snoozed_until",
            "last_message_at",
            "last_message_text",
            "assignee_name",
            "last_customer_message_at",
            "last_agent_reply_at",
            "awaiting_reply",
            "created_at_intercom",
            "updated_at_intercom",
            "created_at",
            "updated_at",
        ]

    def get_awaiting_reply(self, conversation) -> bool:
        customer = getattr(conversation, "last_customer_message_at", None)
        agent = getattr(conversation, "last_agent_reply_at", None)
        return customer is not None and (agent is None or customer > agent)


class MessageOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    intercom_part_id = serializers.CharField()
    kind = serializers.CharField()
    author_type = serializers.CharField()
    author_id = serializers.CharField()
    author_name = serializers.CharField()
    is_from_customer = serializers.BooleanField()
    body_html = serializers.CharField()
    body_text = serializers.CharField()
    created_at_intercom = serializers.DateTimeField(allow_null=True)  # nullable in the model: the schema says so
    created_at = serializers.DateTimeField()


class MessagePageOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = MessageOutputSerializer(many=True)


class ConversationDetailOutputSerializer(ConversationOutputSerializer):
    messages = MessagePageOutputSerializer(read_only=True)

    class Meta(ConversationOutputSerializer.Meta):
        fields = [*ConversationOutputSerializer.Meta.fields, "messages"]


class ConversationListApi(APIView):
    class ConversationListFilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=ConversationState.choices, required=False)
        assignee = serializers.RegexField(
            r"^(me|none|[A-Za-z0-9_-]{1,64})$",
            required=False,
            help_text="An Intercom admin id, 'me' (your mapped Intercom teammate) or 'none' (unassigned).",
        )
        updated_since = serializers.DateTimeField(required=False, help_text="ISO 8601 date-time.")
        q = serializers.CharField(
            required=False, allow_blank=True, max_length=200, help_text="Words in the messages; blank: no search."
        )

    # The filter serializer is the parameters' schema: their types, patterns and lengths are what is validated.
    @extend_schema(parameters=[ConversationListFilterSerializer], responses=ConversationOutputSerializer(many=True))
    def get(self, request):
        filters = self.ConversationListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = dict(filters.validated_data)
        assignee = data.pop("assignee", None)
        assignee_ids = None
        if assignee == "me":
            assignee_ids = admin_ids_of_member(membership=membership_of(request))
        elif assignee == "none":
            assignee_ids = [""]
        elif assignee:
            assignee_ids = [assignee]
        conversations = selectors.conversation_list(workspace=workspace_of(request), assignee_ids=assignee_ids, **data)
        return paginated(request, self, conversations, ConversationOutputSerializer)


class ConversationDetailApi(APIView):
    @extend_schema(responses=ConversationDetailOutputSerializer)
    def get(self, request, conversation_id: int):
        """The conversation and a page of its messages, oldest first (?page=, ?page_size=)."""
        try:
            conversation = selectors.conversation_get(
                workspace=workspace_of(request), conversation_id=conversation_id, inbox_fields=True
            )
        except Conversation.DoesNotExist as exc:
            raise Http404 from exc
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.message_list(conversation=conversation), request, view=self)
        messages = paginator.get_paginated_response(MessageOutputSerializer(page, many=True).data).data
        return Response({**ConversationOutputSerializer(conversation).data, "messages": messages})
