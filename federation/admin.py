"""The admin for the access plan, and a read-only view of failovers.

Plan edits are validated by the models' validators (the admin's ModelForm runs
``full_clean``), refused while a failover is not closed, and audited as
``plan.changed``. Names that other systems know (account ids, level names, role
and group names) are fixed once created: they are derived, or changed through
``manage.py import_plan``. Failovers change only through federation.failover.services.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from federation.models import EmergencyAccount, EmergencyRole, Failover, Level, WorkloadAccount
from portal import audit
from portal.admin_mixins import AuditorsReadOnlyAdminMixin
from portal.core.web import signed_in_user

_FAILOVER_CACHE = "_portal_current_failover"


def current_failover(request: HttpRequest) -> Failover | None:
    """The failover that is not closed, looked up once per admin request."""
    if not hasattr(request, _FAILOVER_CACHE):
        setattr(request, _FAILOVER_CACHE, Failover.objects.current())
    failover: Failover | None = getattr(request, _FAILOVER_CACHE)
    return failover


def _plain(value: Any) -> Any:
    if isinstance(value, Model):
        return str(value)
    return value


class PlanModelAdmin(AuditorsReadOnlyAdminMixin, admin.ModelAdmin):
    """Editable only while no failover is open; every save and delete is audited."""

    # Fields fixed once the row exists (names other systems know).
    identity_fields: tuple[str, ...] = ()

    def _plan_frozen(self, request: HttpRequest) -> bool:
        return current_failover(request) is not None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not self._plan_frozen(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and not self._plan_frozen(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and not self._plan_frozen(request)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = self.identity_fields if obj is not None else ()
        return (*super().get_readonly_fields(request, obj), *fixed)

    def _warn_if_frozen(self, request: HttpRequest) -> None:
        failover = current_failover(request)
        if failover is not None:
            messages.warning(
                request,
                f"{failover} is not closed: the access plan is read-only until it is closed.",
            )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        self._warn_if_frozen(request)
        return super().changelist_view(request, extra_context)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "GET":
            self._warn_if_frozen(request)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _refuse_if_frozen(self) -> None:
        # Checked again under the row lock: a failover may have opened since the form loaded.
        audit.lock_chain()  # the lock order: the audit chain, then rows
        failover = Failover.objects.select_for_update().current()
        if failover is not None:
            raise PermissionDenied(f"{failover} is not closed: the access plan is read-only.")

    def save_model(
        self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool
    ) -> None:
        self._refuse_if_frozen()
        fields: dict[str, list[Any]] = {}
        if change:
            before = type(obj).objects.get(pk=obj.pk)
            for name in form.changed_data:
                fields[name] = [_plain(getattr(before, name)), _plain(getattr(obj, name))]
        super().save_model(request, obj, form, change)
        if change and not fields:
            return
        self._record(request, obj, "updated" if change else "created", fields)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._refuse_if_frozen()
        self._record(request, obj, "deleted", {})
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            self._refuse_if_frozen()
            for obj in queryset:
                self._record(request, obj, "deleted", {})
            super().delete_queryset(request, queryset)

    def _record(self, request: HttpRequest, obj: Any, action: str, fields: dict[str, Any]) -> None:
        payload: dict[str, Any] = {
            "via": "admin",
            "action": action,
            "model": obj._meta.model_name,
            "object": str(obj),
        }
        if fields:
            payload["fields"] = fields
        audit.record("plan.changed", obj, actor=signed_in_user(request), payload=payload)


class GroupListField(forms.JSONField):
    """An eligibility list or mapping: left empty, it is empty (anyone), not JSON null."""

    def __init__(self, *, empty: Any = list, **kwargs: Any) -> None:
        self.empty = empty
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if value in ("", None):
            return self.empty()
        return super().to_python(value)


class OktaGroupsForm(forms.ModelForm):
    okta_groups = GroupListField(
        empty=dict,
        required=False,
        help_text='Okta group -> portal group, e.g. {"okta-sre": "sre"}; {} = none.',
    )


class EligibilityForm(forms.ModelForm):
    requesters = GroupListField(
        required=False, help_text='Portal groups that may request, e.g. ["sre"]; [] = anyone.'
    )
    approvers = GroupListField(
        required=False, help_text='Portal groups that may decide, e.g. ["sre-leads"]; [] = all.'
    )


@admin.register(EmergencyAccount)
class EmergencyAccountAdmin(PlanModelAdmin):
    form = OktaGroupsForm
    list_display = (
        "account_id",
        "saml_provider",
        "saml_provider_arn",
        "workload_trust",
        "session_duration_seconds",
    )
    identity_fields = ("account_id",)


class RoleInline(admin.TabularInline):
    """The roles of an account or level, for reading: roles are added on their own page."""

    model = EmergencyRole
    fields = ("role_name", "okta_group_name", "okta_group_id")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WorkloadAccount)
class WorkloadAccountAdmin(PlanModelAdmin):
    form = EligibilityForm
    list_display = ("number", "name", "account_id", "emergency_account")
    list_select_related = ("emergency_account",)
    search_fields = ("name", "account_id")
    # The number is N in EmergencyAccess_Role<N>_<LEVEL>: fixed, like the account id.
    identity_fields = ("emergency_account", "number", "account_id")
    inlines = (RoleInline,)


@admin.register(Level)
class LevelAdmin(PlanModelAdmin):
    form = EligibilityForm
    list_display = (
        "name",
        "policy_arn",
        "max_duration_minutes",
        "approvals_required",
        "break_glass",
        "position",
    )
    identity_fields = ("name",)
    inlines = (RoleInline,)


class EmergencyRoleForm(forms.ModelForm):
    """Pick the account and level; the role and group names follow from them."""

    class Meta:
        model = EmergencyRole
        fields = ("workload_account", "level")

    def clean(self) -> dict[str, Any]:
        super().clean()
        # Django's clean() returns cleaned_data, which its stubs allow to be None.
        cleaned = self.cleaned_data
        account, level = cleaned.get("workload_account"), cleaned.get("level")
        if account is None or level is None:
            return cleaned
        emergency = account.emergency_account
        role_name, group = EmergencyRole.names_for(account.number, level.name, emergency.account_id)
        taken = EmergencyRole.objects.filter(role_name=role_name) | EmergencyRole.objects.filter(
            okta_group_name=group
        )
        if taken.exclude(pk=self.instance.pk).exists():
            raise ValidationError(f"The role {role_name} exists already.")
        self.instance.emergency_account = emergency
        self.instance.role_name = role_name
        self.instance.okta_group_name = group
        return cleaned


@admin.register(EmergencyRole)
class EmergencyRoleAdmin(PlanModelAdmin):
    form = EmergencyRoleForm
    list_display = ("role_name", "workload_account", "level", "okta_group_name", "okta_group_id")
    list_select_related = ("workload_account", "level", "emergency_account")
    list_filter = ("level", "workload_account")
    search_fields = ("role_name", "okta_group_name")
    readonly_fields = ("role_name", "okta_group_name", "emergency_account", "okta_group_id")
    identity_fields = ("workload_account", "level")


@admin.register(Failover)
class FailoverAdmin(admin.ModelAdmin):
    """Read-only: failovers open and close through federation.failover.services, never here."""

    list_display = ("__str__", "status", "is_drill", "opened_by", "opened_at", "closed_at")
    list_filter = ("status", "is_drill")
    list_select_related = ("opened_by",)
    date_hierarchy = "opened_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
