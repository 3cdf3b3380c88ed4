"""Make Okta match the database: the desired-state side of a grant.

The database says who should be in each emergency group now; these functions
make the Okta groups agree. All of them are idempotent: running one twice, or
after the work was already done, changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from federation.idp import IdentityProvider, IdpError, IdpNotFound, IdpUnavailable
from federation.models import EmergencyRole
from portal import audit
from portal.core import scheduler
from requests_app import messages, queue, services
from requests_app.evidence import end_sessions
from requests_app.models import ENDED_GRANT_STATUSES, HOLDING_STATUSES, AccessRequest, Status

log = logging.getLogger(__name__)


def group_id_for(role: EmergencyRole, idp: IdentityProvider) -> str:
    """The Okta id of the role's group (looked up by name once, then cached)."""
    if not role.okta_group_id:
        role.okta_group_id = idp.find_group(role.okta_group_name).id
        EmergencyRole.objects.filter(pk=role.pk).update(okta_group_id=role.okta_group_id)
    return role.okta_group_id


def provision_grant(request_id: int, idp: IdentityProvider) -> bool:
    """Add the requester to the group; True once the grant is active (or already was)."""
    req = AccessRequest.objects.select_related("role").get(pk=request_id)
    if req.status != Status.APPROVED:
        return req.status == Status.ACTIVE
    user_id = req.okta_user_id or idp.find_user(req.okta_login).id
    idp.add_group_member(group_id_for(req.role, idp), user_id)
    services.activate(req.pk, okta_user_id=user_id)
    return True


def deprovision_grant(request_id: int, idp: IdentityProvider) -> None:
    """Remove the member once a grant ended, unless another live grant still needs it;
    then end the person's open sessions (removal alone leaves a console session open)."""
    req = AccessRequest.objects.select_related("role").get(pk=request_id)
    if req.status not in ENDED_GRANT_STATUSES:
        return
    if req.membership_removed_at is not None:
        # Removed by an earlier attempt that failed while ending sessions: finish (idempotent).
        end_sessions(req, idp=idp)
        return
    if services.holds_other_grant(req):
        services.confirm_membership_removed(req.pk, detail="kept: another live grant needs it")
        return
    try:
        user_id = req.okta_user_id or idp.find_user(req.okta_login).id
        idp.remove_group_member(group_id_for(req.role, idp), user_id)
    except IdpNotFound:
        # No such user or group in Okta: there is no membership to remove.
        services.confirm_membership_removed(req.pk, detail="nothing to remove in Okta")
        return
    services.confirm_membership_removed(req.pk, detail="removed from the Okta group")
    end_sessions(req, idp=idp)


def resend_overdue_work(now: dt.datetime | None = None) -> list[int]:
    """Re-send the work of every grant whose Okta side is not done and overdue.

    The database is the source of truth, not the broker: a task lost with a killed worker
    or a restarted Redis is sent again once its grant's ``work_due_at`` is older than the
    grace period. Approved but not active -> provision; ended but the membership not
    confirmed removed -> deprovision. Both tasks are idempotent, so a duplicate (the lost
    message redelivered later after all) changes nothing. One sweep at a time (an advisory
    lock), so two beats or overlapping runs do not double the sends.
    """
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.GRANT_SWEEP_GRACE_SECONDS)
    due = Q(work_due_at__lt=cutoff) | Q(work_due_at__isnull=True)
    resent: list[int] = []
    with transaction.atomic():
        if not scheduler.try_lock("grant-sweep"):
            return resent
        pending = AccessRequest.objects.filter(
            Q(status=Status.APPROVED)
            | Q(status__in=ENDED_GRANT_STATUSES, membership_removed_at__isnull=True)
        ).filter(due)
        # The grace period also covers a grant approved or ended a moment ago.
        pending = pending.exclude(status=Status.APPROVED, decided_at__gte=cutoff).exclude(
            status__in=ENDED_GRANT_STATUSES, ended_at__gte=cutoff
        )
        for req_id, status in pending.values_list("pk", "status")[:500]:
            if status == Status.APPROVED:
                queue.provision_grant(req_id)
            else:
                queue.deprovision_grant(req_id)
            resent.append(req_id)
    if resent:
        log.warning("grant sweep re-sent the Okta work of %d grant(s): %s", len(resent), resent)
    return resent


@dataclass
class ReconcileReport:
    removed_unexpected: list[str] = field(default_factory=list)
    removed_ended: list[int] = field(default_factory=list)
    restored: list[int] = field(default_factory=list)
    requeued_provisioning: list[int] = field(default_factory=list)


