from django.contrib import admin

from apps.conversations.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("intercom_part_id", "kind", "author_type", "author_id", "body_text", "created_at_intercom")
    readonly_fields = fields
    ordering = ("created_at_intercom", "id")
    can_delete = False
    show_change_link = True


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "intercom_id", "workspace", "state", "assignee_id", "customer_email", "updated_at_intercom")
    list_filter = ("state",)
    search_fields = ("intercom_id", "customer_email", "customer_name", "subject")
    raw_id_fields = ("workspace",)
    date_hierarchy = "updated_at_intercom"
    readonly_fields = ("created_at", "updated_at", "last_event_at", "updated_at_intercom", "created_at_intercom")
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "intercom_part_id", "workspace", "conversation", "kind", "author_type", "created_at_intercom")
    list_filter = ("kind", "author_type")
    search_fields = ("intercom_part_id", "body_text", "conversation__intercom_id")
    raw_id_fields = ("workspace", "conversation")
