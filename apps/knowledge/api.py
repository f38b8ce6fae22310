"""Knowledge-base API: entries (members read, owners/admins write), import, and the workspace's ranking settings."""

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsManager, IsManagerOrReadOnly, membership_required, workspace_of
from apps.knowledge import selectors, services
from apps.knowledge.importing import (
    MAX_BODY_CHARS,
    EntryImportRowSerializer,
    ImportFileError,
    TagsField,
    format_guess,
    rows_from_file,
    rows_from_json,
    rows_upto,
)
from apps.knowledge.models import Entry, EntryKind, EntryProposal, KnowledgeSettings, ProposalStatus
from apps.knowledge.sync import ARTICLE_SOURCE
from project.api import created, error_body, error_response, paginated
from project.parsers import JSONParser


class EntryOutput(serializers.ModelSerializer):
    body = serializers.CharField(source="body_html")

    class Meta:
        model = Entry
        fields = [
            "id",
            "title",
            "body",
            "body_text",
            "kind",
            "tags",
            "enabled",
            "source",
            "external_id",
            "article_id",
            "source_locale",
            "source_url",
            "source_updated_at",
            "retired_at",
            "created_at",
            "updated_at",
        ]

    article_id = serializers.SerializerMethodField(help_text="The Intercom article an entry was synced from.")

    def get_article_id(self, entry: Entry) -> str | None:
        return entry.external_id if entry.source == ARTICLE_SOURCE else None


def _entry(request, entry_id: int) -> Entry:
    try:
        return selectors.entry_get(workspace_id=workspace_of(request).id, entry_id=entry_id)
    except Entry.DoesNotExist as exc:
        raise Http404 from exc


def _as_drf(exc: DjangoValidationError) -> serializers.ValidationError:
    return serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)


class EntryListApi(APIView):
    """GET: any member lists (and searches) the knowledge base. POST: owners and admins add an entry."""

    permission_classes = [IsManagerOrReadOnly]

    class EntryListFilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
        kind = serializers.ChoiceField(choices=EntryKind.choices, required=False)
        enabled = serializers.BooleanField(required=False, allow_null=True, default=None)
        tag = serializers.CharField(required=False, allow_blank=True, max_length=50, help_text="Blank: any tag.")

    class EntryCreateInputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=300)
        body = serializers.CharField(max_length=MAX_BODY_CHARS, help_text="HTML or plain text.")
        kind = serializers.ChoiceField(choices=EntryKind.choices, default=EntryKind.SAVED_REPLY)
        tags = TagsField(required=False, default=list)
        enabled = serializers.BooleanField(default=True)
        source = serializers.CharField(max_length=40, required=False, default="manual")  # type: ignore[assignment]
        external_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    @extend_schema(parameters=[EntryListFilterSerializer], responses=EntryOutput(many=True))
    def get(self, request):
        filters = self.EntryListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        entries = selectors.entry_list(workspace_id=workspace_of(request).id, **filters.validated_data)
        return paginated(request, self, entries, EntryOutput)

    @extend_schema(request=EntryCreateInputSerializer, responses={201: EntryOutput})
    def post(self, request):
        data = self.EntryCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            entry = services.entry_create(workspace_id=workspace_of(request).id, **data.validated_data)
        except DjangoValidationError as exc:
            raise _as_drf(exc) from exc
        return created(EntryOutput(entry).data)


