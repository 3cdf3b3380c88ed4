from django.contrib import admin
from django.urls import include, path

from portal import slack_views as slack
from portal import views
from portal.api import api

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("audit/", views.audit_log, name="audit-log"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("slack/interactivity", slack.interactivity, name="slack-interactivity"),
    path("", include("requests_app.urls")),
    path("", include("federation.urls")),
    path("tokens/", include("portal.token_urls")),
    path("auditor/", include("portal.auditor.urls")),
    path("api/v1/", api.urls),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]
