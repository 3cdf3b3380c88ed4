"""The background work the access-request services start: one function per task, sent by
name after the transaction commits. Tests patch these functions, nothing else."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from portal.celery import send_on_commit
from requests_app.models import AccessRequest

PROVISION_GRANT = "requests_app.provision_grant"
DEPROVISION_GRANT = "requests_app.deprovision_grant"


def provision_grant(request_id: int) -> None:
    """Add the requester to the role's Okta group, then activate the grant."""
    work_due(request_id)
    send_on_commit(PROVISION_GRANT, [request_id], on_failure=_left_to_the_sweep)


def deprovision_grant(request_id: int) -> None:
    """Remove the member from the Okta group (unless another live grant needs it)."""
    work_due(request_id)
    send_deprovision(request_id)


def send_deprovision(request_id: int) -> None:
    """``deprovision_grant`` for a grant whose ``work_due_at`` the caller already set."""
    send_on_commit(DEPROVISION_GRANT, [request_id], on_failure=_left_to_the_sweep)


def work_due(request_id: int, in_seconds: float = 0) -> None:
    """The grant's Okta work is expected to run by then (now, or after a retry's countdown);
    the grant sweep re-sends it when that time passed and the work is still not done."""
    at = timezone.now() + dt.timedelta(seconds=in_seconds)
    AccessRequest.objects.filter(pk=request_id).update(work_due_at=at)


def _left_to_the_sweep(exc: Exception) -> None:
    # The broker is unreachable: the database says what is due; the grant sweep re-sends it
    # once Redis is back (docs/reliability.md), so the web request still succeeds.
    pass


# Run by beat (portal/settings.py CELERY_BEAT_SCHEDULE), never queued by a service.
ESCALATE_BREAK_GLASS_REVIEWS = "requests_app.escalate_break_glass_reviews"


# PagerDuty (requests_app/oncall.py, requests_app/paging.py).
CHECK_ONCALL = "requests_app.check_oncall"
SEND_PAGE = "requests_app.send_page"
# Run by beat: page the approvers while requests wait, resolve once none does.
PAGE_APPROVERS = "requests_app.page_approvers"


def check_oncall(request_id: int) -> None:
    """Ask PagerDuty whether the requester is on call (the level's on-call rule)."""
    send_on_commit(CHECK_ONCALL, [request_id], on_failure=_left_to_humans)


def send_page(page_id: int) -> None:
    """Tell PagerDuty what the approvers' page should be now (trigger or resolve)."""
    send_on_commit(SEND_PAGE, [page_id], on_failure=_left_to_the_next_check)


def _left_to_humans(exc: Exception) -> None:
    # The broker is unreachable: the request simply waits for human approvers.
    pass


def _left_to_the_next_check(exc: Exception) -> None:
    # The periodic check (page_approvers) re-sends a page PagerDuty has not confirmed.
    pass
