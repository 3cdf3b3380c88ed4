"""The access plan as IAM policy documents and Okta settings, and policy equivalence.

Rendering follows the AWS guide "Set up emergency access to the AWS Management
Console" (IAM Identity Center user guide), section "One-time setup of a direct
IAM federation application in Okta":

* an emergency role's **trust policy** is the guide's current two-statement form:
  ``sts:AssumeRoleWithSAML`` + ``sts:TagSession`` from the SAML provider under
  ``StringEquals SAML:aud``, and ``sts:SetSourceIdentity`` from the same provider
  in a statement of its own. (An older revision of the guide put all three
  actions in one statement under the condition; ``SAML:aud`` is not a documented
  condition key of ``sts:SetSourceIdentity``, which is why the guide split it --
  parliament flags the old form. :func:`legacy_emergency_role_trust_policy`
  renders that form so readiness can recognise it.)
* its **permissions policy** allows ``sts:AssumeRole`` on the workload role it
  maps to (``Resource`` a string for one role, a list for several, as the guide
  writes them);
* a workload role's **trust policy** trusts either the emergency account's
  ``:root`` (the guide's example) or only the mapped emergency role (least
  privilege, the default).

Everything here is pure: it takes a validated :class:`~federation.plan.PlanSpec`
and returns plain dicts, so it is tested without a database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from federation.models import WorkloadTrust

if TYPE_CHECKING:
    from federation.plan import PlanSpec

# An IAM policy document: a JSON object, as json.loads gives it.
Policy = dict[str, Any]

VERSION = "2012-10-17"
SAML_ACTIONS = ("sts:AssumeRoleWithSAML", "sts:TagSession")
SOURCE_IDENTITY_ACTION = "sts:SetSourceIdentity"
# The Okta "AWS Account Federation" app (OIN name) and its sign-on mode.
OKTA_APP_NAME = "amazon_aws"
OKTA_SIGN_ON_MODE = "SAML_2_0"
# "okta": only Okta groups may map to AWS roles (not groups pushed from other apps),
# so nobody can gain a role by creating a look-alike group in a directory.
OKTA_APP_FILTER = "okta"
# A chained role session (emergency role -> workload role) lasts at most an hour.
ROLE_CHAINING_MAX_SECONDS = 3600
ROOT_FORM_WHY = (
    "The AWS guide's example trusts the emergency account's root: every principal in the "
    "emergency account whose own policies allow sts:AssumeRole on this role can switch into "
    "it, so each workload role relies on every policy in the emergency account staying right."
)
LEAST_PRIVILEGE_WHY = (
    "Each workload role trusts only the one emergency role "
    "mapped to it (EmergencyAccess_Role<N>_<LEVEL>), so RO can never become Ops and no other "
    "principal in the emergency account can reach it, whatever its own policies say. The "
    "price: deploy the emergency account first (AWS checks the principal exists), and if "
    "that emergency role is ever deleted and re-created, redeploy the workload roles (AWS "
    "keeps the old role's unique id in the trust policy; readiness flags it)."
)


# --- The documents ---------------------------------------------------------------------


def _one_or_list(values: Sequence[str]) -> str | list[str]:
    """The guide writes a single value as a string and several as a list."""
    return values[0] if len(values) == 1 else list(values)


def emergency_role_trust_policy(saml_provider_arn: str, audiences: Sequence[str]) -> Policy:
    """The trust policy of an EmergencyAccess_Role<N>_<LEVEL> role (the guide's form)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": saml_provider_arn},
                "Action": list(SAML_ACTIONS),
                "Condition": {"StringEquals": {"SAML:aud": _one_or_list(audiences)}},
            },
            {
                "Effect": "Allow",
                "Principal": {"Federated": saml_provider_arn},
                "Action": SOURCE_IDENTITY_ACTION,
            },
        ],
    }


def legacy_emergency_role_trust_policy(saml_provider_arn: str, audiences: Sequence[str]) -> Policy:
    """The older revision of the guide: the three actions in one conditioned statement."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": saml_provider_arn},
                "Action": ["sts:AssumeRoleWithSAML", SOURCE_IDENTITY_ACTION, "sts:TagSession"],
                "Condition": {"StringEquals": {"SAML:aud": _one_or_list(audiences)}},
            }
        ],
    }


def emergency_role_permissions_policy(workload_role_arns: Sequence[str]) -> Policy:
    """The permissions policy of an emergency role: switch into its workload role(s)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": _one_or_list(workload_role_arns),
            }
        ],
    }


