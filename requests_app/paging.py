"""Paging the approvers through PagerDuty when requests wait: once per failover.

Beat runs ``check()`` every ``PAGERDUTY_CHECK_SECONDS``. While the open failover has a
request pending longer than ``PAGERDUTY_PAGE_AFTER_MINUTES``, the approvers' service is
paged (Events API v2 ``trigger``, routing key ``PAGERDUTY_ROUTING_KEY``, which belongs to
the approvers' escalation policy) with **one dedup key per failover**: however many
requests wait, PagerDuty holds one incident. Once no request waits any more (all decided,
lapsed, cancelled) or the failover is no longer active, the incident is resolved. A new
wait later in the same failover triggers the same key again (PagerDuty opens a new
incident, as the last one was resolved).

State: ``ApproverPage`` (one per failover) with ``PAGE_TRANSITIONS`` (``trigger``,
``resolve``; audit ``pagerduty.paged`` / ``pagerduty.resolved`` on the failover), changed
only here, under a transaction-level advisory lock so overlapping runs do the work once.
The send task (``send``) tells PagerDuty the page's *current* state, so it is idempotent
and order-safe; a page PagerDuty has not confirmed is re-sent by the next check.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from federation import pagerduty
from federation.models import Failover, FailoverStatus
from portal import audit
from portal.core.scheduler import try_lock
from portal.notify import link
from requests_app import queue
from requests_app.models import (
    PAGE_TRANSITIONS,
    AccessRequest,
    ApproverPage,
    PageStatus,
    Status,
)

log = logging.getLogger(__name__)

LOCK = "requests_app.page_approvers"


def dedup_key(failover: Failover) -> str:
    """One PagerDuty incident per failover, whatever the number of waiting requests."""
    return f"emergency-access-failover-{failover.pk}"


def waiting(failover: Failover, now: dt.datetime | None = None) -> Any:
    """Requests of ``failover`` pending longer than the page wait."""
    now = now or timezone.now()
    since = now - dt.timedelta(minutes=settings.PAGERDUTY_PAGE_AFTER_MINUTES)
    return AccessRequest.objects.filter(
        failover=failover, status=Status.PENDING, created_at__lte=since
    )


def _move(page: ApproverPage, transition: str, payload: dict[str, Any]) -> ApproverPage:
    sources, target, action = PAGE_TRANSITIONS[transition]
    if page.status not in sources:
        return page
    now = timezone.now()
    page.status = target
    fields = ["status"]
    if target == PageStatus.TRIGGERED:
        page.triggers += 1
        page.triggered_at = now
        fields += ["triggers", "triggered_at"]
    else:
        page.resolved_at = now
        fields.append("resolved_at")
    page.save(update_fields=fields)
    audit.record(
        action,
        page.failover,
        system="pagerduty",
        payload={"dedup_key": page.dedup_key, "trigger": page.triggers, **payload},
    )
    queue.send_page(page.pk)
    return page


def check(now: dt.datetime | None = None) -> list[str]:
    """Trigger or resolve the approvers' page; returns what changed ("trigger <key>", ...)."""
    if not pagerduty.events_configured():
        return []
    now = now or timezone.now()
    changed: list[str] = []
    queued: set[int] = set()
    with transaction.atomic():
        if not try_lock(LOCK):
            return []
        audit.lock_chain()  # the lock order (docs/reliability.md): the chain, then rows
        for page in ApproverPage.objects.select_for_update().select_related("failover"):
            if page.status != PageStatus.TRIGGERED:
                continue
            failover = page.failover
            if failover.status != FailoverStatus.ACTIVE:
                _move(page, "resolve", {"reason": f"the failover is {failover.status}"})
            elif not AccessRequest.objects.filter(
                failover=failover, status=Status.PENDING
            ).exists():
                _move(page, "resolve", {"reason": "no request waits any more"})
            else:
                continue
            changed.append(f"resolve {page.dedup_key}")
            queued.add(page.pk)
        current = Failover.objects.open().first()
        if current is not None:
            pending = list(
                waiting(current, now).order_by("created_at").values_list("pk", flat=True)
            )
            if pending:
                page, _ = ApproverPage.objects.select_for_update().get_or_create(
                    failover=current, defaults={"dedup_key": dedup_key(current)}
                )
                if page.status == PageStatus.RESOLVED:
                    _move(
                        page,
                        "trigger",
                        {
                            "waiting": len(pending),
                            "requests": pending[:20],
                            "after_minutes": settings.PAGERDUTY_PAGE_AFTER_MINUTES,
                        },
                    )
                    changed.append(f"trigger {page.dedup_key}")
                    queued.add(page.pk)
        # Pages PagerDuty has not confirmed (a broker that was down, retries exhausted).
        for page in ApproverPage.objects.all():
            if page.pk not in queued and page.sent_action != _action(page):
                queue.send_page(page.pk)
    return changed


def _action(page: ApproverPage) -> str:
    """What PagerDuty should be told for the page's status."""
    return "trigger" if page.status == PageStatus.TRIGGERED else "resolve"


def _summary(page: ApproverPage) -> tuple[str, dict[str, Any]]:
    failover = page.failover
    pending = AccessRequest.objects.filter(failover=failover, status=Status.PENDING)
    count = pending.count()
    kind = "drill" if failover.is_drill else "Identity Center disrupted"
    summary = (
        f"Emergency access: {count} request{'s' if count != 1 else ''} waiting for approval "
        f"(failover #{failover.pk}, {kind})"
    )
    details = {
        "waiting": count,
        "failover": failover.pk,
        "drill": failover.is_drill,
        "requests": [
            f"#{r.pk} {r.requester.get_username()} → {r.role.role_name}"
            for r in pending.select_related("requester", "role").order_by("created_at")[:20]
        ],
        "approvals_queue": link("approvals"),
    }
    return summary, details


def send(page_id: int) -> str:
    """The send task's service: make PagerDuty hold the page's current state. Raises
    ``PagerDutyError`` (the task retries); returns the action confirmed ("" = nothing)."""
    page = ApproverPage.objects.select_related("failover").get(pk=page_id)
    action = _action(page)
    if page.sent_action == action:
        return ""
    if action == "trigger":
        summary, details = _summary(page)
        pagerduty.trigger(
            page.dedup_key,
            summary,
            source=settings.SITE_URL,
            details=details,
            links=[{"href": details["approvals_queue"], "text": "The approvals queue"}],
        )
    else:
        pagerduty.resolve(page.dedup_key)
    # Only if the page did not change meanwhile (a newer send will say the newer state).
    wanted = PageStatus.TRIGGERED if action == "trigger" else PageStatus.RESOLVED
    ApproverPage.objects.filter(pk=page_id, status=wanted).update(
        sent_action=action, sent_at=timezone.now(), last_error=""
    )
    return action


def send_failed(page_id: int, error: str, *, final: bool) -> None:
    """Record a failed send; the last one is audited (the next check sends it again)."""
    ApproverPage.objects.filter(pk=page_id).update(last_error=error[:1000])
    if not final:
        return
    with transaction.atomic():
        page = ApproverPage.objects.select_related("failover").get(pk=page_id)
        audit.record(
            "pagerduty.page_failed",
            page.failover,
            system="pagerduty",
            payload={"dedup_key": page.dedup_key, "status": page.status, "error": error[:500]},
        )
