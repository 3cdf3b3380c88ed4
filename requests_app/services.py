"""Every change to an access request: one function per transition.

Each function locks the row, checks its guard, changes the state, writes the
audit event in the same transaction, and queues side effects on commit. Views,
the API and tasks call these; nothing else sets ``AccessRequest.status``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from federation.idp import IdentityProvider, IdpError, IdpNotFound, get_identity_provider
from federation.models import EmergencyRole, Failover, FailoverStatus
from portal import audit
from portal.accounts.identity import okta_login_for
from portal.core.access import can_request, can_write, current_approvals, is_approver
from portal.core.db import retry_on_conflict
from portal.core.errors import Conflict, DomainError, InvalidTransition, NotAllowed
from portal.core.types import User
from requests_app import eligibility, evidence, messages, queue
from requests_app.models import (
    HOLDING_STATUSES,
    OPEN_STATUSES,
    TRANSITION_ACTIONS,
    TRANSITIONS,
    AccessRequest,
    Approval,
    Status,
    oncall_approvals,
)

log = logging.getLogger(__name__)

MIN_JUSTIFICATION_WORDS = 4

# Decisions the engineer is told about come with a reason they can read, whatever the
# entry point (page, API, Slack).
REASON_REQUIRED = {
    "deny": "Give a reason for the denial: the engineer is told it.",
    "revoke": "Give a reason for revoking: the engineer is told it.",
}


def _required_reason(transition: str, reason: str) -> str:
    """``reason`` without surrounding blanks; a ValidationError on ``reason`` when empty."""
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": [REASON_REQUIRED[transition]]})
    return reason


def lock_request(request_id: int) -> AccessRequest:
    # The portal's lock order (docs/reliability.md): the audit chain first, then rows.
    audit.lock_chain()
    return (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("role__level", "role__workload_account", "requester")
        .get(pk=request_id)
    )


def check_source(req: AccessRequest, transition: str) -> None:
    """Refuse ``transition`` unless the request is in one of the states it starts from."""
    sources, target = TRANSITIONS[transition]
    if req.status not in sources:
        raise InvalidTransition(
            f"Request #{req.pk} is {req.get_status_display().lower()}; it cannot be {target}."
        )


def apply_transition(
    req: AccessRequest,
    transition: str,
    *,
    actor: User | None = None,
    system: str = "system",
    payload: dict[str, Any] | None = None,
    **fields: Any,
) -> AccessRequest:
    """Apply one row of TRANSITIONS to a locked request and record it."""
    check_source(req, transition)
    target = TRANSITIONS[transition][1]
    previous = req.status
    req.status = target
    for name, value in fields.items():
        setattr(req, name, value)
    req.save(update_fields=["status", *fields])
    audit.record(
        TRANSITION_ACTIONS.get(transition, f"request.{target}"),
        req,
        actor=actor,
        system=system,
        payload={"from": previous, **(payload or {})},
    )
    return req


# --- Filing ------------------------------------------------------------------------


def validate_request_fields(
    role: EmergencyRole, justification: str, ticket: str, duration_minutes: int
) -> None:
    errors: dict[str, list[str]] = {}
    if len(justification.split()) < MIN_JUSTIFICATION_WORDS:
        errors["justification"] = [
            "Say in at least a sentence why you need emergency access "
            f"({MIN_JUSTIFICATION_WORDS} words or more)."
        ]
    if not ticket.strip():
        errors["ticket"] = ["Give the ticket or incident reference."]
    if duration_minutes < 1 or duration_minutes > role.level.max_duration_minutes:
        errors["duration_minutes"] = [
            f"Duration must be between 1 and {role.level.max_duration_minutes} minutes "
            f"for {role.level.name}."
        ]
    if errors:
        raise ValidationError(errors)


def file_request(
    *,
    requester: User,
    role: EmergencyRole,
    justification: str,
    ticket: str,
    duration_minutes: int,
    idp: IdentityProvider | None = None,
) -> AccessRequest:
    """File a request for one emergency role while a failover is open."""
    return file_requests(
        requester=requester,
        roles=[role],
        justification=justification,
        ticket=ticket,
        duration_minutes=duration_minutes,
        idp=idp,
    )[0]


@retry_on_conflict
def file_requests(
    *,
    requester: User,
    roles: list[EmergencyRole],
    justification: str,
    ticket: str,
    duration_minutes: int,
    idp: IdentityProvider | None = None,
) -> list[AccessRequest]:
    """File one request per role, with one justification, while a failover is open.

    Each role gets its own request and its own decision; several roles filed
    together share a ``batch`` id. All or nothing: one refusal files none.
    """
    if not can_request(requester):
        raise NotAllowed("Your portal role cannot file requests.")
    if not roles:
        raise ValidationError({"role": ["Choose at least one account and access level."]})
    if len({role.pk for role in roles}) != len(roles):
        raise ValidationError({"role": ["Each emergency role can be asked for once."]})
    justification, ticket = justification.strip(), ticket.strip()
    rules = {role.pk: eligibility.check_request(requester, role) for role in roles}
    for role in roles:
        validate_request_fields(role, justification, ticket, duration_minutes)
    login = okta_login_for(requester)
    if not login:
        raise ValidationError({"__all__": ["Your portal account has no Okta login; ask an admin."]})
    okta_user_id = ""
    try:
        okta_user_id = (idp or get_identity_provider()).find_user(login).id
    except IdpNotFound:
        raise ValidationError(
            {"__all__": [f"There is no Okta account with the login {login}; ask an IdP admin."]}
        ) from None
    except IdpError as exc:
        # Okta being slow must not stop an emergency: provisioning will look again.
        log.warning("Okta lookup of the requester failed, filing anyway: %s", exc)

    try:
        return _file(
            requester, roles, justification, ticket, duration_minutes, login, okta_user_id, rules
        )
    except IntegrityError:
        # The database's ONE_OPEN_REQUEST constraint: another filing of the same role by
        # the same person committed after this one looked.
        for role in roles:
            duplicate = _open_request(requester, role)
            if duplicate is not None:
                raise Conflict(
                    f"You already have request #{duplicate.pk} open for {role.role_name}."
                ) from None
        raise


def _open_request(requester: User, role: EmergencyRole) -> AccessRequest | None:
    return AccessRequest.objects.filter(
        requester=requester, role=role, status__in=OPEN_STATUSES
    ).first()


def _file(
    requester: User,
    roles: list[EmergencyRole],
    justification: str,
    ticket: str,
    duration_minutes: int,
    login: str,
    okta_user_id: str,
    rules: dict[int, eligibility.Rule],
) -> list[AccessRequest]:
    batch = uuid.uuid4() if len(roles) > 1 else None
    filed: list[AccessRequest] = []
    with transaction.atomic():
        # Only an ACTIVE failover takes requests: not a proposed one, nor one returning
        # to normal (its users were told to sign out).
        audit.lock_chain()  # the lock order: the chain before the failover row
        failover = Failover.objects.select_for_update().open().first()
        if failover is None:
            current = Failover.objects.current()
            if current is not None and current.status == FailoverStatus.RETURNING:
                raise Conflict(
                    f"{current} is returning to normal: no new requests. Use the AWS access "
                    "portal again."
                )
            if current is not None and current.status == FailoverStatus.PROPOSED:
                raise Conflict(f"{current} waits for a second approver's confirmation.")
            raise Conflict("No failover is open: requests can be filed only during one.")
        for role in roles:
            duplicate = _open_request(requester, role)
            if duplicate is not None:
                raise Conflict(
                    f"You already have request #{duplicate.pk} open for {role.role_name}."
                )
            req = AccessRequest.objects.create(
                requester=requester,
                role=role,
                failover=failover,
                justification=justification,
                ticket=ticket,
                duration_minutes=duration_minutes,
                okta_login=login,
                okta_user_id=okta_user_id,
                batch=batch,
            )
            payload = {
                "role": role.role_name,
                "okta_group": role.okta_group_name,
                "ticket": ticket,
                "duration_minutes": duration_minutes,
                "justification": justification,
                "eligibility": rules[role.pk].text,
            }
            if batch is not None:
                payload["batch"] = str(batch)
            audit.record("request.filed", req, actor=requester, payload=payload)
            messages.request_filed(req)
            if role.level.oncall_schedule:  # the on-call rule (requests_app/oncall.py)
                queue.check_oncall(req.pk)
            filed.append(req)
    return filed


# --- Decisions -----------------------------------------------------------------------


def refuse_if_lapsed(req: AccessRequest) -> None:
    """A decision comes in time or not at all: the lapse sweep may not have run yet."""
    minutes = settings.REQUEST_LAPSE_MINUTES
    if req.status == Status.PENDING and timezone.now() >= req.created_at + dt.timedelta(
        minutes=minutes
    ):
        raise Conflict(
            f"Request #{req.pk} lapsed: it was not decided within {minutes} minutes. "
            "The requester can file a new one."
        )


@retry_on_conflict
def approve(req: AccessRequest, *, actor: User, comment: str = "") -> AccessRequest:
    """Add the actor's approval; the request is approved once enough distinct people agree."""
    with transaction.atomic():
        req = lock_request(req.pk)
        if not is_approver(actor):
            raise NotAllowed("Only approvers can approve requests.")
        if req.requester_id == actor.pk:
            raise NotAllowed("Nobody can approve their own request.")
        rule = eligibility.check_decide(actor, req.role, "approve")
        check_source(req, "approve")
        refuse_if_lapsed(req)
        if req.approvals.filter(approver=actor).exists():
            raise NotAllowed("You have already approved this request; it needs another approver.")
        Approval.objects.create(request=req, approver=actor, comment=comment)
        # Counted at decision time: only people who may still approve.
        count = current_approvals(req).count() + oncall_approvals(req.pk)
        required = req.role.level.approvals_required
        audit.record(
            "request.approval_added",
            req,
            actor=actor,
            payload={
                "comment": comment,
                "approvals": count,
                "required": required,
                "eligibility": rule.text,
            },
        )
        if count >= required:
            apply_transition(
                req,
                "approve",
                actor=actor,
                payload={"eligibility": rule.text},
                decided_at=timezone.now(),
                decided_by=actor,
                decision_comment=comment,
            )
            queue.provision_grant(req.pk)
            messages.request_decided(req)
    return req


