"""What a fresh sandbox org contains: the AWS federation app and the demo users.

Groups are not seeded: the portal creates its ``aws#...`` groups itself
(``ensure_group``), exactly as it must against a real org.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

DEFAULT_TOKEN = "sandbox-api-token"  # noqa: S105 -- the local sandbox org's, public by design
DEFAULT_APP_ID = "0oasandboxawsfed01"
AWS_APP_LABEL = "AWS Account Federation"
# The AWS Account Federation (amazon_aws) app's settings.app: group mapping for groups
# named aws#<role>#<account id>, the IAM SAML provider "Okta", one-hour sessions.
AWS_APP_SETTINGS = {
    "appFilter": "okta",
    "awsEnvironmentType": "aws.amazon",
    "groupFilter": r"^aws\#(?{{role}}[\w\-]+)\#(?{{accountid}}\d+)$",
    "identityProviderArn": "",
    "joinAllRoles": False,
    "loginURL": "https://console.aws.amazon.com/ec2/home",
    "roleValuePattern": "arn:aws:iam::${accountid}:saml-provider/Okta,"
    "arn:aws:iam::${accountid}:role/${role}",
    "sessionDuration": 3600,
    "useGroupMapping": True,
}

_DEMO_USERS = [
    ("engineer@example.com", "Erin", "Engineer"),
    ("approver1@example.com", "Ada", "Approver"),
    ("approver2@example.com", "Abe", "Approver"),
    ("auditor@example.com", "Avery", "Auditor"),
    ("oncall@example.com", "Omar", "Oncall"),
    # The demo's person whom the plan does not let request Ops (not in the sre group).
    ("contractor@example.com", "Casey", "Contractor"),
]


def default_seed() -> dict[str, Any]:
    """A new copy of the default seed (safe to modify)."""
    return {
        "users": [
            {"login": login, "firstName": first, "lastName": last, "status": "ACTIVE"}
            for login, first, last in _DEMO_USERS
        ],
        "groups": [],
        "apps": [
            {
                "id": DEFAULT_APP_ID,
                "name": "amazon_aws",
                "label": AWS_APP_LABEL,
                "status": "INACTIVE",
                "groups": [],
            }
        ],
    }


def merge_seed(custom: dict[str, Any] | None) -> dict[str, Any]:
    """The default seed with each top-level key that ``custom`` has replaced by its value.

    Seed format (all keys optional)::

        {"users":  [{"login", "firstName", "lastName", "status"?, "id"?}],
         "groups": [{"name", "description"?, "type"? ("OKTA_GROUP"|"APP_GROUP"|"BUILT_IN"),
                     "id"?, "members"?: [login, ...]}],
         "apps":   [{"id", "label"?, "name"?, "status"?, "signOnMode"?, "groups"?: [group name,
                     ...], "settings"?: {settings.app keys to override}}]}
    """
    seed = default_seed()
    for key, value in (custom or {}).items():
        if key not in seed:
            raise ValueError(f"unknown seed key {key!r} (expected users, groups, apps)")
        seed[key] = copy.deepcopy(value)
    return seed


def load_seed(path: str | Path) -> dict[str, Any]:
    """Read a JSON seed file (see :func:`merge_seed`)."""
    with open(path, encoding="utf-8") as handle:
        return merge_seed(json.load(handle))
