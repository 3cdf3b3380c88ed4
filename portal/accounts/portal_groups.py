"""Portal groups from an Okta sign-in: the plan's ``[okta_groups]`` maps Okta group names
(the ID token's ``groups`` claim) to portal groups, which the eligibility rules name.

Only the portal groups the mapping names are managed here: a sign-in adds the user to
those its Okta groups map to and removes them from the others. Groups an admin set by
hand, and the portal roles (approvers, auditors), are never touched.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction

from federation.models import RESERVED_GROUPS, EmergencyAccount
from portal import audit
from portal.core.types import User


def okta_group_mapping() -> dict[str, str]:
    mapping: dict[str, str] = {}
    for okta_groups in EmergencyAccount.objects.order_by("pk").values_list(
        "okta_groups", flat=True
    ):
        mapping.update(okta_groups or {})
    return {okta: portal for okta, portal in mapping.items() if portal not in RESERVED_GROUPS}


def sync_from_okta(user: User, okta_groups: Any) -> tuple[set[str], set[str]]:
    """Set the mapped portal groups of ``user`` from Okta's groups claim; audited when
    something changes. Returns (added, removed)."""
    if not isinstance(okta_groups, list):
        return set(), set()  # no claim: Okta does not send groups, leave them alone
    mapping = okta_group_mapping()
    if not mapping:
        return set(), set()
    claimed = {name for name in okta_groups if isinstance(name, str)}
    wanted = {mapping[name] for name in claimed if name in mapping}
    managed = set(mapping.values())
    with transaction.atomic():
        current = set(user.groups.filter(name__in=managed).values_list("name", flat=True))
        added, removed = wanted - current, current - wanted
        for name in sorted(added):
            user.groups.add(Group.objects.get_or_create(name=name)[0])
        if removed:
            user.groups.remove(*Group.objects.filter(name__in=removed))
        if added or removed:
            audit.record(
                "groups.synced",
                ("user", user.pk),
                system="okta-sign-in",
                payload={
                    "user": user.get_username(),
                    "added": sorted(added),
                    "removed": sorted(removed),
                    "okta_groups": sorted(claimed & set(mapping)),
                },
            )
    for cache in ("_portal_groups", "_eligibility_groups"):
        if hasattr(user, cache):
            delattr(user, cache)
    return added, removed