@retry_on_conflict
def deny(req: AccessRequest, *, actor: User, reason: str) -> AccessRequest:
    with transaction.atomic():
        req = lock_request(req.pk)
        if not is_approver(actor):
            raise NotAllowed("Only approvers can deny requests.")
        if req.requester_id == actor.pk:
            raise NotAllowed("Nobody can deny their own request; cancel it instead.")
        refuse_if_lapsed(req)
        rule = eligibility.check_decide(actor, req.role, "deny")
        check_source(req, "deny")
        reason = _required_reason("deny", reason)
        apply_transition(
            req,
            "deny",
            actor=actor,
            payload={"reason": reason, "eligibility": rule.text},
            decided_at=timezone.now(),
            decided_by=actor,
            decision_comment=reason,
        )
        messages.request_decided(req)
    return req


@retry_on_conflict
def cancel(req: AccessRequest, *, actor: User, reason: str = "") -> AccessRequest:
    with transaction.atomic():
        req = lock_request(req.pk)
        if req.requester_id != actor.pk:
            raise NotAllowed("Only the requester can cancel a request.")
        apply_transition(
            req,
            "cancel",
            actor=actor,
            payload={"reason": reason},
            ended_at=timezone.now(),
            ended_by=actor,
            end_reason=reason or "Cancelled by the requester.",
        )
    return req


