"""Break-glass: when no approver answers, the requester activates the grant themselves.

Only for a level whose plan says ``break_glass = true``, only while the request's
failover is ACTIVE (a drill included: drills exercise it), only after the request
waited ``break_glass_after_minutes`` unanswered, and only by the requester (still
eligible) who types the confirmation phrase and gives the ticket; the page view also
asks for a fresh sign-in (``@step_up``). The grant is capped at the level's
``break_glass_max_minutes``, every approver and staff member is alerted at once,
and a post-hoc review opens: two approvers other than the requester accept or flag
it within ``BREAK_GLASS_REVIEW_HOURS`` (one flag is enough to flag it, and alerts
staff); an overdue review is escalated by beat. Extensions of a break-glass grant
go through the normal approval (requests_app/extensions.py): nothing here extends.

Like ``requests_app.services``: each function locks, checks, changes state through a
transitions table, records the audit event and queues side effects on commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from federation.models import FailoverStatus
from portal import audit
from portal.core.access import can_write, is_approver
from portal.core.errors import Conflict, InvalidTransition, NotAllowed
from portal.core.types import User
from requests_app import eligibility, messages, queue
from requests_app.models import (
    REVIEW_TRANSITIONS,
    AccessRequest,
    BreakGlassReview,
    ReviewStatus,
    ReviewVerdict,
    Status,
    Verdict,
)
from requests_app.services import apply_transition, check_source, lock_request

# What the requester types: the words make them stop and read what they are doing.
CONFIRMATION_PHRASE = "break glass"


def confirmation_for(req: AccessRequest) -> str:
    return f"{CONFIRMATION_PHRASE} #{req.pk}"


@dataclass(frozen=True)
class Availability:
    """Whether break-glass is open for a request now, and if not, why (or from when)."""

    available: bool
    reason: str
    from_time: dt.datetime | None = None


def availability(req: AccessRequest, now: dt.datetime | None = None) -> Availability:
    """The conditions, other than who asks, under which break-glass may be used."""
    now = now or timezone.now()
    level = req.role.level
    if req.status != Status.PENDING:
        return Availability(False, f"request #{req.pk} is {req.get_status_display().lower()}")
    if not level.break_glass:
        return Availability(False, f"the access plan allows no break-glass for {level.name}")
    if req.failover.status != FailoverStatus.ACTIVE:
        return Availability(False, f"{req.failover} is not active")
    opens = req.created_at + dt.timedelta(minutes=level.break_glass_after_minutes)
    if now < opens:
        return Availability(
            False,
            f"break-glass opens {level.break_glass_after_minutes} min after filing, if no "
            "approver has decided by then",
            opens,
        )
    return Availability(True, "no approver decided in time", opens)


def can_break_glass(user: Any, req: AccessRequest, now: dt.datetime | None = None) -> bool:
    """Show the button: the requester, on a request where break-glass is open now."""
    return can_write(user) and req.requester_id == user.pk and availability(req, now).available


def activate(
    req: AccessRequest,
    *,
    actor: User,
    confirmation: str,
    ticket: str,
    now: dt.datetime | None = None,
) -> AccessRequest:
    """The requester activates their own pending request; a review opens."""
    with transaction.atomic():
        req = lock_request(req.pk)
        if not can_write(actor) or req.requester_id != actor.pk:
            raise NotAllowed("Only the requester can break the glass on their own request.")
        check_source(req, "break_glass")
        rule = eligibility.check_request(actor, req.role)
        now = now or timezone.now()
        state = availability(req, now)
        if not state.available:
            raise Conflict(f"Break-glass is not available: {state.reason}.")
        errors: dict[str, list[str]] = {}
        if confirmation.strip().lower() != confirmation_for(req).lower():
            errors["confirmation"] = [f'Type "{confirmation_for(req)}" to confirm.']
        if not ticket.strip():
            errors["ticket"] = ["Give the ticket or incident reference."]
        if errors:
            raise ValidationError(errors)
        level = req.role.level
        minutes = min(req.duration_minutes, level.break_glass_max_minutes)
        waited = round((now - req.created_at).total_seconds() / 60)
        apply_transition(
            req,
            "break_glass",
            actor=actor,
            payload={
                "ticket": ticket.strip(),
                "waited_minutes": waited,
                "duration_minutes": minutes,
                "requested_minutes": req.duration_minutes,
                "eligibility": rule.text,
                "drill": req.failover.is_drill,
            },
            decided_at=now,
            decided_by=actor,
            decision_comment=f"Break-glass: no approver decided within {waited} min.",
            break_glass=True,
            duration_minutes=minutes,
        )
        review = BreakGlassReview.objects.create(
            request=req, due_at=now + dt.timedelta(hours=settings.BREAK_GLASS_REVIEW_HOURS)
        )
        audit.record(
            "break_glass.review_opened",
            req,
            system="break_glass",
            payload={"review": review.pk, "due_at": review.due_at.isoformat()},
        )
        queue.provision_grant(req.pk)
        messages.break_glass_activated(req, review)
    return req


# --- The post-hoc review ------------------------------------------------------------------


def _move_review(
    review: BreakGlassReview,
    transition: str,
    *,
    actor: User | None = None,
    system: str = "break_glass",
    payload: dict[str, Any] | None = None,
) -> BreakGlassReview:
    sources, target, action = REVIEW_TRANSITIONS[transition]
    if review.status not in sources:
        raise InvalidTransition(f"The review of request #{review.request_id} is {review.status}.")
    review.status = target
    review.closed_at = timezone.now()
    review.save(update_fields=["status", "closed_at"])
    audit.record(
        action,
        review.request,
        actor=actor,
        system=system,
        payload={"review": review.pk, **(payload or {})},
    )
    return review


def may_review(user: Any, review: BreakGlassReview) -> bool:
    """The buttons: an approver other than the requester, who has not given a verdict."""
    return (
        review.status == ReviewStatus.OPEN
        and can_write(user)
        and is_approver(user)
        and review.request.requester_id != user.pk
        and all(v.reviewer_id != user.pk for v in review.verdicts.all())
    )


def review(req: AccessRequest, *, actor: User, verdict: str, comment: str = "") -> BreakGlassReview:
    """One approver's verdict: two accepts accept the use; one flag flags it (staff told)."""
    if verdict not in Verdict.values:
        raise ValidationError({"verdict": ['Say "accept" or "flag".']})
    with transaction.atomic():
        req = lock_request(req.pk)
        found = BreakGlassReview.objects.select_for_update().filter(request=req).first()
        if found is None:
            raise InvalidTransition(f"Request #{req.pk} was not a break-glass grant.")
        if not is_approver(actor) or not can_write(actor):
            raise NotAllowed("Only approvers review break-glass use.")
        if req.requester_id == actor.pk:
            raise NotAllowed("Nobody reviews their own break-glass use.")
        if found.status != ReviewStatus.OPEN:
            raise InvalidTransition(f"The review of request #{req.pk} is already {found.status}.")
        if found.verdicts.filter(reviewer=actor).exists():
            raise NotAllowed("You have already reviewed this; it needs another approver.")
        if verdict == Verdict.FLAG and not comment.strip():
            raise ValidationError({"comment": ["Say what is wrong with this use."]})
        given = ReviewVerdict.objects.create(
            review=found, reviewer=actor, verdict=verdict, comment=comment.strip()
        )
        accepts = found.verdicts.filter(verdict=Verdict.ACCEPT).count()
        audit.record(
            "break_glass.verdict",
            req,
            actor=actor,
            payload={
                "review": found.pk,
                "verdict": verdict,
                "comment": comment,
                "accepts": accepts,
            },
        )
        if verdict == Verdict.FLAG:
            _move_review(found, "flag", actor=actor, payload={"comment": comment})
            messages.break_glass_flagged(found, given)
        elif accepts >= settings.BREAK_GLASS_REVIEWERS:
            _move_review(found, "accept", actor=actor, payload={"accepts": accepts})
    return found


def escalate_overdue(now: dt.datetime | None = None) -> list[int]:
    """Open reviews past their due time: tell approvers and staff again (at most once per
    ``BREAK_GLASS_ESCALATION_MINUTES``). Returns the requests escalated."""
    now = now or timezone.now()
    again = now - dt.timedelta(minutes=settings.BREAK_GLASS_ESCALATION_MINUTES)
    due = BreakGlassReview.objects.filter(status=ReviewStatus.OPEN, due_at__lte=now)
    escalated: list[int] = []
    for review_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            audit.lock_chain()  # the lock order (docs/reliability.md): the chain, then rows
            found = (
                BreakGlassReview.objects.select_for_update()
                .select_related("request__requester", "request__role__level")
                .get(pk=review_id)
            )
            if found.status != ReviewStatus.OPEN or (
                found.last_escalated_at is not None and found.last_escalated_at > again
            ):
                continue
            found.escalations += 1
            found.last_escalated_at = now
            found.save(update_fields=["escalations", "last_escalated_at"])
            audit.record(
                "break_glass.review_overdue",
                found.request,
                system="escalation",
                payload={"review": found.pk, "escalation": found.escalations},
            )
            messages.break_glass_review_overdue(found)
            escalated.append(found.request_id)
    return escalated