def workload_role_trust_policy(principal_arn: str) -> Policy:
    """The trust policy of a workload account's EmergencyAccess_<LEVEL> role."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": principal_arn},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def role_arn(account_id: str, role_name: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{role_name}"


def saml_provider_arn(account_id: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:saml-provider/{name}"


def account_root_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


# --- Okta: group names <-> role ARNs -----------------------------------------------------


def okta_group_filter() -> str:
    """The app's Group Filter for groups named ``aws#<role>#<account id>`` (the guide's names).

    Okta's regex dialect names capture groups ``(?{{name}}...)``; ``role`` and
    ``accountid`` are the two the Role Value Pattern uses.
    """
    return r"^aws\#(?{{role}}[\w\-]+)\#(?{{accountid}}\d+)$"


def okta_role_value_pattern(saml_provider_name: str) -> str:
    """The app's Role Value Pattern: the SAML Role attribute (provider ARN, role ARN)."""
    return (
        f"arn:aws:iam::${{accountid}}:saml-provider/{saml_provider_name},"
        "arn:aws:iam::${accountid}:role/${role}"
    )


class GroupFilterError(ValueError):
    """The Group Filter cannot be read as a regular expression."""


_OKTA_NAMED_GROUP = re.compile(r"\(\?\{\{(\w+)\}\}")


def compile_group_filter(pattern: str) -> re.Pattern[str]:
    """Okta's ``(?{{name}}...)`` groups as Python's ``(?P<name>...)``.

    Okta evaluates the filter with Java's regex engine; for the patterns this app
    uses (classes, ``\\#``, anchors) Python's reads them the same way.
    """
    try:
        return re.compile(_OKTA_NAMED_GROUP.sub(r"(?P<\1>", pattern))
    except re.error as exc:
        raise GroupFilterError(
            f"the Group Filter is not a valid regular expression: {exc}"
        ) from None


@dataclass(frozen=True)
class GroupMapping:
    """What Okta's Group Filter and Role Value Pattern make of one group name."""

    group: str
    matched: bool
    role_arn: str = ""
    saml_provider_arn: str = ""
    problem: str = ""


def map_group(group_name: str, group_filter: str, role_value_pattern: str) -> GroupMapping:
    """The role and provider ARNs Okta would send for a member of ``group_name``."""
    try:
        regex = compile_group_filter(group_filter)
    except GroupFilterError as exc:
        return GroupMapping(group_name, False, problem=str(exc))
    # Okta's documented filters are anchored (^...$); search() also honours unanchored ones.
    match = regex.search(group_name)
    if match is None:
        return GroupMapping(
            group_name, False, problem=f"does not match the Group Filter {group_filter}"
        )
    captured = match.groupdict()
    missing = [name for name in ("role", "accountid") if not captured.get(name)]
    if missing:
        return GroupMapping(
            group_name,
            True,
            problem=f"the Group Filter captures no {' or '.join(missing)} (name the groups "
            "{{role}} and {{accountid}})",
        )
    value = role_value_pattern
    for name, captured_value in captured.items():
        value = value.replace(f"${{{name}}}", captured_value or "")
    arns = [part.strip() for part in value.split(",") if part.strip()]
    role = next((arn for arn in arns if ":role/" in arn), "")
    provider = next((arn for arn in arns if ":saml-provider/" in arn), "")
    problem = ""
    if not role or not provider or len(arns) != 2:
        problem = f"the Role Value Pattern gives {value!r}, not a provider ARN and a role ARN"
    return GroupMapping(group_name, True, role, provider, problem)


# --- The rendered plan ------------------------------------------------------------------


@dataclass(frozen=True)
class EmergencyRoleDocs:
    """One role in the emergency account, its Okta group and the workload role it reaches."""

    number: int
    level: str
    role_name: str
    role_arn: str
    okta_group: str
    workload_account_id: str
    workload_account_name: str
    workload_role_arn: str
    trust_policy: Policy
    permissions_policy: Policy
    max_session_duration: int


@dataclass(frozen=True)
class WorkloadRoleDocs:
    """One EmergencyAccess_<LEVEL> role in a workload account."""

    number: int
    account_id: str
    account_name: str
    level: str
    role_name: str
    role_arn: str
    managed_policy_arn: str
    trusted_principal: str
    trust_policy: Policy
    # The other form, offered on the plan page next to the chosen one.
    alternative_trust_policy: Policy


