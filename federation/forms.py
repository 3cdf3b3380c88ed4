"""Forms of the failover page."""

from __future__ import annotations

from django import forms


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
        return self.cleaned_data["reason"].strip()


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
        return self.cleaned_data["reason"].strip()
