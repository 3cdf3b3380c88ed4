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


def current_approvals(req: Any) -> Any:
    """The approvals of ``req`` that still count: their approver is an active approver
    and not an auditor (the two-person rule holds at decision time)."""
    return req.approvals.filter(approver__is_active=True, approver__groups__name=APPROVERS).exclude(
        approver__groups__name=AUDITORS
    )


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
