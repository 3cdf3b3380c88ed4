"""Admin permissions that follow the portal's roles."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from portal.core import access


class AuditorsReadOnlyAdminMixin(admin.ModelAdmin):
    """Auditors change nothing, even when they are staff too (they may still look).

    Listed first in an admin's bases; a ModelAdmin itself so the checks can defer to
    the admin's own (``super()``), which the type checker then knows.
    """

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return access.can_write(request.user) and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.can_write(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.can_write(request.user) and super().has_delete_permission(request, obj)
