"""The failover lifecycle: declare a disruption (or a drill), return to normal, close.

NORMAL -> [PROPOSED (a second approver confirms)] -> ACTIVE (federation app
activated) -> RETURNING (IdC healthy, users told to sign out, reminded; the checklist is
``federation.failover.checklist``) -> CLOSING (app deactivated, every emergency group
emptied, sessions ended; now or at a scheduled time) -> CLOSED (with a report and, for a
drill, what it proved). Every change of a failover's status is a function here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from federation import queue
from federation.evidence_models import EvidenceKind, SignInEvidence
from federation.failover import checklist, drills, messages
from federation.idp import IdentityProvider, IdpNotFound, IdpRetryableError, guard
from federation.models import (
    FAILOVER_TRANSITIONS,
    DrillResult,
    EmergencyRole,
    Failover,
    FailoverStatus,
    ReturnToNormal,
)
from federation.monitor.health import HEALTHY
from portal import audit
from portal.core.access import can_run_failover
from portal.core.errors import Conflict, InvalidTransition, NotAllowed
from portal.core.types import User
from requests_app import services as request_services
from requests_app.evidence import end_sessions
from requests_app.grants import group_id_for
from requests_app.models import ENDED_GRANT_STATUSES, HOLDING_STATUSES, AccessRequest, Status


def _move(
    failover: Failover,
    transition: str,
    *,
    actor: User | None = None,
    system: str = "system",
    payload: dict[str, Any] | None = None,
    **fields: Any,
) -> Failover:
    """Apply one row of FAILOVER_TRANSITIONS to a locked failover and record it."""
    sources, target, action = FAILOVER_TRANSITIONS[transition]
    if failover.status not in sources:
        raise InvalidTransition(
            f"{failover} is {failover.get_status_display().lower()}: it cannot {transition}."
        )
    failover.status = target
    for name, value in fields.items():
        setattr(failover, name, value)
    failover.save(update_fields=["status", *fields])
    audit.record(action, failover, actor=actor, system=system, payload=payload)
    return failover


def open_failover(*, actor: User, reason: str, drill: bool = False) -> Failover:
    """Declare a disruption: the federation app is activated by a worker."""
    if not can_run_failover(actor):
        raise NotAllowed("Only approvers can declare a disruption.")
    if not reason.strip():
        raise ValidationError({"reason": ["Say why the failover is opened."]})
    try:
        with transaction.atomic():
            audit.lock_chain()  # the lock order: the audit chain, then rows
            current = Failover.objects.select_for_update().current()
            if current is not None:
                raise Conflict(f"{current} is not closed yet.")
            # A real failover may need a second approver before anything changes in Okta.
            proposed = settings.REQUIRE_FAILOVER_CONFIRMATION and not drill
            failover = Failover.objects.create(
                opened_by=actor,
                reason=reason.strip(),
                is_drill=drill,
                status=FailoverStatus.PROPOSED if proposed else FailoverStatus.ACTIVE,
            )
            if proposed:
                audit.record("failover.proposed", failover, actor=actor, payload={"reason": reason})
                messages.failover_proposed(failover)
                return failover
            audit.record(
                "failover.opened", failover, actor=actor, payload={"reason": reason, "drill": drill}
            )
            queue.activate_federation_app(failover.pk)
            messages.failover_changed(failover, "opened")
    except IntegrityError:
        # Two approvers declared at the same moment: the other one won.
        raise Conflict("A failover was opened at the same moment by someone else.") from None
    return failover


def confirm_failover(*, actor: User) -> Failover:
    """A second, different approver confirms a proposed real failover: the app is activated."""
    if not can_run_failover(actor):
        raise NotAllowed("Only approvers can confirm a failover.")
    with transaction.atomic():
        audit.lock_chain()  # the lock order: the audit chain, then rows
        failover = Failover.objects.select_for_update().current()
        if failover is None or failover.status != FailoverStatus.PROPOSED:
            raise Conflict("No proposed failover is waiting for confirmation.")
        if failover.opened_by_id == actor.pk:
            raise NotAllowed("A second, different approver must confirm the failover.")
        _move(failover, "confirm", actor=actor, confirmed_by=actor, confirmed_at=timezone.now())
        audit.record(
            "failover.opened",
            failover,
            actor=actor,
            payload={
                "reason": failover.reason,
                "drill": False,
                "proposed_by": failover.opened_by.get_username(),
            },
        )
        queue.activate_federation_app(failover.pk)
        messages.failover_changed(failover, "opened")
    return failover


def confirm_app_activated(failover_id: int) -> None:
    with transaction.atomic():
        audit.lock_chain()  # the lock order: the audit chain, then rows
        failover = Failover.objects.select_for_update().get(pk=failover_id)
        if failover.app_activated_at is not None or failover.status != FailoverStatus.ACTIVE:
            return
        failover.app_activated_at = timezone.now()
        failover.save(update_fields=["app_activated_at"])
        audit.record("failover.app_activated", failover, system="worker")


def close_failover(
    *,
    actor: User,
    reason: str = "",
    force: bool = False,
    deactivate_at: dt.datetime | None = None,
) -> Failover:
    """Step 4 of the return to normal: end every request, then a worker deactivates the
    app, empties every group and ends the users' Okta sessions — now, or at
    ``deactivate_at`` (the guide prefers after working hours).

    It waits for every emergency user to have signed out (``checklist.still_signed_in``)
    unless ``force``, which needs a reason. A failover whose return to normal was
    not started closes only when forced; a proposed one is withdrawn.
    """
    if not can_run_failover(actor):
        raise NotAllowed("Only approvers can close a failover.")
    reason = reason.strip()
    if force and not reason:
        raise ValidationError({"reason": ["Say why you close without waiting for every sign-out."]})
    if deactivate_at is not None and deactivate_at <= timezone.now():
        deactivate_at = None  # a time already past means now
    with transaction.atomic():
        audit.lock_chain()  # the lock order: the audit chain, then rows
        failover = Failover.objects.select_for_update().current()
        if failover is None or failover.status == FailoverStatus.CLOSING:
            raise Conflict("No open failover to close.")
        if failover.status == FailoverStatus.PROPOSED:
            return _withdraw(failover, actor=actor, reason=reason)
        if failover.status == FailoverStatus.ACTIVE and not force:
            raise Conflict(
                "Start the return to normal first (Identity Center health, tell everyone to "
                "sign out), or force the close with a reason."
            )
        if failover.status == FailoverStatus.ACTIVE and deactivate_at is not None:
            raise ValidationError(
                {
                    "deactivate_at": [
                        "Start the return to normal before scheduling the deactivation."
                    ]
                }
            )
        still = checklist.still_signed_in(failover)
        if still and not force:
            names = ", ".join(sorted({req.requester.get_username() for req, _ in still}))
            raise Conflict(
                f"Still signed in: {names}. Wait for them (or remind them), or force the close "
                "with a reason."
            )
        _record_close_request(
            failover, actor=actor, reason=reason, force=force, still=still, at=deactivate_at
        )
        if deactivate_at is None:
            begin_closing(failover, actor=actor, reason=reason, force=force)
    return failover


def _withdraw(failover: Failover, *, actor: User, reason: str) -> Failover:
    """A proposed failover that nobody confirmed: nothing happened in Okta, just close it."""
    now = timezone.now()
    _move(
        failover,
        "withdraw",
        actor=actor,
        payload={"reason": reason},
        close_requested_by=actor,
        close_requested_at=now,
        closed_at=now,
    )
    messages.failover_changed(failover, "withdrawn")
    return failover


def begin_closing(
    failover: Failover,
    *,
    actor: User,
    reason: str = "",
    force: bool = False,
    scheduled: bool = False,
) -> None:
    """Lapse pending requests, revoke live grants, hand Okta to the worker (locked failover)."""
    payload: dict[str, Any] = {"reason": reason}
    if force:
        payload["forced"] = True
    if scheduled:
        payload["scheduled_by"] = actor.get_username()
    _move(
        failover,
        "begin_closing",
        actor=None if scheduled else actor,
        system="scheduler",
        payload=payload,
        close_requested_by=actor,
        close_requested_at=timezone.now(),
    )
    why = "The failover was closed."
    # The app is switched off first (its task is sent first on commit): no new sign-ins.
    queue.close_federation(failover.pk)
    for req in failover.requests.filter(status=Status.PENDING):
        request_services.lapse(req.pk, reason=why, actor=actor)
    # Every live grant revoked in one pass (one row-lock query, one audit insert, each
    # grant still its own event and its own removal task): 500 one by one took 20 s of
    # the approver's request, and Okta's first call waited for all of it.
    holding = failover.requests.filter(status__in=HOLDING_STATUSES)
    request_services.revoke_many(
        list(holding.values_list("pk", flat=True)),
        actor=actor,
        reason=why,
        due_every=removal_spacing(),
    )


# Removals a worker gets through per second when Okta's limit is not known yet.
REMOVALS_PER_SECOND = 4.0


def removal_spacing() -> float:
    """Seconds between the removals of a big close, as Okta's groups limit (the pacer's
    last reading, shared in Redis) lets them run: when each grant's removal is due."""
    limit = guard.family_limit("groups")
    return max(60.0 / limit if limit else 0.0, 1 / REMOVALS_PER_SECOND)


