"""Mounted at ``auditor/`` by portal/urls.py: the auditor's portal (read-only)."""

from django.urls import path, register_converter

from portal.auditor import views


class ExportFormat:
    regex = "csv|jsonl"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ExportFormat, "export_format")

urlpatterns = [
    path("", views.request_history, name="auditor-history"),
    path(
        "requests.<export_format:fmt>",
        views.request_history_export,
        name="auditor-history-export",
    ),
    path("requests/<int:pk>/", views.request_timeline, name="auditor-request"),
    path("people/<int:pk>/", views.person, name="auditor-person"),
    path("accounts/<int:pk>/", views.account, name="auditor-account"),
    path("failovers/", views.failover_list, name="auditor-failovers"),
    path("audit.<export_format:fmt>", views.audit_export, name="auditor-audit-export"),
    path("integrity/", views.integrity_badge, name="auditor-integrity"),
    path("integrity/verify/", views.integrity_verify, name="auditor-integrity-verify"),
]