@dataclass(frozen=True)
class OktaGroupConfig:
    name: str
    role_arn: str
    assigned_to_app: bool = True


@dataclass(frozen=True)
class OktaAppConfig:
    """What the Okta "AWS Account Federation" app must say (its Sign On settings)."""

    app_name: str
    sign_on_mode: str
    use_group_mapping: bool
    app_filter: str
    group_filter: str
    role_value_pattern: str
    session_duration: int
    identity_provider_arn: str
    groups: tuple[OktaGroupConfig, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": {
                "name": self.app_name,
                "signOnMode": self.sign_on_mode,
                "status": "INACTIVE (activated only while a failover is open)",
            },
            # The keys of the amazon_aws app's settings.app in Okta's Apps API.
            "settings": {
                "useGroupMapping": self.use_group_mapping,
                "appFilter": self.app_filter,
                "groupFilter": self.group_filter,
                "roleValuePattern": self.role_value_pattern,
                "sessionDuration": self.session_duration,
                "identityProviderArn": self.identity_provider_arn,
            },
            "groups": [
                {
                    "name": group.name,
                    "type": "OKTA_GROUP",
                    "maps_to_role": group.role_arn,
                    "assigned_to_app": group.assigned_to_app,
                    "members": "none (members only while a failover is open)",
                }
                for group in self.groups
            ],
        }


@dataclass(frozen=True)
class RenderedPlan:
    emergency_account_id: str
    saml_provider_name: str
    saml_provider_arn: str
    saml_audiences: tuple[str, ...]
    workload_trust: str
    session_duration_seconds: int
    emergency_roles: tuple[EmergencyRoleDocs, ...]
    workload_roles: tuple[WorkloadRoleDocs, ...]
    okta: OktaAppConfig
    levels: tuple[str, ...] = field(default=())

    @property
    def least_privilege(self) -> bool:
        return self.workload_trust == WorkloadTrust.EMERGENCY_ROLE

    @property
    def trust_why(self) -> str:
        return LEAST_PRIVILEGE_WHY if self.least_privilege else ROOT_FORM_WHY

    def workload_roles_of(self, account_id: str) -> list[WorkloadRoleDocs]:
        return [role for role in self.workload_roles if role.account_id == account_id]

    def documents(self) -> dict[str, Any]:
        """Every document, keyed as the JSON export and the plan page name them."""
        return {
            "emergency_account": {
                "account_id": self.emergency_account_id,
                "saml_provider_arn": self.saml_provider_arn,
                "roles": {
                    role.role_name: {
                        "arn": role.role_arn,
                        "okta_group": role.okta_group,
                        "max_session_duration": role.max_session_duration,
                        "trust_policy": role.trust_policy,
                        "permissions_policy": role.permissions_policy,
                    }
                    for role in self.emergency_roles
                },
            },
            "workload_accounts": {
                account_id: {
                    role.role_name: {
                        "arn": role.role_arn,
                        "managed_policy_arn": role.managed_policy_arn,
                        "trust_policy": role.trust_policy,
                    }
                    for role in self.workload_roles_of(account_id)
                }
                for account_id in dict.fromkeys(role.account_id for role in self.workload_roles)
            },
            "workload_trust": self.workload_trust,
            "okta": self.okta.as_dict(),
        }


def emergency_max_session_duration(session_duration_seconds: int) -> int:
    """The emergency roles' MaxSessionDuration: at least the SAML session (AWS's floor 1 h)."""
    return max(ROLE_CHAINING_MAX_SECONDS, session_duration_seconds)