def confirm_closed(
    failover_id: int, *, removed_members: int, sessions_ended: list[str] | None = None
) -> None:
    with transaction.atomic():
        audit.lock_chain()  # the lock order: the audit chain, then rows
        failover = Failover.objects.select_for_update().get(pk=failover_id)
        if failover.status != FailoverStatus.CLOSING:
            return
        now = timezone.now()
        _move(
            failover,
            "close",
            system="worker",
            payload={"removed_members": removed_members},
            app_deactivated_at=failover.app_deactivated_at or now,
            groups_emptied_at=now,
            closed_at=now,
            last_error="",
        )
        messages.failover_changed(failover, "closed")
        _on_closed(failover, removed_members=removed_members, sessions_ended=sessions_ended)


def record_error(failover_id: int, error: str, *, okta_detail: str = "") -> None:
    """``error`` is shown on the pages; ``okta_detail`` (with Okta's ids) is audited only."""
    with transaction.atomic():
        audit.lock_chain()  # the lock order: the audit chain, then rows
        failover = Failover.objects.select_for_update().get(pk=failover_id)
        failover.last_error = error[:2000]
        failover.save(update_fields=["last_error"])
        audit.record(
            "failover.okta_error",
            failover,
            system="worker",
            payload={"error": error, "okta_detail": okta_detail[:2000]},
        )


