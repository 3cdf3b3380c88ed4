"""Who holds which portal role, and the audit trail of every change to it.

A portal role is membership of a Django group (``approvers``, ``auditors``).
Granting and revoking go through this module, from ``manage.py set_role`` and
from the admin's user page, so the audit log answers "who became an approver,
when, and who made them one". The admin also reports changes to the
staff / superuser / active flags, which are privileges too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict, Unpack

from django.contrib.auth.models import Group
from django.db import transaction

from portal import audit
from portal.accounts import sessions
from portal.core.access import APPROVERS, AUDITORS, can_write
from portal.core.errors import NotAllowed
from portal.core.types import User
from requests_app.models import Approval, Status

# The names people use (command line, docs) -> the group that carries the role.
ROLES = {"approver": APPROVERS, "auditor": AUDITORS}
# Account flags that grant or remove privileges: audited when the admin changes them.
PRIVILEGE_FLAGS = ("is_active", "is_staff", "is_superuser")


def _check_actor(actor: User | None) -> None:
    if actor is None:
        return  # the command line: whoever runs manage.py owns the deployment
    if not can_write(actor) or not (actor.is_superuser or actor.has_perm("auth.change_user")):
        raise NotAllowed("Only administrators who are not auditors can change portal roles.")


def _target(user: User) -> tuple[str, Any]:
    return ("user", user.pk)


def _record_membership(
    user: User,
    group: str,
    granted: bool,
    *,
    actor: User | None,
    system: str,
    via: str,
) -> None:
    role = next((name for name, g in ROLES.items() if g == group), None)
    audit.record(
        "role.granted" if granted else "role.revoked",
        _target(user),
        actor=actor,
        system=system,
        payload={"user": user.get_username(), "group": group, "role": role, "via": via},
    )


def _change_role(
    user: User,
    role: str,
    granted: bool,
    *,
    actor: User | None = None,
    system: str = "system",
    via: str = "",
) -> bool:
    """Add or remove the role's group; False (nothing recorded) when nothing changes."""
    group_name = ROLES[role]
    _check_actor(actor)
    with transaction.atomic():
        # Lock the user: two concurrent grants must not both record "role.granted".
        audit.lock_chain()  # the lock order: the audit chain, then rows
        type(user).objects.select_for_update().filter(pk=user.pk).first()
        group = (
            Group.objects.get_or_create(name=group_name)[0]
            if granted
            else Group.objects.filter(name=group_name).first()
        )
        holds = group is not None and user.groups.filter(pk=group.pk).exists()
        if group is None or holds == granted:  # no group: nobody holds the role
            return False
        if granted and group_name == AUDITORS:
            check_auditor_not_superuser(user, is_superuser=user.is_superuser, auditor=True)
        (user.groups.add if granted else user.groups.remove)(group)
        _record_membership(user, group_name, granted, actor=actor, system=system, via=via)
        if not granted:
            lost_role(user, role, actor=actor, system=system)
    return True


def check_auditor_not_superuser(user: User, *, is_superuser: bool, auditor: bool) -> None:
    """An auditor who is also superuser could undo their own read-only limit."""
    if is_superuser and auditor:
        raise NotAllowed(
            f"{user.get_username()}: an auditor cannot be a superuser (auditors are read-only)."
        )


def void_pending_approvals(
    user: User, *, reason: str, actor: User | None, system: str = "system"
) -> int:
    """Someone who may no longer approve: their approvals of undecided requests stop counting.

    Must run in the transaction that removed the role or deactivated the account.
    """
    voided = 0
    pending = Approval.objects.select_related("request").filter(
        approver_id=user.pk, request__status=Status.PENDING
    )
    for approval in pending:
        audit.record(
            "request.approval_voided",
            approval.request,
            actor=actor,
            system=system,
            payload={"approver": user.get_username(), "reason": reason},
        )
        approval.delete()
        voided += 1
    return voided


def lost_role(user: User, role: str | None, *, actor: User | None, system: str = "system") -> None:
    """A removed role ends what it allowed: sessions, tokens and (approvers) approvals.
    ``role`` None: the account was deactivated, which ends what every role allowed."""
    reason = "the account was deactivated" if role is None else f"the {role} role was removed"
    if role in (None, "approver"):
        void_pending_approvals(user, reason=reason, actor=actor, system=system)
    sessions.end_sessions_and_tokens(user, reason=reason, actor=actor, system=system)


class RoleChange(TypedDict, total=False):
    """Who changes a role and through what: ``actor`` (None: the command line),
    ``system``, ``via`` (the admin, set_role, the Okta sign-in)."""

    actor: User | None
    system: str
    via: str


def grant_role(user: User, role: str, **how: Unpack[RoleChange]) -> bool:
    """Add ``user`` to the role's group; False when they held it already (nothing recorded)."""
    return _change_role(user, role, True, **how)


def revoke_role(user: User, role: str, **how: Unpack[RoleChange]) -> bool:
    """Remove ``user`` from the role's group; False when they did not hold it."""
    return _change_role(user, role, False, **how)


def record_group_changes(
    user: User,
    before: Iterable[str],
    after: Iterable[str],
    *,
    actor: User | None,
    system: str = "system",
    via: str,
) -> None:
    """Audit memberships changed by someone else's code (the admin's form saved them).

    Must run in the transaction that saved them.
    """
    before, after = set(before), set(after)
    for group in sorted(after - before):
        _record_membership(user, group, True, actor=actor, system=system, via=via)
    for group in sorted(before - after):
        _record_membership(user, group, False, actor=actor, system=system, via=via)
        role = next((name for name, g in ROLES.items() if g == group), None)
        if role is not None:
            lost_role(user, role, actor=actor, system=system)


def record_flag_changes(
    user: User,
    before: dict[str, Any],
    *,
    actor: User | None,
    via: str,
    created: bool = False,
) -> None:
    """Audit a new account, or changed privilege flags of an existing one."""
    after = flags_of(user)
    if created:
        audit.record(
            "user.created",
            _target(user),
            actor=actor,
            payload={"user": user.get_username(), "flags": after, "via": via},
        )
        return
    changed = {
        flag: [before[flag], after[flag]] for flag in after if before.get(flag) != after[flag]
    }
    if changed:
        audit.record(
            "user.privileges_changed",
            _target(user),
            actor=actor,
            payload={"user": user.get_username(), "fields": changed, "via": via},
        )
    if before.get("is_active") and not after["is_active"]:
        lost_role(user, None, actor=actor)


def flags_of(user: User) -> dict[str, Any]:
    return {flag: getattr(user, flag) for flag in PRIVILEGE_FLAGS}
