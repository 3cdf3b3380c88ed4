"""What a person may do with one access request or extension now: the buttons to show.

The services check the same rules again when one is used; the role predicates they
build on are ``portal.core.access``.
"""

from __future__ import annotations

from typing import Any

from portal.core.access import can_write, is_approver
from requests_app.eligibility import decide_rule
from requests_app.models import HOLDING_STATUSES, ExtensionStatus, Status


def request_actions(user: Any, req: Any) -> frozenset[str]:
    """The actions `user` may take on an access request now (the buttons to show).

    The services check the same rules again when one is used.
    """
    if not can_write(user):
        return frozenset()
    allowed: set[str] = set()
    mine = req.requester_id == user.pk
    if req.status == Status.PENDING:
        if is_approver(user) and not mine and decide_rule(user, req.role).allowed:
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
    return can_write(user) and req.requester_id == user.pk and req.status == Status.ACTIVE


def extension_actions(user: Any, ext: Any) -> frozenset[str]:
    """The buttons `user` may use on a pending extension (the services check again)."""
    if not can_write(user) or ext.status != ExtensionStatus.PENDING:
        return frozenset()
    allowed: set[str] = set()
    if (
        is_approver(user)
        and ext.request.requester_id != user.pk
        and decide_rule(user, ext.request.role).allowed
    ):
        allowed.add("deny")
        if all(a.approver_id != user.pk for a in ext.approvals.all()):
            allowed.add("approve")
    if ext.request.requester_id == user.pk:
        allowed.add("cancel")
    return frozenset(allowed)


def can_confirm_signed_out(user: Any, req: Any) -> bool:
    """The person who held a grant may say they signed out of AWS (evidence, any time after)."""
    return can_write(user) and req.requester_id == user.pk and req.activated_at is not None