def empty_federation(failover: Failover, idp: IdentityProvider) -> tuple[int, list[str]]:
    """Okta's side of closing: deactivate the app first (no new sign-ins), remove every
    member of every emergency group, verify both in Okta, then end the sessions of
    everyone who was granted access. Idempotent: a retried close repeats nothing harmful.

    Returns how many members were removed and whose sessions were ended; raises an
    IdpError (retryable when Okta still shows members or an active app).
    """
    removed = 0
    idp.deactivate_app(settings.OKTA_AWS_APP_ID)
    for role in EmergencyRole.objects.all():
        try:
            group_id = group_id_for(role, idp)  # cached on the role: no search call
            members = idp.list_group_members(group_id)
        except IdpNotFound:
            continue
        for member in members:
            idp.remove_group_member(group_id, member.id)
            removed += 1
        if members and idp.list_group_members(group_id):
            raise IdpRetryableError(f"{role.okta_group_name} still has members")
    if idp.get_app(settings.OKTA_AWS_APP_ID).status != "INACTIVE":
        raise IdpRetryableError("the federation app is still active")
    return removed, _end_sessions(failover, idp)


def removals_pending(failover: Failover) -> bool:
    """The failover's ended grants whose own removal (one deprovision task each, paced to
    Okta's rate limit) is not confirmed yet: closing waits for them rather than removing the
    same members a second time (docs/performance.md, return to normal)."""
    return AccessRequest.objects.filter(
        failover=failover, status__in=ENDED_GRANT_STATUSES, membership_removed_at__isnull=True
    ).exists()


def _end_sessions(failover: Failover, idp: IdentityProvider) -> list[str]:
    """Removing a member does not end a console session already open: revoke the Okta
    sessions (and AWS sessions, when configured) of everyone granted in this failover.
    ``end_sessions`` is idempotent per grant."""
    ended: set[str] = set()
    granted = AccessRequest.objects.filter(failover=failover, activated_at__isnull=False)
    # The grants' own removals ended most of them already: one query, not one per grant.
    done = set(
        SignInEvidence.objects.filter(
            failover=failover,
            kind=EvidenceKind.SESSIONS_REVOKED,
            source_id__startswith="portal:sessions-revoked:",  # end_sessions' own key
        ).values_list("request_id", flat=True)
    )
    for req in granted.order_by("pk"):
        if req.pk not in done:
            end_sessions(req, idp=idp)
        ended.add(req.okta_login.lower())
    return sorted(ended)


