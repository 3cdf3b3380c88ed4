from django.urls import path

from federation.views import failover as views
from federation.views import monitor as monitor_views
from federation.views import readiness as readiness_views
from federation.views import runbook as runbook_views

urlpatterns = [
    path("failover/", views.failover, name="failover"),
    path("failover/open/", views.failover_open, name="failover-open"),
    path("failover/close/", views.failover_close, name="failover-close"),
    path("plan/", readiness_views.plan_page, name="plan"),
    path("plan/files/<path:name>", readiness_views.plan_file, name="plan-file"),
    path("readiness/", readiness_views.readiness_page, name="readiness"),
    path("readiness/run/", readiness_views.readiness_run, name="readiness-run"),
    path("failover/confirm/", runbook_views.failover_confirm, name="failover-confirm"),
    path("failover/return/", runbook_views.return_page, name="failover-return"),
    path("failover/return/start/", runbook_views.return_start, name="failover-return-start"),
    path("failover/return/remind/", runbook_views.return_remind, name="failover-return-remind"),
    path("failover/return/close/", runbook_views.return_close, name="failover-return-close"),
    path("failover/<int:pk>/report/", runbook_views.failover_report, name="failover-report"),
    path("monitor/health/", monitor_views.health_card, name="health-card"),
    path("monitor/emergency-users/", monitor_views.emergency_users_card, name="emergency-users"),
    path(
        "failover/<int:pk>/report.json",
        runbook_views.failover_report_json,
        name="failover-report-json",
    ),
]
