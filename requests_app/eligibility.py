"""Who may ask for which emergency role, and who may decide it: the plan's eligibility.

Each workload account and each level of the access plan may list ``requesters`` and
``approvers`` (portal group names). A list that is present narrows: to request role
(account A, level L) a person must be in one of A's requester groups when A lists
any, and in one of L's requester groups when L lists any. Approvers likewise, on top
of the portal's approver role. Nothing listed for a role keeps the open behaviour
(anyone may request, every approver decides); readiness warns about such a plan.

Every allowed decision carries a ``Rule``: its text goes into the audit event
(payload key ``eligibility``), so the log says which rule let the person act.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from federation.models import EmergencyRole, Level, WorkloadAccount
from portal.core.access import APPROVERS, can_request, is_approver
from portal.core.errors import NotAllowed

OPEN = "open"


@dataclass(frozen=True)
class Rule:
    """Why someone may (or may not) act: ``text`` is what the audit log records."""

    allowed: bool
    text: str


def portal_groups(user: Any) -> frozenset[str]:
    """The user's portal group names, read once per request object."""
    cache = getattr(user, "_eligibility_groups", None)
    if cache is None:
        names = user.groups.values_list("name", flat=True) if user.is_authenticated else []
        cache = frozenset(names)
        user._eligibility_groups = cache
    return frozenset(cache)


def _check(kind: str, groups: frozenset[str], role: EmergencyRole) -> Rule:
    """``kind`` is "requesters" or "approvers"; every list the plan gives must match."""
    account, level = role.workload_account, role.level
    lists = [
        (f"workload account {account.name}", getattr(account, kind)),
        (f"level {level.name}", getattr(level, kind)),
    ]
    matched: list[str] = []
    for where, names in lists:
        if not names:
            continue
        hit = sorted(groups.intersection(names))
        if not hit:
            needed = ", ".join(names)
            return Rule(False, f"{where} {kind}: one of {needed}")
        matched.append(f"{where} {kind} via {hit[0]}")
    if not matched:
        return Rule(True, f"{OPEN}: the plan names no {kind} for {role}")
    return Rule(True, "; ".join(matched))


def request_rule(user: Any, role: EmergencyRole) -> Rule:
    if not can_request(user):
        return Rule(False, "the portal role cannot file requests")
    return _check("requesters", portal_groups(user), role)


def decide_rule(user: Any, role: EmergencyRole) -> Rule:
    if not is_approver(user):
        return Rule(False, "not an approver")
    return _check("approvers", portal_groups(user), role)


def check_request(user: Any, role: EmergencyRole) -> Rule:
    """The rule that lets ``user`` request ``role``, or NotAllowed saying what is missing."""
    rule = request_rule(user, role)
    if not rule.allowed:
        raise NotAllowed(
            f"You are not eligible to request {role.role_name} ({role}): the access plan asks "
            f"for {rule.text}. Ask an approver, or an admin to add you to the group."
        )
    return rule


def check_decide(user: Any, role: EmergencyRole, what: str = "decide") -> Rule:
    """The rule that lets ``user`` approve or deny for ``role``, or NotAllowed."""
    rule = decide_rule(user, role)
    if not rule.allowed:
        raise NotAllowed(
            f"You are not eligible to {what} requests for {role.role_name} ({role}): the "
            f"access plan asks for {rule.text}."
        )
    return rule


def _roles() -> list[EmergencyRole]:
    # A plan holds accounts x levels roles (tens): decided here, not in JSON lookups,
    # which SQLite (the demo's database) does not support.
    return list(EmergencyRole.objects.requestable())


def requestable_roles(user: Any) -> Any:
    """The emergency roles ``user`` may ask for (the new-request page's choices)."""
    roles = EmergencyRole.objects.requestable()
    if not can_request(user):
        return roles.none()
    return roles.filter(pk__in=[r.pk for r in _roles() if request_rule(user, r).allowed])


def decidable_filter(user: Any, prefix: str = "role__") -> Q:
    """A filter on access requests (or anything whose ``prefix`` leads to the role) to
    those ``user`` may decide."""
    groups = portal_groups(user)
    pks = [r.pk for r in _roles() if _check("approvers", groups, r).allowed]
    return Q(**{f"{prefix}pk__in": pks})


def plan_has_eligibility() -> bool:
    """Does any account or level of the plan list requesters or approvers?"""
    return any(a.requesters or a.approvers for a in WorkloadAccount.objects.all()) or any(
        lv.requesters or lv.approvers for lv in Level.objects.all()
    )


def approver_emails_for(role: EmergencyRole, exclude: str = "") -> list[str]:
    """The approvers who may decide ``role``: whom a filing or an extension is sent to.
    (Break-glass alerts go to every approver: ``portal.notify.approver_emails``.)"""
    users = get_user_model().objects.filter(groups__name=APPROVERS, is_active=True)
    for names in (role.workload_account.approvers, role.level.approvers):
        if names:
            # One filter() per list: in one of this list's groups, and of the other's.
            users = users.filter(groups__name__in=names)
    return sorted({u.email for u in users.distinct() if u.email and u.email != exclude})