class EntryDetailApi(APIView):
    permission_classes = [IsManagerOrReadOnly]

    class EntryUpdateInputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=300, required=False)
        body = serializers.CharField(max_length=MAX_BODY_CHARS, required=False)
        kind = serializers.ChoiceField(choices=EntryKind.choices, required=False)
        tags = TagsField(required=False)
        enabled = serializers.BooleanField(required=False)
        external_id = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(responses=EntryOutput)
    def get(self, request, entry_id: int):
        return Response(EntryOutput(_entry(request, entry_id)).data)

    @extend_schema(request=EntryUpdateInputSerializer, responses=EntryOutput)
    def patch(self, request, entry_id: int):
        entry = _entry(request, entry_id)
        data = self.EntryUpdateInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            entry = services.entry_update(entry=entry, **data.validated_data)
        except DjangoValidationError as exc:
            raise _as_drf(exc) from exc
        except Entry.DoesNotExist as exc:  # deleted by a concurrent request since it was found
            raise Http404 from exc
        return Response(EntryOutput(entry).data)

    @extend_schema(responses={204: None})
    def delete(self, request, entry_id: int):
        try:
            services.entry_delete(entry=_entry(request, entry_id))
        except Entry.DoesNotExist as exc:  # the losing one of two concurrent deletes
            raise Http404 from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class EntryImportApi(APIView):
    """Owners and admins import entries from a CSV or JSON file (multipart `file`) or a JSON body.

    Each row is reported: created, updated (same source and external_id) or error with its field errors.
    Valid rows are kept even when others fail. An unreadable file, too many rows, or a file with no valid
    row at all is a 400 and imports nothing.
    """

    permission_classes = [IsManager]
    parser_classes = [JSONParser, MultiPartParser]

    class EntryImportFormInputSerializer(serializers.Serializer):
        file = serializers.FileField()
        format = serializers.ChoiceField(choices=["csv", "json"], required=False)
        source = serializers.CharField(max_length=40, required=False)  # type: ignore[assignment]

    class EntryImportRowResultSerializer(serializers.Serializer):
        row = serializers.IntegerField()
        status = serializers.ChoiceField(choices=["created", "updated", "error"])
        entry_id = serializers.IntegerField(allow_null=True)
        errors = serializers.DictField(allow_null=True)  # type: ignore[assignment]  # a declared field, see importing.py

    class EntryImportOutputSerializer(serializers.Serializer):
        created = serializers.IntegerField()
        updated = serializers.IntegerField()
        failed = serializers.IntegerField()
        rows = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        request={
            "multipart/form-data": EntryImportFormInputSerializer,
            "application/json": EntryImportRowSerializer(many=True),
        },
        responses=EntryImportOutputSerializer,
    )
    def post(self, request):
        source = "import"
        limit = settings.CUE_KNOWLEDGE_IMPORT_MAX_ROWS
        try:
            if request.content_type.startswith("multipart/"):
                form = self.EntryImportFormInputSerializer(data=request.data)
                form.is_valid(raise_exception=True)
                upload = form.validated_data["file"]
                fmt = format_guess(upload.name, form.validated_data.get("format"))
                source = form.validated_data.get("source") or fmt
                rows = rows_upto(rows_from_file(upload, fmt), limit=limit)
            else:
                rows = rows_upto(rows_from_json(request.data), limit=limit)
                source = "json"
        except ImportFileError as exc:
            raise serializers.ValidationError({"file": [str(exc)]}) from exc
        if not rows:
            raise serializers.ValidationError({"file": ["The file has no rows."]})
        report = services.entries_import(workspace_id=workspace_of(request).id, rows=rows, source=source)
        body = {
            "created": report.created,
            "updated": report.updated,
            "failed": report.failed,
            "rows": [vars(result) for result in report.rows],
        }
        if report.failed and not (report.created or report.updated):
            # Nothing was valid, so nothing was stored: the caller gets an error with every row's reasons.
            return Response(
                error_body("invalid", "No row of the file could be imported.", {"rows": body["rows"]}),
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(self.EntryImportOutputSerializer(body).data)


class KnowledgeSettingsApi(APIView):
    permission_classes = [IsManagerOrReadOnly]

    class KnowledgeSettingsOutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = KnowledgeSettings
            fields = ["suggestion_threshold", "top_k", "article_locales"]

    class KnowledgeSettingsInputSerializer(serializers.Serializer):
        suggestion_threshold = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
        top_k = serializers.IntegerField(min_value=1, max_value=10, required=False)
        article_locales = serializers.ListField(
            child=serializers.RegexField(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$", max_length=20),
            max_length=50,
            required=False,
            help_text="Help Center locales to sync (e.g. en, fr, pt-BR); empty: each article's default locale.",
        )

    @extend_schema(responses=KnowledgeSettingsOutputSerializer)
    def get(self, request):
        found = selectors.knowledge_settings_get(workspace_id=workspace_of(request).id)
        return Response(self.KnowledgeSettingsOutputSerializer(found).data)

    @extend_schema(request=KnowledgeSettingsInputSerializer, responses=KnowledgeSettingsOutputSerializer)
    def patch(self, request):
        data = self.KnowledgeSettingsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            updated = services.knowledge_settings_update(workspace_id=workspace_of(request).id, **data.validated_data)
        except DjangoValidationError as exc:
            raise _as_drf(exc) from exc
        return Response(self.KnowledgeSettingsOutputSerializer(updated).data)


class EntryRankOutputSerializer(serializers.Serializer):
    entry_id = serializers.IntegerField()
    rank = serializers.IntegerField()
    score = serializers.FloatField()
    title = serializers.CharField()
    body = serializers.CharField()


class EntryRankResultsOutputSerializer(serializers.Serializer):
    """Not a page: the best entries, at most `limit`, best first, under `results` (as clients read it)."""

    results = EntryRankOutputSerializer(many=True)


class EntryRankApi(APIView):
    """Any member tries a customer message against the knowledge base: what Cue would suggest, with scores."""

    class EntryRankInputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=20_000, trim_whitespace=False)
        limit = serializers.IntegerField(min_value=1, max_value=50, required=False)
        threshold = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)

    @extend_schema(request=EntryRankInputSerializer, responses=EntryRankResultsOutputSerializer)
    def post(self, request):
        data = self.EntryRankInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ranked = selectors.entries_rank(workspace_id=workspace_of(request).id, **data.validated_data)
        return Response(EntryRankResultsOutputSerializer({"results": ranked}).data)


