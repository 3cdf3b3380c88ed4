"""A correct emergency-access set-up in moto, built from the rendered plan, and drift.

The set-up itself is the demo's (federation/aws/demo_world.py); this adds what the
tests need to drift it.
"""

from __future__ import annotations

from typing import Any

from federation.aws.demo_world import (  # noqa: F401 - the tests' names for them
    ENV,
    certificate,
    create_emergency_role,
    create_workload_role,
    iam_of,
    metadata,
    seed,
)


def delete_role(client: Any, name: str) -> None:
    """Delete a role with its policies (IAM refuses to delete a role that has any)."""
    for policy in client.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        client.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for policy in client.list_role_policies(RoleName=name)["PolicyNames"]:
        client.delete_role_policy(RoleName=name, PolicyName=policy)
    client.delete_role(RoleName=name)
