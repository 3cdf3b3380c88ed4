"""The failover lifecycle: declare a disruption (or a drill), and close it again.

NORMAL -> [PROPOSED (a second approver confirms)] -> ACTIVE (federation app
activated) -> RETURNING (IdC healthy, users told to sign out; federation/runbook.py)
-> CLOSING (app deactivated, every emergency group emptied, sessions ended) -> CLOSED.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from federation.idp import IdentityProvider, IdpNotFound, IdpRetryableError
from federation.models import EmergencyRole, Failover, FailoverStatus
from portal import audit
from portal import notify as notifications
from portal.core.access import can_run_failover
from portal.core.errors import Conflict, NotAllowed


def open_failover(*, actor: AbstractBaseUser, reason: str, drill: bool = False) -> Failover:
    """Declare a disruption: the federation app is activated by a worker."""
    from federation import tasks

    if not can_run_failover(actor):
        raise NotAllowed("Only approvers can declare a disruption.")
    if not reason.strip():
        raise ValidationError({"reason": ["Say why the failover is opened."]})
    try:
        with transaction.atomic():
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
                notifications.failover_proposed(failover)
                return failover
            audit.record(
                "failover.opened", failover, actor=actor, payload={"reason": reason, "drill": drill}
            )
            transaction.on_commit(lambda: tasks.activate_federation_app.delay(failover.pk))
            notifications.failover_changed(failover, "opened")
    except IntegrityError:
        # Two approvers declared at the same moment: the other one won.
        raise Conflict("A failover was opened at the same moment by someone else.") from None
    return failover


def confirm_failover(*, actor: AbstractBaseUser) -> Failover:
    """A second, different approver confirms a proposed real failover: the app is activated."""
    from federation import tasks

    if not can_run_failover(actor):
        raise NotAllowed("Only approvers can confirm a failover.")
    with transaction.atomic():
        failover = Failover.objects.select_for_update().current()
        if failover is None or failover.status != FailoverStatus.PROPOSED:
            raise Conflict("No proposed failover is waiting for confirmation.")
        if failover.opened_by_id == actor.pk:
            raise NotAllowed("A second, different approver must confirm the failover.")
        failover.status = FailoverStatus.ACTIVE
        failover.confirmed_by = actor
        failover.confirmed_at = timezone.now()
        failover.save(update_fields=["status", "confirmed_by", "confirmed_at"])
        audit.record("failover.confirmed", failover, actor=actor)
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
        transaction.on_commit(lambda: tasks.activate_federation_app.delay(failover.pk))
        notifications.failover_changed(failover, "opened")
    return failover


def confirm_app_activated(failover_id: int) -> None:
    with transaction.atomic():
        failover = Failover.objects.select_for_update().get(pk=failover_id)
        if failover.app_activated_at is not None or failover.status != FailoverStatus.ACTIVE:
            return
        failover.app_activated_at = timezone.now()
        failover.save(update_fields=["app_activated_at"])
        audit.record("failover.app_activated", failover, system="worker")


def close_failover(
    *,
    actor: AbstractBaseUser,
    reason: str = "",
    force: bool = False,
    deactivate_at: dt.datetime | None = None,
) -> Failover:
    """Step 4 of the return to normal: end every request, then a worker deactivates the
    app, empties every group and ends the users' Okta sessions — now, or at
    ``deactivate_at`` (the guide prefers after working hours).

    It waits for every emergency user to have signed out (federation/runbook.py)
    unless ``force``, which needs a reason. A failover whose return to normal was
    not started closes only when forced; a proposed one is withdrawn.
    """
    from federation.failover import runbook

    if not can_run_failover(actor):
        raise NotAllowed("Only approvers can close a failover.")
    reason = reason.strip()
    if force and not reason:
        raise ValidationError({"reason": ["Say why you close without waiting for every sign-out."]})
    if deactivate_at is not None and deactivate_at <= timezone.now():
        deactivate_at = None  # a time already past means now
    with transaction.atomic():
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
        still = runbook.still_signed_in(failover)
        if still and not force:
            names = ", ".join(sorted({req.requester.get_username() for req, _ in still}))
            raise Conflict(
                f"Still signed in: {names}. Wait for them (or remind them), or force the close "
                "with a reason."
            )
        runbook.record_close_request(
            failover, actor=actor, reason=reason, force=force, still=still, at=deactivate_at
        )
        if deactivate_at is None:
            begin_closing(failover, actor=actor, reason=reason, force=force)
    return failover


def _withdraw(failover: Failover, *, actor: AbstractBaseUser, reason: str) -> Failover:
    """A proposed failover that nobody confirmed: nothing happened in Okta, just close it."""
    now = timezone.now()
    failover.status = FailoverStatus.CLOSED
    failover.close_requested_by, failover.close_requested_at = actor, now
    failover.closed_at = now
    failover.save(update_fields=["status", "close_requested_by", "close_requested_at", "closed_at"])
    audit.record("failover.withdrawn", failover, actor=actor, payload={"reason": reason})
    notifications.failover_changed(failover, "withdrawn")
    return failover


def begin_closing(
    failover: Failover,
    *,
    actor: AbstractBaseUser,
    reason: str = "",
    force: bool = False,
    scheduled: bool = False,
) -> None:
    """Lapse pending requests, revoke live grants, hand Okta to the worker (locked failover)."""
    from federation import tasks
    from requests_app import services as request_services
    from requests_app.models import HOLDING_STATUSES, Status

    failover.status = FailoverStatus.CLOSING
    failover.close_requested_by = actor
    failover.close_requested_at = timezone.now()
    failover.save(update_fields=["status", "close_requested_by", "close_requested_at"])
    payload: dict[str, object] = {"reason": reason}
    if force:
        payload["forced"] = True
    if scheduled:
        payload["scheduled_by"] = actor.get_username()
    audit.record(
        "failover.closing",
        failover,
        actor=None if scheduled else actor,
        system="scheduler",
        payload=payload,
    )
    why = "The failover was closed."
    for req in failover.requests.filter(status=Status.PENDING):
        request_services.lapse(req.pk, reason=why, actor=actor)
    for req in failover.requests.filter(status__in=HOLDING_STATUSES):
        request_services.revoke(req, actor=actor, reason=why)
    transaction.on_commit(lambda: tasks.close_federation.delay(failover.pk))


def confirm_closed(
    failover_id: int, *, removed_members: int, sessions_ended: list[str] | None = None
) -> None:
    with transaction.atomic():
        failover = Failover.objects.select_for_update().get(pk=failover_id)
        if failover.status != FailoverStatus.CLOSING:
            return
        now = timezone.now()
        failover.status = FailoverStatus.CLOSED
        failover.app_deactivated_at = failover.app_deactivated_at or now
        failover.groups_emptied_at = now
        failover.closed_at = now
        failover.last_error = ""
        failover.save()
        audit.record(
            "failover.closed",
            failover,
            system="worker",
            payload={"removed_members": removed_members},
        )
        notifications.failover_changed(failover, "closed")
        from federation.failover import runbook

        runbook.on_closed(failover, removed_members=removed_members, sessions_ended=sessions_ended)


def record_error(failover_id: int, error: str, *, okta_detail: str = "") -> None:
    """``error`` is shown on the pages; ``okta_detail`` (with Okta's ids) is audited only."""
    with transaction.atomic():
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
            group = idp.find_group(role.okta_group_name)
        except IdpNotFound:
            continue
        for member in idp.list_group_members(group.id):
            idp.remove_group_member(group.id, member.id)
            removed += 1
        if idp.list_group_members(group.id):
            raise IdpRetryableError(f"{role.okta_group_name} still has members")
    if idp.get_app(settings.OKTA_AWS_APP_ID).status != "INACTIVE":
        raise IdpRetryableError("the federation app is still active")
    return removed, _end_sessions(failover, idp)


def _end_sessions(failover: Failover, idp: IdentityProvider) -> list[str]:
    """Removing a member does not end a console session already open: revoke the Okta
    sessions (and AWS sessions, when configured) of everyone granted in this failover.
    ``end_sessions`` is idempotent per grant."""
    from requests_app.evidence import end_sessions
    from requests_app.models import AccessRequest

    ended: set[str] = set()
    granted = AccessRequest.objects.filter(failover=failover, activated_at__isnull=False)
    for req in granted.order_by("pk"):
        end_sessions(req, idp=idp)
        ended.add(req.okta_login.lower())
    return sorted(ended)
