from django.contrib import admin
from django.urls import include, path

from portal import demo_views, security_views, views
from portal import slack_views as slack
from portal.api import api

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("audit/", views.audit_log, name="audit-log"),
    path("healthz", views.healthz, name="healthz"),
    path("csp-report/", security_views.csp_report, name="csp-report"),
    path("demo/", demo_views.demo_controls, name="demo-controls"),
    path("demo/<str:action>/", demo_views.demo_action, name="demo-action"),
    path("readyz", views.readyz, name="readyz"),
    path("slack/interactivity", slack.interactivity, name="slack-interactivity"),
    path("", include("requests_app.urls")),
    path("", include("federation.urls")),
    path("tokens/", include("portal.token_urls")),
    path("auditor/", include("portal.auditor.urls")),
    path("api/v1/", api.urls),
    # No self-service email changes: the email is the Okta login (set by an admin).
    path("accounts/email/", views.email_managed_by_admins, name="account_email"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]