@retry_on_conflict
def revoke(req: AccessRequest, *, actor: User, reason: str) -> AccessRequest:
    """End a granted (or being granted) access early; the member is removed from Okta."""
    with transaction.atomic():
        req = lock_request(req.pk)
        if not is_approver(actor):
            raise NotAllowed("Only approvers can revoke access.")
        check_source(req, "revoke")
        reason = _required_reason("revoke", reason)
        apply_transition(
            req,
            "revoke",
            actor=actor,
            payload={"reason": reason},
            ended_at=timezone.now(),
            ended_by=actor,
            end_reason=reason,
        )
        queue.deprovision_grant(req.pk)
        messages.grant_ended(req)
    return req


def revoke_many(
    ids: list[int], *, actor: User, reason: str, due_every: float = 0.0
) -> list[AccessRequest]:
    """Revoke many grants at once, in the caller's transaction (closing a failover
    revokes every live grant): each is checked, moved and audited as ``revoke`` would
    (its own ``request.revoked`` event, its own removal task, its requester told), but
    with one row-lock query, one update and one audit insert for all of them.

    ``due_every``: the removals cannot all run at once (Okta's rate limit, the worker's
    pace), so the n-th grant's work is due ``n * due_every`` seconds from now: the grant
    sweep re-sends a removal only once it is overdue, not every queued one of a big close.

    Returns the grants revoked (those no longer revocable by now are left alone)."""
    if not is_approver(actor):
        raise NotAllowed("Only approvers can revoke access.")
    reason = _required_reason("revoke", reason)
    audit.lock_chain()  # the lock order: the audit chain, then rows
    # The "revoke" row of TRANSITIONS, applied to all at once the race-safe way: lock the
    # rows still in a source state, move exactly those (``apply_transition`` does it one by one).
    sources, target = TRANSITIONS["revoke"]
    previous = dict(
        AccessRequest.objects.select_for_update()
        .filter(pk__in=ids, status__in=sources)
        .values_list("pk", "status")
    )
    if not previous:
        return []
    now = timezone.now()
    AccessRequest.objects.filter(pk__in=previous, status__in=sources).update(
        status=target, ended_at=now, ended_by=actor, end_reason=reason
    )
    revoked = list(
        AccessRequest.objects.select_related("role__level", "role__workload_account", "requester")
        .filter(pk__in=previous)
        .order_by("pk")
    )
    for n, req in enumerate(revoked):
        req.work_due_at = now + dt.timedelta(seconds=n * due_every)
    AccessRequest.objects.bulk_update(revoked, ["work_due_at"], batch_size=500)
    audit.record_many(
        TRANSITION_ACTIONS.get("revoke", f"request.{target}"),
        [(req, {"from": previous[req.pk], "reason": reason}) for req in revoked],
        actor=actor,
    )
    # Okta's work is sent first (on commit, in this order), the requesters' messages after.
    for req in revoked:
        queue.send_deprovision(req.pk)
    for req in revoked:
        messages.grant_ended(req)
    return revoked


