"""The failover lifecycle: declare a disruption (or a drill), and close it again.

NORMAL -> ACTIVE (federation app activated) -> CLOSING (app deactivated, every
emergency group emptied) -> CLOSED.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from federation.models import Failover, FailoverStatus
from portal import audit, notifications
from portal.access import can_run_failover
from portal.errors import Conflict, NotAllowed


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
            failover = Failover.objects.create(
                opened_by=actor, reason=reason.strip(), is_drill=drill
            )
            audit.record(
                "failover.opened", failover, actor=actor, payload={"reason": reason, "drill": drill}
            )
            transaction.on_commit(lambda: tasks.activate_federation_app.delay(failover.pk))
            notifications.failover_changed(failover, "opened")
    except IntegrityError:
        # Two approvers declared at the same moment: the other one won.
        raise Conflict("A failover was opened at the same moment by someone else.") from None
    return failover


def confirm_app_activated(failover_id: int) -> None:
    with transaction.atomic():
        failover = Failover.objects.select_for_update().get(pk=failover_id)
        if failover.app_activated_at is not None or failover.status != FailoverStatus.ACTIVE:
            return
        failover.app_activated_at = timezone.now()
        failover.save(update_fields=["app_activated_at"])
        audit.record("failover.app_activated", failover, system="worker")


def close_failover(*, actor: AbstractBaseUser, reason: str = "") -> Failover:
    """Return to normal: end every request, then a worker deactivates the app and empties groups."""
    from federation import tasks
    from requests_app import services as request_services
    from requests_app.models import HOLDING_STATUSES, Status

    if not can_run_failover(actor):
        raise NotAllowed("Only approvers can close a failover.")
    with transaction.atomic():
        failover = Failover.objects.select_for_update().current()
        if failover is None or failover.status != FailoverStatus.ACTIVE:
            raise Conflict("No open failover to close.")
        failover.status = FailoverStatus.CLOSING
        failover.close_requested_by = actor
        failover.close_requested_at = timezone.now()
        failover.save(update_fields=["status", "close_requested_by", "close_requested_at"])
        audit.record("failover.closing", failover, actor=actor, payload={"reason": reason})
        for req in failover.requests.filter(status=Status.PENDING):
            request_services.lapse(req.pk, reason="The failover was closed.", actor=actor)
        for req in failover.requests.filter(status__in=HOLDING_STATUSES):
            request_services.revoke(req, actor=actor, reason="The failover was closed.")
        transaction.on_commit(lambda: tasks.close_federation.delay(failover.pk))
    return failover


def confirm_closed(failover_id: int, *, removed_members: int) -> None:
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


def record_error(failover_id: int, error: str) -> None:
    with transaction.atomic():
        failover = Failover.objects.select_for_update().get(pk=failover_id)
        failover.last_error = error[:2000]
        failover.save(update_fields=["last_error"])
        audit.record("failover.okta_error", failover, system="worker", payload={"error": error})
