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

from federation.evidence_models import OKTA_SYSTEM_LOG, LogCursor
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
    groups_listed: int = 0
    full_pass: bool = False


# --- The reconciler: O(changes) ----------------------------------------------------------
#
# Okta's side is followed through the System Log (federation.failover.systemlog): a
# membership change on an emergency group that the database does not explain makes the
# poll reconcile just that group (``reconcile_group``). A full pass over the groups
# (``reconcile_emergency_groups``) remains the backstop: every RECONCILE_FULL_PASS_SECONDS,
# at once when a pass was requested (the System Log cursor was refused, a per-group repair
# failed, the federation app was switched outside the portal), and on every tick while
# the System Log is not being followed (never read, its last read failed, or not read for
# FOLLOW_STALE_POLLS poll periods). Its state is one LogCursor row: ``updated_at`` = when
# the last full pass started, ``after`` = the pending request ("" = none).
RECONCILER = "okta-reconciler"
FOLLOW_STALE_POLLS = 3
# A full pass lists only the groups Okta's census shows changed (or in use); every group
# on the first pass and then on every COMPLETE_PASS_EVERY-th (hourly by default).
RECONCILER_COMPLETE = "okta-reconciler-complete"
COMPLETE_PASS_EVERY = 4
# Okta's clock and ours may differ: a change this close before a pass is listed again.
CLOCK_SKEW = dt.timedelta(minutes=2)


def request_full_pass(reason: str) -> None:
    """Ask for a full pass at the reconciler's next tick (kept in the database)."""
    now = timezone.now()
    state, _ = LogCursor.objects.get_or_create(name=RECONCILER)
    LogCursor.objects.filter(pk=state.pk).update(
        after=f"{now.isoformat(timespec='seconds')} {reason}"[:2000]
    )
    log.info("reconciler: full pass requested (%s)", reason)


def system_log_followed(now: dt.datetime | None = None) -> bool:
    """True while the System Log poller reads Okta's log without a gap: it holds a cursor,
    its last read succeeded and was recent."""
    now = now or timezone.now()
    cursor = LogCursor.objects.filter(name=OKTA_SYSTEM_LOG).first()
    if cursor is None or not cursor.after or cursor.last_error or cursor.polled_at is None:
        return False
    stale = dt.timedelta(seconds=FOLLOW_STALE_POLLS * settings.SYSTEM_LOG_POLL_SECONDS)
    return cursor.polled_at >= now - stale


def full_pass_due(now: dt.datetime | None = None) -> str:
    """Why a full pass is due now ("" = it is not)."""
    now = now or timezone.now()
    state = LogCursor.objects.filter(name=RECONCILER).first()
    if state is None or state.updated_at is None:
        return "no full pass yet"
    if state.after:
        return f"requested: {state.after}"
    if state.updated_at <= now - dt.timedelta(seconds=settings.RECONCILE_FULL_PASS_SECONDS):
        return "the periodic full pass"
    if not system_log_followed(now):
        return "the System Log is not being followed"
    return ""


def reconcile(idp: IdentityProvider, *, now: dt.datetime | None = None) -> ReconcileReport:
    """Beat's reconciler tick (every RECONCILE_SECONDS): the database-side checks, and a
    full pass over the groups only when one is due (``full_pass_due``)."""
    now = now or timezone.now()
    why = full_pass_due(now)
    if why:
        log.info("reconciler: full pass (%s)", why)
        return reconcile_emergency_groups(idp)
    report = ReconcileReport()
    _requeue_stuck_provisioning(report)
    _finish_ended_grants(idp)
    LogCursor.objects.filter(name=RECONCILER).update(polled_at=timezone.now())
    return report


def _requeue_stuck_provisioning(report: ReconcileReport) -> None:
    stuck_before = timezone.now() - dt.timedelta(seconds=settings.STUCK_PROVISIONING_SECONDS)
    for req_id in AccessRequest.objects.filter(
        status=Status.APPROVED, decided_at__lt=stuck_before
    ).values_list("pk", flat=True):
        queue.provision_grant(req_id)
        report.requeued_provisioning.append(req_id)


def _finish_ended_grants(idp: IdentityProvider) -> None:
    # Ended grants whose member was already gone from Okta: confirm, so nothing lingers.
    for req_id in AccessRequest.objects.filter(
        status__in=ENDED_GRANT_STATUSES, membership_removed_at__isnull=True
    ).values_list("pk", flat=True):
        deprovision_grant(req_id, idp)


