"""Failover side effects in Okta: switch the federation app, empty the groups."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from federation import services
from federation.idp import IdpError, IdpNotFound, IdpRetryableError, get_identity_provider
from federation.models import EmergencyRole, Failover, FailoverStatus
from portal.celery import backoff_seconds

OKTA_TASK = {"bind": True, "acks_late": True, "reject_on_worker_lost": True, "max_retries": None}


def _retry(task, failover_id: int, exc: IdpError):
    services.record_error(failover_id, str(exc))
    retry_after = exc.retry_after if isinstance(exc, IdpRetryableError) else None
    # Switching the app must eventually happen: keep trying, slower and slower.
    return task.retry(countdown=backoff_seconds(min(task.request.retries, 10), retry_after))


@shared_task(name="federation.activate_federation_app", **OKTA_TASK)
def activate_federation_app(self, failover_id: int) -> None:
    failover = Failover.objects.filter(pk=failover_id).first()
    if failover is None or failover.status != FailoverStatus.ACTIVE or failover.app_activated_at:
        return
    try:
        get_identity_provider().activate_app(settings.OKTA_AWS_APP_ID)
    except IdpError as exc:
        raise _retry(self, failover_id, exc) from exc
    services.confirm_app_activated(failover_id)


@shared_task(name="federation.close_federation", **OKTA_TASK)
def close_federation(self, failover_id: int) -> None:
    """Deactivate the app first (no new sign-ins), then remove every member of every group."""
    failover = Failover.objects.filter(pk=failover_id).first()
    if failover is None or failover.status != FailoverStatus.CLOSING:
        return
    idp = get_identity_provider()
    removed = 0
    try:
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
    except IdpError as exc:
        raise _retry(self, failover_id, exc) from exc
    services.confirm_closed(failover_id, removed_members=removed)
