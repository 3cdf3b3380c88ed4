"""Django's user admin, with every change of a portal role or privilege audited.

Imported by portal/admin.py. Group memberships are saved by the form after
``save_model``; ``save_related`` compares them before and after and hands the
difference to ``portal.accounts.roles``, in the admin's own transaction.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.decorators import method_decorator

from portal import audit
from portal.accounts import roles
from portal.accounts.stepup import step_up
from portal.admin_mixins import AuditorsReadOnlyAdminMixin
from portal.core.access import AUDITORS
from portal.core.errors import NotAllowed
from portal.core.web import signed_in_user

User = get_user_model()


class PortalUserChangeForm(UserChangeForm):
    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        groups = data.get("groups")
        auditor = groups is not None and any(g.name == AUDITORS for g in groups)
        try:
            roles.check_auditor_not_superuser(
                self.instance, is_superuser=bool(data.get("is_superuser")), auditor=auditor
            )
        except NotAllowed as exc:
            raise ValidationError(str(exc)) from None
        return data


class PortalUserAdmin(AuditorsReadOnlyAdminMixin, UserAdmin):
    form = PortalUserChangeForm

    @method_decorator(step_up)  # changing roles and privileges needs a fresh sign-in
    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return super().changeform_view(request, *args, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        stored = User.objects.filter(pk=obj.pk).first() if change else None
        form._portal_flags_before = roles.flags_of(stored) if stored else {}
        super().save_model(request, obj, form, change)
        if stored is not None and stored.email != obj.email:
            # The email is the Okta login until one is bound: who changed it matters.
            audit.record(
                "user.email_changed",
                ("user", obj.pk),
                actor=signed_in_user(request),
                payload={"user": obj.get_username(), "before": stored.email, "after": obj.email},
            )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        user = form.instance
        groups_before = set(user.groups.values_list("name", flat=True))
        super().save_related(request, form, formsets, change)
        groups_after = set(user.groups.values_list("name", flat=True))
        roles.record_flag_changes(
            user,
            getattr(form, "_portal_flags_before", {}),
            actor=signed_in_user(request),
            via="admin",
            created=not change,
        )
        roles.record_group_changes(
            user, groups_before, groups_after, actor=signed_in_user(request), via="admin"
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._record_deleted(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for user in queryset:
                self._record_deleted(request, user)
            super().delete_queryset(request, queryset)

    def _record_deleted(self, request: HttpRequest, user: Any) -> None:
        audit.record(
            "user.deleted",
            ("user", user.pk),
            actor=signed_in_user(request),
            payload={
                "user": user.get_username(),
                "groups": sorted(user.groups.values_list("name", flat=True)),
                "via": "admin",
            },
        )


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, PortalUserAdmin)