# --- The return to normal, steps 1 and 2: start --------------------------------------------


def start_return(*, actor: User, override_reason: str = "") -> Failover:
    """Check Identity Center health (or take the override), tell everyone to sign out,
    and stop taking requests: ACTIVE -> RETURNING."""
    if not can_run_failover(actor):
        raise NotAllowed("Only approvers can start the return to normal.")
    override_reason = override_reason.strip()
    health = checklist.current_health()
    if health.state != HEALTHY and not override_reason:
        raise ValidationError(
            {
                "override_reason": [
                    f"Identity Center is {health.state}, not HEALTHY: give a reason to "
                    "return to normal anyway."
                ]
            }
        )
    with transaction.atomic():
        audit.lock_chain()  # the lock order: the audit chain, then rows
        failover = Failover.objects.select_for_update().current()
        if failover is None or failover.status != FailoverStatus.ACTIVE:
            state = failover.get_status_display().lower() if failover else "not open"
            raise Conflict(
                f"The return to normal starts from an active failover (this one is {state})."
            )
        now = timezone.now()
        rows = checklist.emergency_users(failover)
        holding = list(
            failover.requests.filter(status__in=HOLDING_STATUSES).select_related("requester")
        )
        waiting = [r for r in rows if checklist.waiting_for(*r)]
        told = checklist.people([(req, None) for req in holding] + waiting)
        run, _ = ReturnToNormal.objects.get_or_create(failover=failover)
        run.started_by, run.started_at = actor, now
        run.health_state = health.state
        run.health_override_reason = override_reason if health.state != HEALTHY else ""
        run.announced_at = now
        run.announced_to = sorted(u.get_username() for u in told)
        run.save(
            update_fields=[
                "started_by",
                "started_at",
                "health_state",
                "health_override_reason",
                "announced_at",
                "announced_to",
            ]
        )
        _move(
            failover,
            "start_return",
            actor=actor,
            payload={
                "health": health.state,
                "override_reason": run.health_override_reason,
                "announced_to": run.announced_to,
            },
        )
        # Nobody will be granted access from now on: a pending request can only lapse.
        for req_id in failover.requests.filter(status=Status.PENDING).values_list("pk", flat=True):
            request_services.lapse(
                req_id, reason="The failover is returning to normal.", actor=actor
            )
        messages.return_started(failover, told)
    return failover


# --- Step 3: reminders ---------------------------------------------------------------------


def remind(
    failover_id: int, *, actor: User | None = None, now: dt.datetime | None = None
) -> list[str]:
    """Tell those still signed in, again. Returns their usernames (empty: nobody left)."""
    with transaction.atomic():
        audit.lock_chain()  # the lock order: the audit chain, then rows
        failover = Failover.objects.select_for_update().get(pk=failover_id)
        if failover.status != FailoverStatus.RETURNING:
            raise Conflict("Reminders are sent while the failover is returning to normal.")
        people = checklist.people(checklist.still_signed_in(failover))
        if not people:
            return []
        run = failover.return_to_normal
        run.reminders_sent += 1
        run.last_reminder_at = now or timezone.now()
        run.save(update_fields=["reminders_sent", "last_reminder_at"])
        names = sorted(u.get_username() for u in people)
        audit.record(
            "failover.signout_reminder",
            failover,
            actor=actor,
            system="reminder",
            payload={"still_signed_in": names, "reminder": run.reminders_sent},
        )
        messages.signout_reminder(failover, people)
    return names


def remind_now(*, actor: User) -> list[str]:
    if not can_run_failover(actor):
        raise NotAllowed("Only approvers can send reminders.")
    failover = Failover.objects.current()
    if failover is None:
        raise Conflict("No failover is returning to normal.")
    return remind(failover.pk, actor=actor)


