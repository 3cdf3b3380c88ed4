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
