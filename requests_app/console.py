"""The AWS console's side of a grant: the switch-role links into the workload accounts."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from federation.models import EmergencyRole
from requests_app.models import AccessRequest, Status

SWITCH_ROLE_URL = "https://signin.aws.amazon.com/switchrole"


@dataclass(frozen=True)
class SwitchRole:
    label: str
    url: str


def switch_role(role: EmergencyRole) -> SwitchRole:
    """The console's switch-role page with account, role and a display name filled in."""
    label = f"{role.workload_account.name} / {role.level.name}"
    query = urlencode(
        {
            "roleName": role.level.workload_role_name,
            "account": role.workload_account.account_id,
            "displayName": label[:64],
        }
    )
    return SwitchRole(label, f"{SWITCH_ROLE_URL}?{query}")


def switch_roles_for(req: AccessRequest) -> list[SwitchRole]:
    """This grant's link first, then the person's other active grants in the failover
    (several roles asked for at once)."""
    others = (
        AccessRequest.objects.filter(
            requester_id=req.requester_id, failover_id=req.failover_id, status=Status.ACTIVE
        )
        .exclude(pk=req.pk)
        .select_related("role__workload_account", "role__level")
        .order_by("pk")
    )
    return [switch_role(req.role)] + [switch_role(other.role) for other in others]