def send_due_reminders(now: dt.datetime | None = None) -> list[int]:
    """Beat: remind those still signed in once every SIGNOUT_REMINDER_MINUTES."""
    now = now or timezone.now()
    every = dt.timedelta(minutes=settings.SIGNOUT_REMINDER_MINUTES)
    reminded = []
    for run in ReturnToNormal.objects.filter(
        failover__status=FailoverStatus.RETURNING, announced_at__isnull=False
    ):
        last = run.last_reminder_at or run.announced_at
        if last is None or last > now - every:
            continue
        # Claim this round first, so two ticks never send the same reminder.
        if not ReturnToNormal.objects.filter(
            pk=run.pk, last_reminder_at=run.last_reminder_at
        ).update(last_reminder_at=now):
            continue
        try:
            if remind(run.failover_id, now=now):
                reminded.append(run.failover_id)
        except Conflict:
            continue
    return reminded


# --- Step 4: deactivation, now or scheduled ------------------------------------------------


def _record_close_request(
    failover: Failover,
    *,
    actor: User,
    reason: str,
    force: bool,
    still: list[tuple[Any, Any]],
    at: dt.datetime | None,
) -> ReturnToNormal:
    """Keep who asked to close, why, who was still signed in, and when (inside the lock)."""
    run, _ = ReturnToNormal.objects.get_or_create(failover=failover)
    run.close_requested_by = actor
    run.close_reason = reason
    run.forced = force
    run.still_signed_in_at_close = sorted({req.requester.get_username() for req, _ in still})
    run.deactivate_at = at
    run.save(
        update_fields=[
            "close_requested_by",
            "close_reason",
            "forced",
            "still_signed_in_at_close",
            "deactivate_at",
        ]
    )
    if at is not None:
        audit.record(
            "failover.deactivation_scheduled",
            failover,
            actor=actor,
            payload={
                "at": at.isoformat(),
                "reason": reason,
                "forced": force,
                "still_signed_in": run.still_signed_in_at_close,
            },
        )
        messages.failover_changed(
            failover, f"scheduled for deactivation at {timezone.localtime(at):%Y-%m-%d %H:%M %Z}"
        )
    return run


def run_due_deactivations(now: dt.datetime | None = None) -> list[int]:
    """Beat: start closing every returning failover whose scheduled time has come."""
    now = now or timezone.now()
    started = []
    for failover_id in ReturnToNormal.objects.filter(
        failover__status=FailoverStatus.RETURNING, deactivate_at__lte=now
    ).values_list("failover_id", flat=True):
        with transaction.atomic():
            audit.lock_chain()  # the lock order: the audit chain, then rows
            failover = Failover.objects.select_for_update().get(pk=failover_id)
            run = failover.return_to_normal
            # close_failover stores the time and who asked for it together.
            asked_by = run.close_requested_by
            if (
                failover.status != FailoverStatus.RETURNING
                or run.deactivate_at is None
                or asked_by is None
            ):
                continue
            if run.deactivate_at > now:
                continue
            begin_closing(
                failover,
                actor=asked_by,
                reason=run.close_reason,
                force=run.forced,
                scheduled=True,
            )
        started.append(failover_id)
    return started


# --- Step 5: closed ------------------------------------------------------------------------


def _on_closed(
    failover: Failover, *, removed_members: int, sessions_ended: list[str] | None
) -> None:
    """The worker verified the app is off and the groups are empty (inside its transaction):
    keep the sessions ended and, for a drill, what it proved."""
    run, _ = ReturnToNormal.objects.get_or_create(failover=failover)
    changed: list[str] = []
    if sessions_ended is not None:
        run.sessions_revoked_at = timezone.now()
        run.sessions_revoked_for = sessions_ended
        changed += ["sessions_revoked_at", "sessions_revoked_for"]
        audit.record(
            "failover.sessions_ended", failover, system="worker", payload={"users": sessions_ended}
        )
    if failover.is_drill:
        items = drills.drill_checklist(failover, removed_members=removed_members)
        run.drill_checklist = [item.as_dict() for item in items]
        passed = all(item.proved for item in items)
        run.drill_result = DrillResult.PASSED if passed else DrillResult.FAILED
        changed += ["drill_checklist", "drill_result"]
        audit.record(
            "failover.drill_result",
            failover,
            system="worker",
            payload={
                "result": run.drill_result,
                "not_proved": [item.key for item in items if not item.proved],
            },
        )
    if changed:
        run.save(update_fields=changed)
    messages.report_ready(failover)