def membership_explained(
    role: EmergencyRole,
    *,
    login: str,
    user_id: str,
    added: bool,
    at: dt.datetime | None = None,
) -> bool:
    """Does the database explain a membership change Okta reported for ``role``'s group
    (at ``at``, Okta's time of the event)?

    An add is explained by a grant that holds (or is being given) the membership, or by
    one that has ended since but whose membership was still there at ``at`` (the poll may
    read an add after the grant ended: its removal is the portal's own work, in flight or
    done). A removal is explained by the absence of an active grant. Anything else is
    drift: reconcile the group. No margin for clocks: a wrong "not explained" costs one
    listing of the group, a wrong "explained" would leave a member added behind the
    portal's back until the next full pass.
    """
    person = Q(okta_login__iexact=login) if login else Q(pk__in=[])
    if user_id:
        person |= Q(okta_user_id=user_id)
    grants = AccessRequest.objects.filter(person, role=role)
    if not added:
        return not grants.filter(status=Status.ACTIVE).exists()
    held = Q(status__in=HOLDING_STATUSES)
    if at is not None:
        held |= Q(
            Q(membership_removed_at__isnull=True) | Q(membership_removed_at__gte=at),
            status__in=ENDED_GRANT_STATUSES,
            decided_at__lte=at,
        )
    return grants.filter(held).exists()


def reconcile_group(
    role: EmergencyRole, idp: IdentityProvider, report: ReconcileReport | None = None
) -> ReconcileReport:
    """Make one emergency group's members in Okta match its grants (one list call; more
    only for what is wrong). Members nobody holds a grant for are removed, with an
    ``okta.unexpected_member_removed`` alert when the portal did not put them there;
    grants that ended but whose removal was never confirmed are finished; active grants
    missing in Okta are restored (``okta.member_restored``)."""
    report = report if report is not None else ReconcileReport()
    try:
        group_id = group_id_for(role, idp)
    except IdpNotFound:
        log.warning("Okta group %s is missing; readiness checks report it", role.okta_group_name)
        return report
    members = {m.login.lower(): m for m in idp.list_group_members(group_id)}
    report.groups_listed += 1
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
    return report


def _census_says_listing_needed(
    idp: IdentityProvider, roles: list[EmergencyRole], since: dt.datetime
) -> set[int]:
    """The roles whose group must be listed: Okta's membership of it changed since
    ``since`` (its ``lastMembershipUpdated``, one call for every group), it is missing from
    the census, or it has a live grant (the groups in use during a failover)."""
    names = sorted(role.okta_group_name for role in roles)
    prefix = names[0]
    while not names[-1].startswith(prefix):  # the sorted ends share the common prefix
        prefix = prefix[:-1]
    census = {group.name: group for group in idp.list_groups(prefix)}
    # Okta's clock may differ from ours: a change this close before ``since`` is listed
    # again (at most half a full-pass period, so that quick test schedules stay quiet).
    skew = min(CLOCK_SKEW, dt.timedelta(seconds=settings.RECONCILE_FULL_PASS_SECONDS / 2))
    in_use = set(
        AccessRequest.objects.filter(status__in=HOLDING_STATUSES).values_list("role_id", flat=True)
    )
    listed: set[int] = set()
    for role in roles:
        group = census.get(role.okta_group_name)
        changed_at = group.last_membership_updated if group is not None else None
        if changed_at is None or changed_at >= since - skew or role.pk in in_use:
            listed.add(role.pk)
    return listed


def reconcile_emergency_groups(idp: IdentityProvider, *, complete: bool = False) -> ReconcileReport:
    """The full pass: compare the emergency groups' real members with the desired set and
    repair drift (``reconcile_group``), re-queue stuck provisioning, finish ended grants.

    A group is listed when Okta's census (one call) says its membership changed since the
    previous full pass began, or it has a live grant; every group is listed on a complete
    pass (``complete``, the first one, and then once every COMPLETE_PASS_EVERY full
    passes). Records when it started, so that the System Log covers the rest.
    """
    started = timezone.now()
    state, _ = LogCursor.objects.get_or_create(name=RECONCILER)
    request = LogCursor.objects.values_list("after", flat=True).get(pk=state.pk)
    last_complete = (
        LogCursor.objects.filter(name=RECONCILER_COMPLETE)
        .values_list("updated_at", flat=True)
        .first()
    )
    every = dt.timedelta(seconds=(COMPLETE_PASS_EVERY - 0.5) * settings.RECONCILE_FULL_PASS_SECONDS)
    previous = state.updated_at
    if previous is None or last_complete is None or last_complete <= started - every:
        complete = True
    report = ReconcileReport(full_pass=True)
    _requeue_stuck_provisioning(report)
    roles = list(EmergencyRole.objects.order_by("pk"))
    if roles and previous is not None and not complete:
        wanted = _census_says_listing_needed(idp, roles, previous)
        roles = [role for role in roles if role.pk in wanted]
    for role in roles:
        reconcile_group(role, idp, report)
    _finish_ended_grants(idp)
    LogCursor.objects.filter(pk=state.pk).update(
        updated_at=started, polled_at=timezone.now(), last_batch=report.groups_listed
    )
    if complete:
        LogCursor.objects.update_or_create(
            name=RECONCILER_COMPLETE, defaults={"updated_at": started}
        )
    # A request made while this pass ran stays for the next tick.
    LogCursor.objects.filter(pk=state.pk, after=request).update(after="")
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
