"""More time on an active grant, instead of a new request.

An extension is a smaller approval than the request itself: one approver other
than the requester (``EXTENSION_APPROVALS_REQUIRED``), whatever the level, and
bounded so the grant's total time (the requested duration plus every approved
extension) never exceeds the level's maximum. On approval the grant's end
moves; every step is an audit event on the request, so its timeline shows it.

Like ``requests_app.services``: each function locks, checks its guard, changes
state, records the audit event and queues notifications on commit.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from federation.models import FailoverStatus
from portal import audit
from portal.core.access import can_write, is_approver
from portal.core.errors import Conflict, InvalidTransition, NotAllowed
from portal.core.types import User
from requests_app import eligibility, messages
from requests_app.models import (
    EXTENSION_TRANSITIONS,
    AccessRequest,
    Extension,
    ExtensionApproval,
    ExtensionStatus,
    Status,
)
from requests_app.services import MIN_JUSTIFICATION_WORDS, lock_request

EXTENSION_APPROVALS_REQUIRED = 1


def granted_minutes(req: AccessRequest) -> int:
    """The requested duration plus every approved extension."""
    extra = req.extensions.filter(status=ExtensionStatus.APPROVED).aggregate(m=Sum("minutes"))["m"]
    return req.duration_minutes + (extra or 0)


def remaining_minutes(req: AccessRequest, granted: int | None = None) -> int:
    """How many more minutes the level's maximum still allows (``granted``: the request's
    ``granted_minutes``, when the caller has it already)."""
    if granted is None:
        granted = granted_minutes(req)
    return max(0, req.role.level.max_duration_minutes - granted)


def _locked_extension(ext_id: int) -> tuple[Extension, AccessRequest]:
    # The request first, always: expiry and revocation lock it too.
    request_id = Extension.objects.values_list("request_id", flat=True).get(pk=ext_id)
    req = lock_request(request_id)
    audit.lock_chain()  # the lock order: the audit chain, then rows
    ext = Extension.objects.select_for_update().select_related("requested_by").get(pk=ext_id)
    return ext, req


def _move(
    ext: Extension,
    req: AccessRequest,
    transition: str,
    *,
    actor: User | None = None,
    system: str = "system",
    payload: dict[str, Any] | None = None,
    **fields: Any,
) -> Extension:
    """Apply one row of EXTENSION_TRANSITIONS to a locked extension; audit it on the request."""
    sources, target, action = EXTENSION_TRANSITIONS[transition]
    if ext.status not in sources:
        raise InvalidTransition(f"Extension #{ext.pk} is already {ext.status}.")
    ext.status = target
    for name, value in fields.items():
        setattr(ext, name, value)
    ext.save(update_fields=["status", *fields])
    audit.record(
        action, req, actor=actor, system=system, payload={"extension": ext.pk, **(payload or {})}
    )
    return ext


def _returning(req: AccessRequest) -> bool:
    return req.failover.status != FailoverStatus.ACTIVE


def _refuse_if_ended(req: AccessRequest) -> None:
    """Access past its end stays ended, even before the expiry sweep has run."""
    if req.status == Status.ACTIVE and req.expires_at and req.expires_at <= timezone.now():
        raise Conflict(
            f"Request #{req.pk}'s access ended at {req.expires_at:%Y-%m-%d %H:%M} UTC: "
            "it cannot be extended; file a new request."
        )


def request_extension(
    req: AccessRequest, *, actor: User, minutes: int, justification: str
) -> Extension:
    """The requester asks for ``minutes`` more on their active grant."""
    justification = justification.strip()
    with transaction.atomic():
        req = lock_request(req.pk)
        if not can_write(actor) or req.requester_id != actor.pk:
            raise NotAllowed("Only the requester can ask to extend their access.")
        if req.status != Status.ACTIVE:
            raise InvalidTransition(
                f"Request #{req.pk} is {req.get_status_display().lower()}; only active access "
                "can be extended."
            )
        _refuse_if_ended(req)
        if _returning(req):
            raise Conflict("The failover is returning to normal: access is not extended now.")
        if req.extensions.filter(status=ExtensionStatus.PENDING).exists():
            raise Conflict("An extension of this request is already waiting for approval.")
        errors: dict[str, list[str]] = {}
        left = remaining_minutes(req)
        if left < 1:
            errors["minutes"] = [
                f"This grant already has the {req.role.level.name} maximum of "
                f"{req.role.level.max_duration_minutes} minutes; file a new request."
            ]
        elif not 1 <= minutes <= left:
            errors["minutes"] = [f"Ask for between 1 and {left} more minutes."]
        if len(justification.split()) < MIN_JUSTIFICATION_WORDS:
            errors["justification"] = [
                f"Say in a sentence why you need more time ({MIN_JUSTIFICATION_WORDS} words "
                "or more)."
            ]
        if errors:
            raise ValidationError(errors)
        ext = Extension.objects.create(
            request=req, requested_by=actor, minutes=minutes, justification=justification
        )
        audit.record(
            "request.extension_requested",
            req,
            actor=actor,
            payload={"extension": ext.pk, "minutes": minutes, "justification": justification},
        )
        messages.extension_requested(ext)
    return ext


def _lapse_if_moot(ext_id: int) -> None:
    """The grant ended before anyone decided: the extension can never apply."""
    with transaction.atomic():
        ext, req = _locked_extension(ext_id)
        if ext.status != ExtensionStatus.PENDING or req.status == Status.ACTIVE:
            return
        _move(
            ext,
            req,
            "lapse",
            payload={"reason": f"the grant is {req.status}"},
            decided_at=timezone.now(),
        )


def approve_extension(ext: Extension, *, actor: User, comment: str = "") -> Extension:
    with transaction.atomic():
        ext, req = _locked_extension(ext.pk)
        if not is_approver(actor):
            raise NotAllowed("Only approvers can approve an extension.")
        if req.requester_id == actor.pk:
            raise NotAllowed("Nobody can approve their own extension.")
        rule = eligibility.check_decide(actor, req.role, "approve")
        if ext.status != ExtensionStatus.PENDING:
            raise InvalidTransition(f"Extension #{ext.pk} is already {ext.status}.")
        moot = req.status != Status.ACTIVE
        if not moot:
            _refuse_if_ended(req)
            if _returning(req):
                raise Conflict("The failover is returning to normal: access is not extended now.")
            if ext.approvals.filter(approver=actor).exists():
                raise NotAllowed("You have already approved this extension.")
            if ext.minutes > remaining_minutes(req):
                raise Conflict(
                    f"{ext.minutes} more minutes would exceed the {req.role.level.name} maximum "
                    f"of {req.role.level.max_duration_minutes} minutes."
                )
            ExtensionApproval.objects.create(extension=ext, approver=actor, comment=comment)
            count = ext.approvals.count()
            audit.record(
                "request.extension_approval_added",
                req,
                actor=actor,
                payload={
                    "extension": ext.pk,
                    "comment": comment,
                    "approvals": count,
                    "eligibility": rule.text,
                },
            )
            if count >= EXTENSION_APPROVALS_REQUIRED:
                _apply(ext, req, actor=actor, comment=comment, rule=rule)
    if moot:
        _lapse_if_moot(ext.pk)
        raise Conflict(f"Request #{req.pk} is no longer active; the extension lapsed.")
    return ext


def _apply(
    ext: Extension, req: AccessRequest, *, actor: User, comment: str, rule: eligibility.Rule
) -> None:
    previous = req.expires_at
    if previous is None:  # only an active grant (which always ends) gets more time
        raise Conflict(f"Request #{req.pk} has no end time to extend.")
    until = previous + dt.timedelta(minutes=ext.minutes)
    req.expires_at = until
    req.save(update_fields=["expires_at"])
    _move(
        ext,
        req,
        "approve",
        actor=actor,
        payload={
            "minutes": ext.minutes,
            "from": previous.isoformat(),
            "until": until.isoformat(),
            # This extension is not counted as approved until _move has saved it.
            "granted_minutes": granted_minutes(req) + ext.minutes,
            "eligibility": rule.text,
        },
        decided_at=timezone.now(),
        decided_by=actor,
        decision_comment=comment,
        previous_expires_at=previous,
        new_expires_at=req.expires_at,
    )
    messages.extension_decided(ext)


def deny_extension(ext: Extension, *, actor: User, reason: str = "") -> Extension:
    with transaction.atomic():
        ext, req = _locked_extension(ext.pk)
        if not is_approver(actor) or req.requester_id == actor.pk:
            raise NotAllowed("Only approvers other than the requester can deny an extension.")
        rule = eligibility.check_decide(actor, req.role, "deny")
        _move(
            ext,
            req,
            "deny",
            actor=actor,
            payload={"reason": reason, "eligibility": rule.text},
            decided_at=timezone.now(),
            decided_by=actor,
            decision_comment=reason,
        )
        messages.extension_decided(ext)
    return ext


def cancel_extension(ext: Extension, *, actor: User) -> Extension:
    with transaction.atomic():
        ext, req = _locked_extension(ext.pk)
        if req.requester_id != actor.pk or not can_write(actor):
            raise NotAllowed("Only the requester can withdraw their extension.")
        _move(ext, req, "cancel", actor=actor, decided_at=timezone.now())
    return ext
