"""The admin's other doors, closed or audited.

- The admin's login page sends people to the portal's sign-in (allauth: MFA, lockout).
- Groups, email addresses, Okta logins and Slack identities are read-only to auditors,
  and every change made to them in the admin is an audit event, in the admin's own
  transaction. (Users and their roles: portal/user_admin.py; the plan: federation/admin.py.)

Imported by portal/admin.py.
"""

from __future__ import annotations

from typing import Any

from allauth.account.admin import EmailAddressAdmin
from allauth.account.decorators import secure_admin_login
from allauth.account.models import EmailAddress
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from portal import audit
from portal.accounts import identity
from portal.admin_mixins import AuditorsReadOnlyAdminMixin
from portal.core.web import signed_in_user
from portal.models import PortalAccount

# One sign-in for the whole site: no separate password door at /admin/login/.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]  # Django's documented way to swap the admin's login view


def _label(obj: Any) -> str:
    return f"{obj._meta.app_label}.{obj._meta.model_name}"


class AuditedAdminMixin(AuditorsReadOnlyAdminMixin):
    """Every add, change and delete through this admin page is an audit event."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        fields = {name: str(form.cleaned_data.get(name))[:500] for name in form.changed_data}
        audit.record(
            "admin.changed" if change else "admin.added",
            (_label(obj), obj.pk),
            actor=signed_in_user(request),
            payload={"model": _label(obj), "object": str(obj), "fields": fields, "via": "admin"},
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._record_deleted(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for obj in queryset:
                self._record_deleted(request, obj)
            super().delete_queryset(request, queryset)

    def _record_deleted(self, request: HttpRequest, obj: Any) -> None:
        audit.record(
            "admin.deleted",
            (_label(obj), obj.pk),
            actor=signed_in_user(request),
            payload={"model": _label(obj), "object": str(obj), "via": "admin"},
        )


class AuditedGroupAdmin(AuditedAdminMixin, GroupAdmin):
    pass


class AuditedEmailAddressAdmin(AuditedAdminMixin, EmailAddressAdmin):
    pass


@admin.register(PortalAccount)
class PortalAccountAdmin(AuditorsReadOnlyAdminMixin):
    """The Okta login that receives a person's access: set here or by the Okta sign-in."""

    list_display = ("user", "okta_login", "okta_user_id", "sessions_valid_after")
    search_fields = ("user__username", "okta_login")
    raw_id_fields = ("user",)
    readonly_fields = ("sessions_valid_after",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        login, okta_id = obj.okta_login, obj.okta_user_id
        if not change:
            obj.okta_login = obj.okta_user_id = ""
            obj.save()
        identity.bind_okta_login(
            obj.user, login, okta_user_id=okta_id, actor=signed_in_user(request), via="admin"
        )
        obj.refresh_from_db()


for model, model_admin in ((Group, AuditedGroupAdmin), (EmailAddress, AuditedEmailAddressAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
