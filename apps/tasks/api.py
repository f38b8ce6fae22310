"""Operator API over the workspace's task ledger: list (e.g. the dead ones) and retry by hand."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsManager, workspace_of
from apps.tasks import selectors, services
from apps.tasks.models import TaskRun, TaskStatus
from project.api import Pagination


class TaskRunOutput(serializers.ModelSerializer):
    class Meta:
        model = TaskRun
        fields = [
            "id",
            "name",
            "status",
            "attempts",
            "max_attempts",
            "last_error",
            "args",
            "kwargs",
            "correlation_id",
            "parent",
            "created_at",
            "updated_at",
            "started_at",
            "finished_at",
            "next_attempt_at",
        ]


def _get_run(request, task_id) -> TaskRun:
    try:
        return selectors.task_run_get(workspace=workspace_of(request), task_id=task_id)
    except (TaskRun.DoesNotExist, DjangoValidationError) as exc:
        raise Http404 from exc


class TaskListApi(APIView):
    permission_classes = [IsManager]

    class TaskListFilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=TaskStatus.choices, required=False)

    @extend_schema(parameters=[OpenApiParameter("status", enum=TaskStatus.values)], responses=TaskRunOutput(many=True))
    def get(self, request):
        filters = self.TaskListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        runs = selectors.task_run_list(workspace=workspace_of(request), **filters.validated_data)
        paginator = Pagination()
        page = paginator.paginate_queryset(runs, request, view=self)
        return paginator.get_paginated_response(TaskRunOutput(page, many=True).data)


class TaskDetailApi(APIView):
    permission_classes = [IsManager]

    @extend_schema(responses=TaskRunOutput)
    def get(self, request, task_id):
        return Response(TaskRunOutput(_get_run(request, task_id)).data)


class TaskRetryApi(APIView):
    permission_classes = [IsManager]

    @extend_schema(request=None, responses=TaskRunOutput)
    def post(self, request, task_id):
        try:
            run = services.task_retry(run=_get_run(request, task_id))
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return Response(TaskRunOutput(run).data, status=202)