# ------------------------------------------------------------------------------
# Entries proposed from the team's recurring replies
# ------------------------------------------------------------------------------
class ProposalOutput(serializers.ModelSerializer):
    body = serializers.CharField(source="body_html")

    class Meta:
        model = EntryProposal
        fields = [
            "id",
            "title",
            "body",
            "body_text",
            "times_sent",
            "example_questions",
            "status",
            "entry",
            "decided_at",
            "created_at",
            "updated_at",
        ]


def _proposal(request, proposal_id: int) -> EntryProposal:
    try:
        return selectors.proposal_get(workspace_id=workspace_of(request).id, proposal_id=proposal_id)
    except EntryProposal.DoesNotExist as exc:
        raise Http404 from exc


def _decided(exc: services.ProposalDecided) -> Response:
    return Response(
        error_body("already_decided", str(exc), {"status": [exc.proposal.status]}), status=status.HTTP_409_CONFLICT
    )


class ProposalListApi(APIView):
    """Any member lists the entries proposed from the team's history (the most often sent first)."""

    permission_classes = [IsManagerOrReadOnly]

    class ProposalListFilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=ProposalStatus.choices, default=ProposalStatus.PROPOSED)

    @extend_schema(parameters=[ProposalListFilterSerializer], responses=ProposalOutput(many=True))
    def get(self, request):
        filters = self.ProposalListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        proposals = selectors.proposal_list(workspace_id=workspace_of(request).id, **filters.validated_data)
        return paginated(request, self, proposals, ProposalOutput)


class ProposalAcceptApi(APIView):
    """An owner or admin accepts a proposal: 201 with the new entry (its example questions already learnt)."""

    permission_classes = [IsManager]

    class ProposalAcceptInputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=300, required=False, help_text="Instead of the proposed title.")

    @extend_schema(
        request=ProposalAcceptInputSerializer,
        responses={201: EntryOutput, 409: error_response("The proposal was already decided (`already_decided`).")},
    )
    def post(self, request, proposal_id: int):
        data = self.ProposalAcceptInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = _proposal(request, proposal_id)
        try:
            entry = services.proposal_accept(
                proposal=proposal, decided_by_id=membership_required(request).id, title=data.validated_data.get("title")
            )
        except services.ProposalDecided as exc:
            return _decided(exc)
        except DjangoValidationError as exc:
            raise _as_drf(exc) from exc
        return created(EntryOutput(entry).data)


class ProposalDismissApi(APIView):
    """An owner or admin dismisses a proposal (dismissing twice is the same)."""

    permission_classes = [IsManager]

    @extend_schema(
        request=None,
        responses={200: ProposalOutput, 409: error_response("The proposal was accepted (`already_decided`).")},
    )
    def post(self, request, proposal_id: int):
        try:
            proposal = services.proposal_dismiss(
                proposal=_proposal(request, proposal_id), decided_by_id=membership_required(request).id
            )
        except services.ProposalDecided as exc:
            return _decided(exc)
        return Response(ProposalOutput(proposal).data)
