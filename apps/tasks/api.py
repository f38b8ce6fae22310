"""Operator API over the workspace's task ledger: list (e.g. the dead ones), look at one, retry by hand."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsManager, workspace_of
from apps.tasks import selectors, services
from apps.tasks.models import TaskRun, TaskStatus
from project.api import Pagination, error_response, paginated

# What an operator sees of every task in a list; the detail adds what ran and what came of it.
_SUMMARY_FIELDS = [
    "id",
    "name",
    "status",
    "attempts",
    "max_attempts",
    "last_error",
    "correlation_id",
    "created_at",
    "updated_at",
    "finished_at",
    "next_attempt_at",
]
_DETAIL_FIELDS = [
    *_SUMMARY_FIELDS,
    "args",
    "kwargs",
    "result",
    "parent",
    "callback",
    "error_callback",
    "started_at",
    "claimed_until",
    "sent_at",
    "sends",
]


def _get_run(request, task_id) -> TaskRun:
    """The caller's workspace's task, or 404 (another workspace's task does not exist for them)."""
    try:
        return selectors.task_run_get(workspace=workspace_of(request), task_id=task_id)
    except TaskRun.DoesNotExist as exc:
        raise Http404 from exc


class TaskListApi(APIView):
    permission_classes = [IsManager]
    pagination_class = Pagination  # also tells the schema that the list is paginated

    class TaskListFilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=TaskStatus.choices, required=False)

    class TaskListOutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = TaskRun
            fields = _SUMMARY_FIELDS

    @extend_schema(
        parameters=[OpenApiParameter("status", enum=TaskStatus.values)],
        responses=TaskListOutputSerializer(many=True),
    )
    def get(self, request):
        filters = self.TaskListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        runs = selectors.task_run_list(workspace=workspace_of(request), **filters.validated_data)
        return paginated(request, self, runs, self.TaskListOutputSerializer)


class TaskDetailApi(APIView):
    permission_classes = [IsManager]

    class TaskDetailOutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = TaskRun
            fields = _DETAIL_FIELDS

    @extend_schema(responses=TaskDetailOutputSerializer)
    def get(self, request, task_id):
        return Response(self.TaskDetailOutputSerializer(_get_run(request, task_id)).data)


class TaskRetryApi(APIView):
    permission_classes = [IsManager]

    class TaskRetryOutputSerializer(serializers.ModelSerializer):
        class Meta:
            model = TaskRun
            fields = _DETAIL_FIELDS

    @extend_schema(
        request=None,
        responses={
            202: TaskRetryOutputSerializer,
            400: error_response("Only a dead or failed task can be retried (`invalid`, `error.fields.status`)."),
        },
    )
    def post(self, request, task_id):
        try:
            run = services.task_retry(run=_get_run(request, task_id))
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return Response(self.TaskRetryOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)
