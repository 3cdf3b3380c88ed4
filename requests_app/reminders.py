"""Reminders run by beat: escalate unanswered requests, warn before a grant ends.

Each send is claimed with a conditional UPDATE (``filter(..., old).update(new)``)
so two beat runs, or two workers, never send the same reminder twice.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from portal import audit
from requests_app import messages
from requests_app.models import AccessRequest, Status


def escalate_pending(now: dt.datetime | None = None) -> list[int]:
    """Re-notify every approver about requests pending longer than ESCALATION_MINUTES,
    once per interval. Returns the ids escalated."""
    now = now or timezone.now()
    interval = dt.timedelta(minutes=settings.ESCALATION_MINUTES)
    due = AccessRequest.objects.filter(
        status=Status.PENDING, created_at__lte=now - interval
    ).filter(Q(last_escalated_at__isnull=True) | Q(last_escalated_at__lte=now - interval))
    escalated = []
    for req_id, last in due.values_list("pk", "last_escalated_at"):
        with transaction.atomic():
            claimed = AccessRequest.objects.filter(
                pk=req_id, status=Status.PENDING, last_escalated_at=last
            ).update(last_escalated_at=now, escalations=F("escalations") + 1)
            if not claimed:
                continue
            req = AccessRequest.objects.with_related().get(pk=req_id)
            waited = int((now - req.created_at).total_seconds() // 60)
            audit.record(
                "request.escalated",
                req,
                system="escalation",
                payload={"waited_minutes": waited, "escalation": req.escalations},
            )
            messages.request_escalated(req)
        escalated.append(req_id)
    return escalated


def warn_ending(now: dt.datetime | None = None) -> list[int]:
    """Tell requesters whose access ends within ENDING_SOON_MINUTES (once per end time:
    an extension moves the end, and the warning comes again before the new one)."""
    now = now or timezone.now()
    soon = now + dt.timedelta(minutes=settings.ENDING_SOON_MINUTES)
    due = AccessRequest.objects.filter(
        status=Status.ACTIVE, expires_at__gt=now, expires_at__lte=soon
    ).exclude(ending_notice_for=F("expires_at"))
    warned = []
    for req_id, expires_at in due.values_list("pk", "expires_at"):
        with transaction.atomic():
            claimed = (
                AccessRequest.objects.filter(pk=req_id, status=Status.ACTIVE, expires_at=expires_at)
                .exclude(ending_notice_for=expires_at)
                .update(ending_notice_for=expires_at)
            )
            if not claimed:
                continue
            req = AccessRequest.objects.with_related().get(pk=req_id)
            messages.grant_ending_soon(req)
        warned.append(req_id)
    return warned
