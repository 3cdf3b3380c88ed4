"""Forms of the failover page and the return-to-normal wizard: they check the input; the
services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone


class OpenFailoverForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="What is disrupted, and the incident reference. Everyone sees this.",
        error_messages={"required": "Say why the failover is opened."},
    )
    drill = forms.BooleanField(
        required=False,
        label="This is a drill",
        help_text="A drill runs the same path (the Okta app is really activated) and is "
        "marked as a drill everywhere.",
    )

    def clean_reason(self) -> str:
        reason: str = self.cleaned_data["reason"]
        return reason.strip()


class CloseFailoverForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="e.g. Identity Center is healthy again and everyone was told to sign out.",
        error_messages={"required": "Say why the failover can be closed."},
    )
    confirm = forms.BooleanField(
        label="I understand: pending requests lapse, every grant is revoked, the federation "
        "app is deactivated and every emergency group is emptied.",
        error_messages={"required": "Tick the box to confirm the return to normal."},
    )

    def clean_reason(self) -> str:
        reason: str = self.cleaned_data["reason"]
        return reason.strip()


# --- The return-to-normal wizard ------------------------------------------------------


class StartReturnForm(forms.Form):
    override_reason = forms.CharField(
        label="Override reason",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Needed only when Identity Center is not HEALTHY: why return to normal anyway.",
    )

    def clean_override_reason(self) -> str:
        reason: str = self.cleaned_data["override_reason"]
        return reason.strip()


class CloseForm(forms.Form):
    """Step 4: deactivate now, at a chosen time, or forced while people are signed in."""

    MODES = [("now", "Deactivate now"), ("schedule", "Schedule"), ("force", "Force")]

    mode = forms.ChoiceField(choices=MODES, widget=forms.HiddenInput)
    deactivate_at = forms.DateTimeField(
        label="Deactivate at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        help_text="In the portal's time zone. The guide prefers after working hours.",
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    confirm = forms.BooleanField(
        required=False,
        label="I understand: people still signed in lose access now; their console sessions "
        "last until the SAML session ends.",
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        # Django's clean() returns cleaned_data, which its stubs allow to be None.
        data = self.cleaned_data
        mode = data.get("mode")
        at = data.get("deactivate_at")
        data["reason"] = (data.get("reason") or "").strip()
        if mode == "schedule":
            if at is None:
                self.add_error("deactivate_at", "Choose when to deactivate the app.")
            elif at <= timezone.now():
                self.add_error("deactivate_at", "Choose a time in the future (or deactivate now).")
        if mode == "force":
            if not data["reason"]:
                self.add_error("reason", "Say why you close without waiting for every sign-out.")
            if not data.get("confirm"):
                self.add_error("confirm", "Tick the box to confirm the forced close.")
        return data
