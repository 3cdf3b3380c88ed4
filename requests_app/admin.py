"""Access requests in the admin: for reading only.

Every state change goes through requests_app.services (guards, audit, Okta side
effects); the admin can neither add, change nor delete a request.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from requests_app.models import AccessRequest, Approval, BreakGlassReview, ReviewVerdict


class ReadOnlyAdminMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ApprovalInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Approval
    fields = ("approver", "comment", "created_at")
    readonly_fields = fields
    extra = 0


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "requester",
        "role",
        "status",
        "duration_minutes",
        "ticket",
        "created_at",
        "expires_at",
    )
    list_filter = (
        "status",
        "break_glass",
        "role__level",
        "role__workload_account",
        "failover__is_drill",
    )
    list_select_related = ("requester", "role__workload_account", "role__level")
    search_fields = ("requester__username", "requester__email", "ticket", "okta_login")
    date_hierarchy = "created_at"
    inlines = (ApprovalInline,)


class ReviewVerdictInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ReviewVerdict
    fields = ("reviewer", "verdict", "comment", "created_at")
    readonly_fields = fields
    extra = 0


@admin.register(BreakGlassReview)
class BreakGlassReviewAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Reviews change only through requests_app.break_glass (guards, audit, alerts)."""

    list_display = ("request", "status", "opened_at", "due_at", "escalations", "closed_at")
    list_filter = ("status",)
    list_select_related = ("request__requester", "request__role__workload_account")
    inlines = (ReviewVerdictInline,)
