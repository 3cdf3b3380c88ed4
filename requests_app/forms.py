"""Forms of the request pages: they check the input; the services decide."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import ModelChoiceIterator

from federation.models import EmergencyRole, Level
from portal.core.errors import DomainError
from portal.core.web import add_service_error
from requests_app.services import MIN_JUSTIFICATION_WORDS


def role_label(role: EmergencyRole) -> str:
    """``prod-payments (111111111111) — RO, max 240 min, 1 approval``."""
    level = role.level
    approvals = level.approvals_required
    return (
        f"{role.workload_account.name} ({role.workload_account.account_id}) — {level.name}, "
        f"max {level.max_duration_minutes} min, {approvals} approval{'s' if approvals != 1 else ''}"
    )


class RoleCheckboxes(forms.CheckboxSelectMultiple):
    """Checkboxes whose inputs carry the level's maximum duration (for the hint)."""

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        role = getattr(value, "instance", None)
        if isinstance(role, EmergencyRole):
            option["attrs"]["data-max-minutes"] = role.level.max_duration_minutes
        return option


class OfferedChoices(ModelChoiceIterator):
    """The choices shown: the field's ``offered`` roles (those the person may ask for),
    while any existing role still validates, so the service says why one is refused."""

    def __iter__(self) -> Iterator[Any]:
        offered = getattr(self.field, "offered", None)
        if offered is not None:
            self.queryset = offered
        yield from super().__iter__()

    def __len__(self) -> int:
        offered = getattr(self.field, "offered", None)
        return int((offered if offered is not None else self.queryset).count())


class RolesChoiceField(forms.ModelMultipleChoiceField):
    """One or several emergency roles: one request (and one decision) per role."""

    iterator = OfferedChoices

    def label_from_instance(self, obj: EmergencyRole) -> str:
        return role_label(obj)

    def clean(self, value: Any) -> Any:
        # An empty choice ("role=") means nothing was chosen, not an unknown role.
        if isinstance(value, list | tuple):
            value = [item for item in value if item not in ("", None)]
        return super().clean(value)


class AccessRequestForm(forms.Form):
    role = RolesChoiceField(
        label="Account and level",
        queryset=EmergencyRole.objects.requestable(),
        widget=RoleCheckboxes,
        help_text="Tick one or several: each role is a request of its own, decided on its own.",
        error_messages={
            "required": "Choose the account and access level you need.",
            "invalid_choice": "That emergency role does not exist; choose one from the list.",
            "invalid_pk_value": "That emergency role does not exist; choose one from the list.",
        },
    )
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=4000,
        help_text="What is broken and what you will do with the access. Approvers read this.",
        error_messages={"required": "Say why you need emergency access."},
    )
    ticket = forms.CharField(
        label="Ticket or incident",
        max_length=128,
        help_text="e.g. INC-1234",
        error_messages={"required": "Give the ticket or incident reference."},
    )
    duration_minutes = forms.IntegerField(
        label="Duration (minutes)",
        min_value=1,
        initial=60,
        error_messages={
            "required": "Say for how many minutes you need the access.",
            "min_value": "Ask for at least 1 minute.",
            "invalid": "Give the duration as a whole number of minutes.",
        },
    )

    def __init__(self, *args: Any, offered: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if offered is not None:
            self.fields["role"].offered = offered  # type: ignore[attr-defined]
        limits = ", ".join(
            f"{name} up to {minutes} min"
            for name, minutes in Level.objects.values_list("name", "max_duration_minutes")
        )
        self.fields["duration_minutes"].help_text = (
            f"The clock starts once Okta confirms the access. {limits}."
            if limits
            else "The clock starts once Okta confirms the access."
        )

    def clean_justification(self) -> str:
        text: str = self.cleaned_data["justification"].strip()
        if len(text.split()) < MIN_JUSTIFICATION_WORDS:
            raise ValidationError(
                "Say in at least a sentence why you need emergency access "
                f"({MIN_JUSTIFICATION_WORDS} words or more)."
            )
        return text

    def clean(self) -> dict[str, Any]:
        super().clean()
        # Django's clean() returns cleaned_data, which its stubs allow to be None.
        data = self.cleaned_data
        roles, minutes = data.get("role"), data.get("duration_minutes")
        if roles and minutes is not None:
            # Several roles share one duration: the tightest level bounds it.
            role = min(roles, key=lambda r: r.level.max_duration_minutes)
            limit = role.level.max_duration_minutes
            if minutes > limit:
                self.add_error(
                    "duration_minutes",
                    f"{role.level.name} access can be granted for at most {limit} minutes.",
                )
        return data

    def add_service_error(self, exc: ValidationError | DomainError) -> None:
        """Show what the service refused: its field errors on the fields, the rest on top."""
        add_service_error(self, exc)


class ActionForm(forms.Form):
    """The optional comment or reason given with approve / deny / cancel / revoke."""

    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)


class ExtensionForm(forms.Form):
    minutes = forms.IntegerField(
        label="More minutes",
        min_value=1,
        error_messages={
            "required": "Say how many more minutes you need.",
            "min_value": "Ask for at least 1 more minute.",
            "invalid": "Give a whole number of minutes.",
        },
    )
    justification = forms.CharField(
        label="Why",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why you need more time."},
    )

    def clean_justification(self) -> str:
        text: str = self.cleaned_data["justification"].strip()
        if len(text.split()) < MIN_JUSTIFICATION_WORDS:
            raise ValidationError(
                f"Say in a sentence why you need more time ({MIN_JUSTIFICATION_WORDS} words or "
                "more)."
            )
        return text


class RequestIdsField(forms.TypedMultipleChoiceField):
    """Request ids: any number is a valid choice; the service refuses what it must."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(coerce=int, required=False, **kwargs)

    def valid_value(self, value: Any) -> bool:
        return str(value).isdigit()


class BulkApproveForm(forms.Form):
    """The approvals queue's bulk approval: the ticked requests, or every RO one shown."""

    MAX = 500
    ids = RequestIdsField()
    ro_ids = RequestIdsField()
    scope = forms.ChoiceField(choices=[("selected", "selected"), ("ro", "all RO")])
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        chosen = data.get("ro_ids" if data.get("scope") == "ro" else "ids") or []
        if not chosen:
            raise ValidationError("Select at least one request to approve.")
        if len(chosen) > self.MAX:
            raise ValidationError(f"Approve at most {self.MAX} requests at once.")
        data["chosen"] = chosen
        return data
