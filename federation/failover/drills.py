"""Drills: a failover marked as a drill runs the same path; this says what it proved.

The checklist is computed from the audit log and the sign-in evidence, never
ticked by hand: app activated, a user added, a sign-in seen in the Okta System
Log, the user removed, the app deactivated, the groups verified empty -- and, when
the portal takes AWS events, an AWS-side use of an emergency role seen (the alarm
path works end to end). The
result (passed only if everything was proved) is stored when the drill closes
(``federation.failover.services.confirm_closed``). A drill is due every DRILL_INTERVAL_DAYS
after the last passed one (the first one after the portal's first audit event, the
plan's import); beat reminds approvers once a day while overdue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from federation.failover import messages
from federation.models import DrillResult, Failover, FailoverStatus, ReturnToNormal
from federation.monitor import role_use
from federation.readiness.checks import alarms_configured
from portal import audit
from portal.models import AuditEvent
from requests_app.evidence import emergency_users

REMINDER_TARGET = ("drill", "schedule")
REMINDER_EVERY = dt.timedelta(hours=24)


@dataclass(frozen=True)
class DrillItem:
    key: str
    label: str
    proved: bool
    evidence: str = ""
    at: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat() if self.at else None
        return data


def _request_events(failover: Failover, action: str) -> Any:
    ids = [str(pk) for pk in failover.requests.values_list("pk", flat=True)]
    return AuditEvent.objects.filter(
        target_type="accessrequest", target_id__in=ids, action=action
    ).order_by("seq")


def _first_sign_in(failover: Failover) -> tuple[Any, dt.datetime] | None:
    # One batch of evidence for every grant, not a lookup per request.
    seen = [
        (ev.last_sign_in, req)
        for req, ev in emergency_users(failover)
        if ev.last_sign_in is not None
    ]
    if not seen:
        return None
    at, req = min(seen, key=lambda item: item[0])
    return req, at


def drill_checklist(failover: Failover, *, removed_members: int | None = None) -> list[DrillItem]:
    """What the drill proved so far (complete once it is closed)."""
    added = _request_events(failover, "request.active").first()
    removed = _request_events(failover, "request.membership_removed").first()
    sign_in = _first_sign_in(failover)
    items = [
        DrillItem(
            "app_activated",
            "Federation app activated in Okta",
            failover.app_activated_at is not None,
            "confirmed by the worker" if failover.app_activated_at else "",
            failover.app_activated_at,
        ),
        DrillItem(
            "user_added",
            "A user added to an emergency group",
            added is not None,
            f"request #{added.target_id}: {added.payload.get('okta_group', '')}" if added else "",
            added.created_at if added else None,
        ),
        DrillItem(
            "signed_in",
            "A sign-in to AWS seen in the Okta System Log",
            sign_in is not None,
            f"{sign_in[0].requester.get_username()} (request #{sign_in[0].pk})" if sign_in else "",
            sign_in[1] if sign_in else None,
        ),
        DrillItem(
            "user_removed",
            "The user removed from the group",
            removed is not None or bool(removed_members),
            (
                f"request #{removed.target_id}: {removed.payload.get('detail', '')}"
                if removed
                else (f"{removed_members} member(s) removed at close" if removed_members else "")
            ),
            removed.created_at if removed else None,
        ),
        DrillItem(
            "app_deactivated",
            "Federation app deactivated (INACTIVE in Okta)",
            failover.app_deactivated_at is not None,
            "verified by the worker" if failover.app_deactivated_at else "",
            failover.app_deactivated_at,
        ),
        DrillItem(
            "groups_empty",
            "Every emergency group verified empty",
            failover.groups_emptied_at is not None,
            "verified by the worker" if failover.groups_emptied_at else "",
            failover.groups_emptied_at,
        ),
    ]
    if alarms_configured():
        use = role_use.uses_in(failover)[:1]
        items.append(
            DrillItem(
                "aws_alarm",
                "An AWS-side use of an emergency role seen (EventBridge or CloudTrail)",
                bool(use),
                f"{use[0].event_name} of {use[0].role_arn} by {use[0].login} via {use[0].source}"
                if use
                else "",
                use[0].at if use else None,
            )
        )
    return items


def drill_items(failover: Failover, run: ReturnToNormal | None) -> list[dict[str, Any]]:
    """The drill's checklist as shown: the one stored at close, else as proved so far."""
    if run is not None and run.drill_result:
        stored: list[dict[str, Any]] = run.drill_checklist
        return stored
    return [item.as_dict() for item in drill_checklist(failover)]


@dataclass(frozen=True)
class DrillStatus:
    last: Failover | None
    result: str  # "passed" | "failed" | "" (none yet)
    last_passed_at: dt.datetime | None
    next_due: dt.datetime | None  # None: one is due now (none passed yet)
    overdue: bool
    running: Failover | None
    interval_days: int


def drill_status(now: dt.datetime | None = None) -> DrillStatus:
    now = now or timezone.now()
    closed = Failover.objects.filter(is_drill=True, status=FailoverStatus.CLOSED).select_related(
        "return_to_normal"
    )
    last = closed.order_by("-closed_at").first()
    result = ""
    if last is not None and hasattr(last, "return_to_normal"):
        result = last.return_to_normal.drill_result
    if last is None:
        passed = None  # no drill closed yet: none passed (one query less on the dashboard)
    elif result == DrillResult.PASSED:
        passed = last
    else:
        passed = (
            closed.filter(return_to_normal__drill_result=DrillResult.PASSED)
            .order_by("-closed_at")
            .first()
        )
    interval = dt.timedelta(days=settings.DRILL_INTERVAL_DAYS)
    # Before any drill passed, the first is due one interval after the portal's first
    # recorded act (the plan's import): a fresh installation is not overdue at once.
    start = passed.closed_at if passed else _first_recorded_at()
    next_due = start + interval if start else None
    running = Failover.objects.filter(is_drill=True).exclude(status=FailoverStatus.CLOSED).first()
    return DrillStatus(
        last=last,
        result=result,
        last_passed_at=passed.closed_at if passed else None,
        next_due=next_due,
        overdue=running is None and (next_due is None or next_due <= now),
        running=running,
        interval_days=settings.DRILL_INTERVAL_DAYS,
    )


def _first_recorded_at() -> dt.datetime | None:
    first = AuditEvent.objects.order_by("seq").only("created_at").first()
    return first.created_at if first else None


def remind_if_overdue(now: dt.datetime | None = None) -> bool:
    """Beat: tell approvers a drill is overdue, at most once a day. True if told."""
    now = now or timezone.now()
    status = drill_status(now)
    if not status.overdue or Failover.objects.current() is not None:
        return False
    with transaction.atomic():
        audit.lock_chain()  # two overlapping beat runs: only one reminds
        last = (
            AuditEvent.objects.filter(
                action="drill.overdue_reminder",
                target_type=REMINDER_TARGET[0],
                target_id=REMINDER_TARGET[1],
            )
            .order_by("-seq")
            .first()
        )
        if last is not None and last.created_at > now - REMINDER_EVERY:
            return False
        audit.record(
            "drill.overdue_reminder",
            REMINDER_TARGET,
            system="drill-schedule",
            payload={
                "last_passed_at": status.last_passed_at.isoformat()
                if status.last_passed_at
                else None,
                "interval_days": status.interval_days,
            },
        )
        messages.drill_overdue(status.last_passed_at, status.interval_days)
    return True