def reconcile_emergency_groups(idp: IdentityProvider) -> ReconcileReport:
    """Compare every emergency group's real members with the desired set and repair drift.

    Members nobody holds a grant for are removed, with an alert in the audit log
    when the portal did not put them there; grants that ended but whose removal
    was never confirmed are finished; active grants missing in Okta are restored.
    """
    report = ReconcileReport()
    stuck_before = timezone.now() - dt.timedelta(seconds=settings.STUCK_PROVISIONING_SECONDS)
    for req_id in AccessRequest.objects.filter(
        status=Status.APPROVED, decided_at__lt=stuck_before
    ).values_list("pk", flat=True):
        queue.provision_grant(req_id)
        report.requeued_provisioning.append(req_id)

    for role in EmergencyRole.objects.all():
        try:
            group_id = group_id_for(role, idp)
        except IdpNotFound:
            log.warning(
                "Okta group %s is missing; readiness checks report it", role.okta_group_name
            )
            continue
        members = {m.login.lower(): m for m in idp.list_group_members(group_id)}
        holding = AccessRequest.objects.filter(role=role, status__in=HOLDING_STATUSES)
        wanted = {r.okta_login.lower() for r in holding}
        for login, member in members.items():
            if login in wanted:
                continue
            idp.remove_group_member(group_id, member.id)
            ended = list(
                AccessRequest.objects.filter(
                    role=role,
                    okta_login__iexact=login,
                    status__in=ENDED_GRANT_STATUSES,
                    membership_removed_at__isnull=True,
                ).values_list("pk", flat=True)
            )
            for req_id in ended:
                services.confirm_membership_removed(req_id, detail="removed by the reconciler")
                # The deprovisioning task was lost: end the open sessions here too.
                deprovision_grant(req_id, idp)
                report.removed_ended.append(req_id)
            if not ended:
                with transaction.atomic():
                    audit.record(
                        "okta.unexpected_member_removed",
                        role,
                        system="reconciler",
                        payload={"okta_group": role.okta_group_name, "login": member.login},
                    )
                    messages.drift_found(
                        f"{member.login} was in {role.okta_group_name} without a grant; removed",
                        {"Found by": "the reconciler"},
                    )
                report.removed_unexpected.append(member.login)
        for req in holding.filter(status=Status.ACTIVE):
            if req.okta_login.lower() not in members:
                user_id = req.okta_user_id or idp.find_user(req.okta_login).id
                idp.add_group_member(group_id, user_id)
                with transaction.atomic():
                    audit.record(
                        "okta.member_restored",
                        req,
                        system="reconciler",
                        payload={"okta_group": role.okta_group_name},
                    )
                report.restored.append(req.pk)

    # Ended grants whose member was already gone from Okta: confirm, so nothing lingers.
    for req_id in AccessRequest.objects.filter(
        status__in=ENDED_GRANT_STATUSES, membership_removed_at__isnull=True
    ).values_list("pk", flat=True):
        deprovision_grant(req_id, idp)
    return report


# In a grant's last_error while it waits for Okta to answer again.
PAUSED_MARK = "Okta is unreachable"


def okta_paused_for_people(request_id: int, exc: IdpUnavailable) -> str:
    """What a grant paused by Okta's open circuit says on the pages."""
    req = AccessRequest.objects.filter(pk=request_id).first()
    who = req.okta_login if req else "the requester"
    since = f" since {exc.since:%H:%M:%S} UTC" if exc.since else ""
    return (
        f"{PAUSED_MARK}{since}: adding {who} is paused, not failed. The portal grants it by "
        "itself as soon as Okta answers again."
    )


def okta_error_for_people(request_id: int, exc: IdpError, *, will_retry: bool) -> str:
    """What a failed grant says on the pages: people and group by name, what happens next
    and whom to ask (Okta's ids stay in the audit log's detail)."""
    req = AccessRequest.objects.select_related("role").filter(pk=request_id).first()
    who = req.okta_login if req else "the requester"
    group = req.role.okta_group_name if req else "the emergency group"
    answer = " ".join(str(part) for part in (exc.status, exc.code) if part) or "no answer"
    if isinstance(exc, IdpNotFound):
        problem = f"Okta does not know {who} or the group {group} (Okta answered {answer})."
    else:
        problem = f"Okta could not add {who} to the group {group} (Okta answered {answer})."
    if will_retry:
        return f"{problem} The portal tries again by itself."
    return (
        f"{problem} Nothing was granted. Ask an Okta administrator to check the user and the "
        "group, then file the request again."
    )