def render(spec: PlanSpec) -> RenderedPlan:
    """Every IAM document and Okta setting the plan implies."""
    emergency = spec.emergency_account
    provider_arn = saml_provider_arn(emergency.id, emergency.saml_provider)
    audiences = tuple(emergency.saml_audiences)
    least_privilege = emergency.workload_trust == WorkloadTrust.EMERGENCY_ROLE
    accounts = {n: account for n, account in enumerate(spec.workload_accounts, start=1)}
    levels = {level.name: level for level in spec.levels}
    max_session = emergency_max_session_duration(emergency.session_duration_seconds)

    emergency_roles: list[EmergencyRoleDocs] = []
    workload_roles: list[WorkloadRoleDocs] = []
    for role in spec.roles():
        account = accounts[role.number]
        level = levels[role.level]
        emergency_arn = role_arn(emergency.id, role.role_name)
        workload_name = f"EmergencyAccess_{level.name}"
        workload_arn = role_arn(account.id, workload_name)
        emergency_roles.append(
            EmergencyRoleDocs(
                number=role.number,
                level=level.name,
                role_name=role.role_name,
                role_arn=emergency_arn,
                okta_group=role.okta_group_name,
                workload_account_id=account.id,
                workload_account_name=account.name,
                workload_role_arn=workload_arn,
                trust_policy=emergency_role_trust_policy(provider_arn, audiences),
                permissions_policy=emergency_role_permissions_policy([workload_arn]),
                max_session_duration=max_session,
            )
        )
        root = account_root_arn(emergency.id)
        chosen, other = (emergency_arn, root) if least_privilege else (root, emergency_arn)
        workload_roles.append(
            WorkloadRoleDocs(
                number=role.number,
                account_id=account.id,
                account_name=account.name,
                level=level.name,
                role_name=workload_name,
                role_arn=workload_arn,
                managed_policy_arn=level.policy,
                trusted_principal=chosen,
                trust_policy=workload_role_trust_policy(chosen),
                alternative_trust_policy=workload_role_trust_policy(other),
            )
        )

    okta = OktaAppConfig(
        app_name=OKTA_APP_NAME,
        sign_on_mode=OKTA_SIGN_ON_MODE,
        use_group_mapping=True,
        app_filter=OKTA_APP_FILTER,
        group_filter=okta_group_filter(),
        role_value_pattern=okta_role_value_pattern(emergency.saml_provider),
        session_duration=emergency.session_duration_seconds,
        identity_provider_arn=provider_arn,
        groups=tuple(OktaGroupConfig(r.okta_group, r.role_arn) for r in emergency_roles),
    )
    return RenderedPlan(
        emergency_account_id=emergency.id,
        saml_provider_name=emergency.saml_provider,
        saml_provider_arn=provider_arn,
        saml_audiences=audiences,
        workload_trust=emergency.workload_trust,
        session_duration_seconds=emergency.session_duration_seconds,
        emergency_roles=tuple(emergency_roles),
        workload_roles=tuple(workload_roles),
        okta=okta,
        levels=tuple(levels),
    )


