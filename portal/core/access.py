"""Who may do what. Every view, API endpoint and service asks these helpers."""

from __future__ import annotations

from typing import Any

APPROVERS = "approvers"
AUDITORS = "auditors"


def _signed_in(user: Any) -> bool:
    """An authenticated user whose account is active (anonymous users have no is_active)."""
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def _in_group(user: Any, name: str) -> bool:
    if not _signed_in(user):
        return False
    cache = getattr(user, "_portal_groups", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._portal_groups = cache
    return name in cache


def is_approver(user: Any) -> bool:
    return _in_group(user, APPROVERS) and not is_auditor(user)


def is_auditor(user: Any) -> bool:
    return _in_group(user, AUDITORS)


def can_write(user: Any) -> bool:
    """Auditors change nothing, even if they hold other roles too."""
    return _signed_in(user) and not is_auditor(user)


def can_request(user: Any) -> bool:
    return can_write(user)


def can_see_all_requests(user: Any) -> bool:
    return is_approver(user) or is_auditor(user)


def can_run_failover(user: Any) -> bool:
    return is_approver(user)


def can_read_audit(user: Any) -> bool:
    return is_approver(user) or is_auditor(user)


def can_read_plan(user: Any) -> bool:
    """The rendered plan and readiness results: approvers, auditors and admins (staff)."""
    return is_approver(user) or is_auditor(user) or (_signed_in(user) and user.is_staff)


def can_run_readiness(user: Any) -> bool:
    return is_approver(user)


def request_actions(user: Any, req: Any) -> frozenset[str]:
    """The actions `user` may take on an access request now (the buttons to show).

    The services check the same rules again when one is used.
    """
    from requests_app.models import HOLDING_STATUSES, Status

    if not can_write(user):
        return frozenset()
    allowed: set[str] = set()
    mine = req.requester_id == user.pk
    if req.status == Status.PENDING:
        if is_approver(user) and not mine:
            allowed.add("deny")
            if all(a.approver_id != user.pk for a in req.approvals.all()):
                allowed.add("approve")
        if mine:
            allowed.add("cancel")
    if req.status in HOLDING_STATUSES and is_approver(user) and not mine:
        allowed.add("revoke")
    if req.status in HOLDING_STATUSES and mine:
        allowed.add("end")
    return frozenset(allowed)


def can_ask_extension(user: Any, req: Any) -> bool:
    """The requester may ask for more time on their own active grant."""
    from requests_app.models import Status

    return can_write(user) and req.requester_id == user.pk and req.status == Status.ACTIVE


def extension_actions(user: Any, ext: Any) -> frozenset[str]:
    """The buttons `user` may use on a pending extension (the services check again)."""
    from requests_app.models import ExtensionStatus

    if not can_write(user) or ext.status != ExtensionStatus.PENDING:
        return frozenset()
    allowed: set[str] = set()
    if is_approver(user) and ext.request.requester_id != user.pk:
        allowed.add("deny")
        if all(a.approver_id != user.pk for a in ext.approvals.all()):
            allowed.add("approve")
    if ext.request.requester_id == user.pk:
        allowed.add("cancel")
    return frozenset(allowed)


def can_confirm_signed_out(user: Any, req: Any) -> bool:
    """The person who held a grant may say they signed out of AWS (evidence, any time after)."""
    return can_write(user) and req.requester_id == user.pk and req.activated_at is not None
