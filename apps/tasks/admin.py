"""The ledger in the Django admin: staff operators find dead tasks across workspaces and retry them."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from apps.tasks.models import TaskRun
from apps.tasks.services import task_retry


@admin.register(TaskRun)
class TaskRunAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "status", "attempts", "workspace", "created_at", "next_attempt_at")
    list_filter = ("status", "name")
    list_select_related = ("workspace",)
    ordering = ("-created_at",)
    search_fields = ("id", "name", "correlation_id", "last_error")
    raw_id_fields = ("workspace", "parent")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in TaskRun._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request) -> bool:
        # Rows come from dispatch only: a hand-made row would name a task with arguments nobody checked.
        return False

    @admin.action(description="Retry the selected dead, rejected or failed tasks", permissions=["change"])
    def retry(self, request, queryset):
        done = 0
        for run in queryset:
            try:
                task_retry(run=run)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"{run.id}: {exc.messages[0]}", messages.WARNING)
        self.message_user(request, f"{done} task(s) sent again.")