def dumps(document: Any) -> str:
    """The JSON text the portal shows and writes: stable, readable, newline-terminated."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- Policy equivalence -------------------------------------------------------------------
#
# IAM evaluates a policy as the union of its statements, and a statement as the
# product of its principals, actions and resources under one condition. So two
# documents grant the same when they have the same set of "atoms" (effect,
# principal, action, resource, condition): statement order, how values are split
# across statements, and a single value vs a one-element list all drop out.
# Not-elements (NotAction, ...) cannot be split and stay whole.


class PolicyFormatError(ValueError):
    """Not a policy document."""


def load_policy(document: str | Mapping[str, Any]) -> dict[str, Any]:
    """A policy as a dict, from a dict or from (URL-encoded) JSON text as IAM returns it."""
    if isinstance(document, Mapping):
        return dict(document)
    text = document.strip()
    if text.startswith("%7B") or text.startswith("%7b"):
        text = unquote(text)
    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise PolicyFormatError(f"not JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise PolicyFormatError("a policy document is a JSON object")
    return loaded


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


_ACCOUNT_ID = re.compile(r"\d{12}")


def _principals(value: Any) -> list[tuple[str, str]]:
    if value == "*":
        return [("AWS", "*")]
    if not isinstance(value, Mapping):
        raise PolicyFormatError(f"a Principal is '*' or an object, got {value!r}")
    pairs = []
    for kind, items in value.items():
        for item in _as_list(items):
            text = str(item)
            if kind == "AWS" and _ACCOUNT_ID.fullmatch(text):
                # IAM stores a bare account id as the account's root ARN.
                text = account_root_arn(text)
            pairs.append((kind, text))
    return pairs


def _condition(value: Any) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    if not value:
        return ()
    if not isinstance(value, Mapping):
        raise PolicyFormatError(f"a Condition is an object, got {value!r}")
    canonical = []
    for operator, block in value.items():
        if not isinstance(block, Mapping):
            raise PolicyFormatError(f"condition {operator} must map keys to values")
        for key, values in block.items():
            texts = tuple(
                sorted({json.dumps(v) if not isinstance(v, str) else v for v in _as_list(values)})
            )
            # Condition keys are case-insensitive in IAM; operators and values are not.
            canonical.append((operator, key.lower(), texts))
    return tuple(sorted(canonical))


def _element(statement: Mapping[str, Any], name: str, normalise: Any = str) -> list[Any]:
    """The positive element split into its values, or its Not- form kept whole."""
    if name in statement:
        return [(name, normalise(v)) for v in _as_list(statement[name])]
    negated = f"Not{name}"
    if negated in statement:
        return [(negated, tuple(sorted(normalise(v) for v in _as_list(statement[negated]))))]
    return [(name, None)]


Atom = tuple[Any, ...]


def policy_atoms(document: str | Mapping[str, Any]) -> frozenset[Atom]:
    """The policy as a set of (effect, principal, action, resource, condition) atoms."""
    policy = load_policy(document)
    statements = policy.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        raise PolicyFormatError("a policy document needs a Statement")
    atoms: set[Atom] = set()
    for statement in statements:
        if not isinstance(statement, Mapping):
            raise PolicyFormatError(f"a statement is an object, got {statement!r}")
        effect = statement.get("Effect")
        if "Principal" in statement:
            principals: list[Any] = [("Principal", p) for p in _principals(statement["Principal"])]
        elif "NotPrincipal" in statement:
            principals = [("NotPrincipal", tuple(sorted(_principals(statement["NotPrincipal"]))))]
        else:
            principals = [("Principal", None)]
        # Action names are case-insensitive in IAM; resource ARNs are not.
        actions = _element(statement, "Action", lambda v: str(v).lower())
        resources = _element(statement, "Resource")
        condition = _condition(statement.get("Condition"))
        for principal in principals:
            for action in actions:
                for resource in resources:
                    atoms.add((effect, principal, action, resource, condition))
    return frozenset(atoms)


def policy_version(document: str | Mapping[str, Any]) -> str:
    # A document without a Version is read by IAM as the 2008-10-17 language.
    return str(load_policy(document).get("Version", "2008-10-17"))


def policies_equivalent(expected: Any, actual: Any) -> bool:
    """Do two documents grant (and deny) exactly the same? Text and order do not matter."""
    try:
        return policy_version(expected) == policy_version(actual) and policy_atoms(
            expected
        ) == policy_atoms(actual)
    except PolicyFormatError:
        return False


def _describe(atom: Atom) -> str:
    effect, (principal_kind, who), (action_kind, what), (resource_kind, where), cond = atom
    parts = [str(effect), str(what) if action_kind == "Action" else f"all but {list(what)}"]
    if who is not None:
        parts.append(
            f"for {who[0]} {who[1]}" if principal_kind == "Principal" else f"except {list(who)}"
        )
    if where is not None:
        parts.append(f"on {where}" if resource_kind == "Resource" else f"on all but {list(where)}")
    if cond:
        parts.append(
            "when " + " and ".join(f"{op} {key} in {list(values)}" for op, key, values in cond)
        )
    return " ".join(parts)


def policy_differences(expected: Any, actual: Any) -> list[str]:
    """What ``actual`` lacks and what it has in excess, one line each (empty: equivalent)."""
    try:
        want, have = policy_atoms(expected), policy_atoms(actual)
    except PolicyFormatError as exc:
        return [f"cannot be read as a policy: {exc}"]
    lines = [f"missing: {_describe(atom)}" for atom in sorted(want - have, key=repr)]
    lines += [f"not in the plan: {_describe(atom)}" for atom in sorted(have - want, key=repr)]
    if policy_version(expected) != policy_version(actual):
        lines.append(f"Version is {policy_version(actual)}, not {policy_version(expected)}")
    return lines


def principals_in(document: Any) -> set[str]:
    """Every principal value a policy names (to spot unique ids left by deleted roles)."""
    found: set[str] = set()
    for atom in policy_atoms(document):
        principal = atom[1][1]
        if isinstance(principal, tuple) and len(principal) == 2 and isinstance(principal[0], str):
            found.add(principal[1])
    return found


def unresolved_principals(document: Any) -> list[str]:
    """IAM's unique ids (AROA.../AIDA...) in a trust policy: a trusted role was deleted."""
    return sorted(p for p in principals_in(document) if re.fullmatch(r"A[RI]OA[A-Z0-9]{12,}", p))
