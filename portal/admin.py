"""The audit log and API tokens in the admin: for reading only.

Audit events are append-only evidence (hash-chained); tokens are created and
revoked by their owners on the Tokens page, and only their hash is stored.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from portal import admin_audit, user_admin  # noqa: F401  (register the audited admins)
from portal.admin_audit import AuditedAdminMixin
from portal.models import ApiToken, AuditEvent, NotificationLog, SlackIdentity


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "created_at", "actor_label", "action", "target_type", "target_id")
    list_filter = ("action", "target_type")
    search_fields = ("action", "actor_label", "target_id")
    date_hierarchy = "created_at"
    fields = (
        "seq",
        "created_at",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "client_ip",
        "pretty_payload",
        "prev_hash",
        "hash",
    )
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="payload")
    def pretty_payload(self, obj: AuditEvent) -> str:
        text = json.dumps(obj.payload, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html("<pre>{}</pre>", text)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Which tokens exist and whether they are used; never the token (nor its hash)."""

    list_display = ("name", "user", "hint", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    list_select_related = ("user",)
    search_fields = ("name", "user__username", "hint")
    fields = ("name", "user", "hint", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields


@admin.register(NotificationLog)
class NotificationLogAdmin(ReadOnlyAdmin):
    """Every notification and where it stands: a failed one also has an audit event."""

    list_display = ("created_at", "channel", "event", "subject", "state", "attempts", "sent_at")
    list_filter = ("state", "channel", "event")
    search_fields = ("subject", "event")
    fields = (
        "created_at",
        "channel",
        "event",
        "subject",
        "recipients",
        "link",
        "state",
        "attempts",
        "last_error",
        "sent_at",
    )
    readonly_fields = fields


@admin.register(SlackIdentity)
class SlackIdentityAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Which portal user a Slack user is, for the Approve / Deny buttons in Slack."""

    list_display = ("slack_user_id", "team_id", "user", "created_at")
    search_fields = ("slack_user_id", "user__username", "user__email")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