# --- The worker's side: Okta confirmed ---------------------------------------------


@retry_on_conflict
def activate(request_id: int, *, okta_user_id: str) -> AccessRequest | None:
    """Okta confirmed the membership: the grant clock starts now."""
    with transaction.atomic():
        req = lock_request(request_id)
        if req.status != Status.APPROVED:
            return None
        now = timezone.now()
        apply_transition(
            req,
            "activate",
            system="worker",
            payload={"okta_user_id": okta_user_id, "okta_group": req.role.okta_group_name},
            okta_user_id=okta_user_id,
            activated_at=now,
            expires_at=now + dt.timedelta(minutes=req.duration_minutes),
        )
        messages.grant_active(req)
    return req


@retry_on_conflict
def record_provisioning_error(
    request_id: int, error: str, *, will_retry: bool, okta_detail: str = ""
) -> None:
    """``error`` is what people read; ``okta_detail`` (Okta's own words, with its ids)
    goes to the audit log only."""
    with transaction.atomic():
        req = lock_request(request_id)
        req.provisioning_attempts += 1
        req.last_error = error[:2000]
        req.save(update_fields=["provisioning_attempts", "last_error"])
        audit.record(
            "request.okta_error",
            req,
            system="worker",
            payload={
                "error": error[:2000],
                "attempt": req.provisioning_attempts,
                "retry": will_retry,
                "okta_detail": okta_detail[:2000],
            },
        )


@retry_on_conflict
def fail(request_id: int, *, error: str) -> AccessRequest | None:
    """Provisioning gave up: show approvers; make sure no membership is left behind."""
    with transaction.atomic():
        req = lock_request(request_id)
        if req.status != Status.APPROVED:
            return None
        apply_transition(
            req,
            "fail",
            system="worker",
            payload={"error": error[:2000]},
            ended_at=timezone.now(),
            end_reason=error[:2000],
            last_error=error[:2000],
        )
        queue.deprovision_grant(req.pk)
        messages.grant_failed(req)
    return req


@retry_on_conflict
def expire(request_id: int, *, now: dt.datetime | None = None) -> AccessRequest | None:
    """End an active grant whose time is up (no-op if it is not due or not active)."""
    now = now or timezone.now()
    with transaction.atomic():
        req = lock_request(request_id)
        if req.status != Status.ACTIVE or req.expires_at is None or req.expires_at > now:
            return None
        apply_transition(
            req,
            "expire",
            system="expiry",
            ended_at=now,
            end_reason="The granted time ran out.",
        )
        queue.deprovision_grant(req.pk)
        messages.grant_ended(req)
    return req


@retry_on_conflict
def lapse(request_id: int, *, reason: str, actor: User | None = None) -> AccessRequest | None:
    with transaction.atomic():
        req = lock_request(request_id)
        if req.status != Status.PENDING:
            return None
        apply_transition(
            req,
            "lapse",
            actor=actor,
            system="lapse",
            payload={"reason": reason},
            ended_at=timezone.now(),
            end_reason=reason,
        )
    return req


