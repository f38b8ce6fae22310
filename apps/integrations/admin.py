from collections import Counter

from django.contrib import admin, messages

from apps.integrations.models import (
    CanvasAction,
    DeliveryStatus,
    IntercomAdmin,
    IntercomConnection,
    OutboundReply,
    WebhookDelivery,
)


class ConnectionStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("unverified", "Active, not verified yet"), ("disabled", "Disabled")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(disabled_at__isnull=True)
        if self.value() == "unverified":
            return queryset.filter(disabled_at__isnull=True, verified_at__isnull=True)
        if self.value() == "disabled":
            return queryset.filter(disabled_at__isnull=False)
        return queryset


@admin.register(IntercomConnection)
class IntercomConnectionAdmin(admin.ModelAdmin):
    """Secrets are neither shown nor editable here: connect through the API (or OAuth)."""

    list_display = (
        "workspace",
        "app_id",
        "region",
        "method",
        "status",
        "verified_at",
        "disabled_code",
        "connected_at",
        "admins_synced_at",
    )
    list_filter = (ConnectionStatusFilter, "disabled_code", "region", "method")
    search_fields = ("app_id", "workspace__name")
    fields = (
        "workspace",
        "app_id",
        "region",
        "method",
        "api_version",
        "token_admin_id",
        "has_access_token",
        "has_client_secret",
        "connected_by",
        "connected_at",
        "updated_at",
        "admins_synced_at",
        "status",
        "verified_at",
        "took_over_at",
        "disabled_at",
        "disabled_code",
        "disabled_reason",
    )
    readonly_fields = fields
    actions = ["verify_with_intercom"]

    def has_add_permission(self, request):
        return False

    @admin.display(boolean=True)
    def has_access_token(self, obj):
        return bool(obj.access_token)

    @admin.display(boolean=True)
    def has_client_secret(self, obj):
        return bool(obj.client_secret)

    @admin.display(description="status")
    def status(self, obj):
        if not obj.is_active:
            return "disabled"
        return "active" if obj.verified_at else "active, not verified yet"

    @admin.action(description="Ask Intercom whether each token still proves its app (disables those that do not)")
    def verify_with_intercom(self, request, queryset):
        from apps.integrations.services import connection_verify

        outcomes = Counter(connection_verify(connection_id=pk) for pk in queryset.values_list("pk", flat=True))
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
        self.message_user(request, f"Verified with Intercom: {summary or 'nothing selected'}.", messages.INFO)


@admin.register(IntercomAdmin)
class IntercomAdminAdmin(admin.ModelAdmin):
    list_display = ("intercom_id", "name", "email", "workspace", "membership", "synced_at")
    search_fields = ("intercom_id", "name", "email")
    raw_id_fields = ("workspace", "membership")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "notification_id", "topic", "workspace", "status", "received_at", "processed_at")
    list_filter = ("status", "topic")
    search_fields = ("notification_id",)
    raw_id_fields = ("workspace",)
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["process_again"]

    @admin.action(description="Process the selected deliveries again")
    def process_again(self, request, queryset):
        from apps.integrations.tasks import process_delivery

        count = 0
        for delivery in queryset:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.RECEIVED)
            process_delivery.dispatch(args=[delivery.pk], workspace_id=delivery.workspace_id)
            count += 1
        self.message_user(request, f"{count} deliver(y/ies) sent to processing again.", messages.INFO)


@admin.register(OutboundReply)
class OutboundReplyAdmin(admin.ModelAdmin):
    list_display = ("id", "workspace", "conversation", "kind", "status", "admin_id", "created_at", "sent_at")
    list_filter = ("status", "kind")
    search_fields = ("intercom_part_id", "body")
    raw_id_fields = ("workspace", "conversation", "requested_by")
    readonly_fields = [f.name for f in OutboundReply._meta.fields]


@admin.register(CanvasAction)
class CanvasActionAdmin(admin.ModelAdmin):
    list_display = ("id", "workspace", "intercom_conversation_id", "admin_id", "action", "suggestion_id", "created_at")
    list_filter = ("action",)
    raw_id_fields = ("workspace", "conversation", "reply")
    readonly_fields = [f.name for f in CanvasAction._meta.fields]
