from django.urls import path

from apps.tasks import api

urlpatterns = [
    path("tasks", api.TaskListApi.as_view(), name="task-list"),
    path("tasks/<uuid:task_id>", api.TaskDetailApi.as_view(), name="task-detail"),
    path("tasks/<uuid:task_id>/retry", api.TaskRetryApi.as_view(), name="task-retry"),
]