@retry_on_conflict
def confirm_membership_removed(request_id: int, *, detail: str) -> None:
    with transaction.atomic():
        req = lock_request(request_id)
        if req.membership_removed_at is not None:
            return
        req.membership_removed_at = timezone.now()
        req.save(update_fields=["membership_removed_at"])
        audit.record(
            "request.membership_removed",
            req,
            system="worker",
            payload={"okta_group": req.role.okta_group_name, "detail": detail},
        )


@retry_on_conflict
def confirm_signed_out(req: AccessRequest, actor: User) -> AccessRequest:
    """The person who held the access says they signed out of the AWS console.

    Evidence, not a transition: the status does not change. Pressing it again
    while already signed out by their own word (no sign-in seen since) is a no-op.
    """
    with transaction.atomic():
        req = lock_request(req.pk)
        if req.requester_id != actor.pk or not can_write(actor):
            raise NotAllowed("Only the person who held the access can say they signed out.")
        # permissions.can_confirm_signed_out shows the button on the same two conditions.
        if req.activated_at is None:
            raise InvalidTransition(
                f"Request #{req.pk} was never granted: there is nothing to sign out of."
            )
        status = evidence.sign_out_status(req)
        if status.signed_out and status.how == evidence.SELF_REPORTED:
            return req
        now = timezone.now()
        evidence.record_self_reported(req, at=now)
        audit.record(
            "request.signed_out",
            req,
            actor=actor,
            payload={"last_sign_in": status.last_sign_in, "evidence": "self-reported"},
        )
    return req


def holds_other_grant(req: AccessRequest) -> bool:
    """Does the same person hold another live grant for the same group?"""
    return (
        AccessRequest.objects.filter(
            okta_login=req.okta_login, role_id=req.role_id, status__in=HOLDING_STATUSES
        )
        .exclude(pk=req.pk)
        .exists()
    )


@retry_on_conflict
def end_own_grant(req: AccessRequest, *, actor: User, reason: str = "") -> AccessRequest:
    """The requester ends their own access early ("End my access now"): like a revoke,
    the Okta membership is removed and their sessions are ended."""
    with transaction.atomic():
        req = lock_request(req.pk)
        if req.requester_id != actor.pk or not can_request(actor):
            raise NotAllowed("Only the person who holds the access can end it early.")
        apply_transition(
            req,
            "end",
            actor=actor,
            payload={"reason": reason, "ended_by_requester": True},
            ended_at=timezone.now(),
            ended_by=actor,
            end_reason=reason or "Ended early by the requester.",
        )
        queue.deprovision_grant(req.pk)
        messages.grant_ended(req)
    return req


# --- Bulk approval (an incident surge) ----------------------------------------------


@dataclass(frozen=True)
class BulkOutcome:
    """What happened to one request of a bulk approval."""

    id: int
    approved: bool  # this approver's approval was recorded
    status: str  # the request's status afterwards ("" when it does not exist)
    error: str = ""


def approve_many(ids: list[int], *, actor: User, comment: str = "") -> list[BulkOutcome]:
    """Approve each request as ``approve`` would, one transaction each, in the order given.

    Each is decided and audited on its own, with the same guards (nobody approves
    their own request, one approval per person, only pending requests); one
    refusal does not stop the others. Returns one outcome per distinct id.
    """
    if not is_approver(actor):
        raise NotAllowed("Only approvers can approve requests.")
    outcomes = []
    for pk in dict.fromkeys(ids):  # each id once, order kept
        try:
            req = approve(AccessRequest(pk=pk), actor=actor, comment=comment)
        except AccessRequest.DoesNotExist:
            outcomes.append(BulkOutcome(pk, False, "", f"Request #{pk} does not exist."))
        except DomainError as exc:
            status = AccessRequest.objects.filter(pk=pk).values_list("status", flat=True).first()
            outcomes.append(BulkOutcome(pk, False, status or "", str(exc)))
        except DatabaseError:
            # A deadlock or lost connection on one request must not stop the others.
            log.exception("bulk approval of request %s failed", pk)
            error = f"Request #{pk} could not be approved (database error); try it again."
            outcomes.append(BulkOutcome(pk, False, "", error))
        else:
            outcomes.append(BulkOutcome(pk, True, req.status))
    return outcomes
