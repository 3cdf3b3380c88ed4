"""The access plan as a TOML file: validate it, import it (idempotently), export it.

The file (see ``plans/demo.toml``)::

    [emergency_account]
    id = "123456789012"
    saml_provider = "Okta"
    # Optional, with these defaults:
    workload_trust = "emergency_role"   # or "account_root" (the AWS guide's form)
    session_duration_seconds = 3600     # the Okta app's SessionDuration, 900..43200
    saml_audiences = ["https://signin.aws.amazon.com/saml"]   # SAML:aud, add regional ones

    [[workload_accounts]]          # one table per account; N = its position, from 1
    id = "111111111111"
    name = "prod-payments"

    [[levels]]                     # one table per level
    name = "RO"
    policy = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    max_duration_minutes = 240
    approvals_required = 1
    # Optional (docs/plan.md): eligibility and break-glass
    requesters = ["sre"]           # portal groups that may request (also in an account)
    approvers = ["sre-leads"]      # portal groups whose approvers may decide it
    break_glass = true             # default: true for RO / read-only, false otherwise
    break_glass_after_minutes = 30
    break_glass_max_minutes = 60
    oncall_schedule = "P1B2C3D"    # PagerDuty: a requester on call counts as one approval
    oncall_escalation_level = 1    # ... at this escalation level (tier) or a lower one

    [okta_groups]                  # an Okta sign-in's groups claim fills portal groups
    "okta-sre" = "sre"

Workload account N gets, for each level, the emergency role
``EmergencyAccess_Role<N>_<LEVEL>`` and the Okta group
``aws#EmergencyAccess_Role<N>_<LEVEL>#<emergency id>``: an account's position in
the file is part of its roles' names.

Import makes the database hold exactly the file's plan, in one transaction, after
everything has been checked: the schema (every error is reported with its key
path; ``workload_accounts[2]`` is the second ``[[workload_accounts]]`` table, the
same N as in ``Role2``), that no failover is open when something would change,
and that nothing removed still has access requests. A changed file updates rows
in place where the names stay the same; a role whose name or target changes is
removed and created anew (refused when requests refer to it).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, ProtectedError
from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from federation.models import (
    BREAK_GLASS_AFTER_MINUTES,
    BREAK_GLASS_MAX_MINUTES,
    MAX_SESSION_SECONDS,
    MIN_SESSION_SECONDS,
    RESERVED_GROUPS,
    SAML_AUDIENCE_RE,
    EmergencyAccount,
    EmergencyRole,
    Failover,
    Level,
    WorkloadAccount,
    WorkloadTrust,
    account_id_validator,
    default_break_glass,
    default_saml_audiences,
    level_name_validator,
    managed_policy_validator,
    pagerduty_id_validator,
    portal_group_validator,
)
from portal import audit
from portal.core.types import User

# Upper bounds of the database columns (PositiveIntegerField, PositiveSmallIntegerField).
MAX_DURATION_MINUTES = 2_147_483_647
MAX_APPROVALS = 32_767
_SAML_PROVIDER_RE = re.compile(r"[\w.-]{1,128}", re.ASCII)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class PlanError(Exception):
    """The plan cannot be imported or exported; ``errors`` holds one line per problem."""

    def __init__(self, errors: str | list[str]) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))


# --- The schema -----------------------------------------------------------------


def _show(value: Any) -> str:
    """A TOML value as the person wrote it, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def _fail(expected: str, value: Any) -> PydanticCustomError:
    context = {"expected": expected, "got": _show(value)}
    return PydanticCustomError("plan_value", "must be {expected}, got {got}", context)


def _text(expected: str, *checks: Callable[[str], bool]) -> PlainValidator:
    def validate(value: Any) -> str:
        if not isinstance(value, str) or not all(check(value) for check in checks):
            raise _fail(expected, value)
        return value

    return PlainValidator(validate)


def _django_rule(validator: Callable[[str], None]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        # Django's regexes accept non-ASCII digits and a trailing newline: be stricter.
        if not value.isascii() or value != value.strip():
            return False
        try:
            validator(value)
        except DjangoValidationError:
            return False
        return True

    return check


def _count(expected: str, maximum: int) -> PlainValidator:
    def validate(value: Any) -> int:
        # TOML booleans are not numbers, and "240" in quotes is a string.
        if type(value) is not int or value < 1:
            raise _fail(expected, value)
        if value > maximum:
            raise _fail(f"at most {maximum}", value)
        return value

    return PlainValidator(validate)


AccountId = Annotated[
    str,
    _text(
        'a 12-digit AWS account id in quotes, e.g. "111111111111"',
        _django_rule(account_id_validator),
    ),
]
SamlProvider = Annotated[
    str,
    _text(
        "an IAM SAML provider name (letters, digits, '.', '_', '-')",
        lambda value: bool(_SAML_PROVIDER_RE.fullmatch(value)),
    ),
]
AccountName = Annotated[
    str,
    _text(
        "a name of 1 to 64 characters without leading or trailing spaces",
        lambda value: 0 < len(value) <= 64 and value == value.strip(),
        lambda value: not _CONTROL_RE.search(value),
    ),
]
LevelName = Annotated[
    str,
    _text(
        "a level name of letters and digits starting with a letter (at most 32), e.g. RO",
        _django_rule(level_name_validator),
    ),
]
PolicyArn = Annotated[
    str,
    _text(
        "a managed policy ARN, e.g. arn:aws:iam::aws:policy/ReadOnlyAccess",
        _django_rule(managed_policy_validator),
    ),
]
Minutes = Annotated[int, _count("a positive integer (minutes)", MAX_DURATION_MINUTES)]
PagerDutyId = Annotated[
    str,
    _text(
        'a PagerDuty schedule id in quotes, e.g. "P1B2C3D"',
        _django_rule(pagerduty_id_validator),
    ),
]
EscalationLevel = Annotated[int, _count("an escalation level (1 = the first tier)", 20)]
TrustForm = Annotated[
    str,
    _text(
        " or ".join(f'"{value}"' for value in WorkloadTrust.values),
        lambda value: value in WorkloadTrust.values,
    ),
]


def _session_seconds(value: Any) -> int:
    if type(value) is not int or not MIN_SESSION_SECONDS <= value <= MAX_SESSION_SECONDS:
        raise _fail(f"seconds from {MIN_SESSION_SECONDS} to {MAX_SESSION_SECONDS}", value)
    return value


def _audiences(value: Any) -> list[str]:
    expected = 'a list of AWS sign-in SAML endpoints, e.g. ["https://signin.aws.amazon.com/saml"]'
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) and SAML_AUDIENCE_RE.fullmatch(item) for item in value)
    ):
        raise _fail(expected, value)
    if len(set(value)) != len(value):
        raise _fail("a list without repeats", value)
    return value


_GROUP_EXPECTED = "a portal group name (lower-case letters, digits, '.', '_', '-'), e.g. \"sre\""


def _group_name(value: Any) -> str:
    if not isinstance(value, str) or not _django_rule(portal_group_validator)(value):
        raise _fail(_GROUP_EXPECTED, value)
    if value in RESERVED_GROUPS:
        raise _fail("a group other than the portal roles (approvers, auditors)", value)
    return value


def _groups(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _fail('a list of portal group names, e.g. ["sre"]', value)
    names = [_group_name(item) for item in value]
    if len(set(names)) != len(names):
        raise _fail("a list without repeats", value)
    return names


def _okta_groups(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _fail('a table of "okta group" = "portal group"', value)
    for okta, portal in value.items():
        if not okta.strip() or _CONTROL_RE.search(okta):
            raise _fail("an Okta group name", okta)
        _group_name(portal)
    return dict(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail("true or false", value)
    return value


SessionSeconds = Annotated[int, PlainValidator(_session_seconds)]
Groups = Annotated[list[str], PlainValidator(_groups)]
OktaGroups = Annotated[dict[str, str], PlainValidator(_okta_groups)]
Flag = Annotated[bool, PlainValidator(_flag)]
SamlAudiences = Annotated[list[str], PlainValidator(_audiences)]
Approvals = Annotated[int, _count("a positive integer", MAX_APPROVALS)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmergencyAccountSpec(_Table):
    id: AccountId
    saml_provider: SamlProvider
    workload_trust: TrustForm = WorkloadTrust.EMERGENCY_ROLE.value
    session_duration_seconds: SessionSeconds = 3600
    saml_audiences: SamlAudiences = Field(default_factory=default_saml_audiences)

    def federation_values(self) -> dict[str, Any]:
        """The columns of EmergencyAccount besides its id (compared and saved on import)."""
        return {
            "saml_provider": self.saml_provider,
            "workload_trust": self.workload_trust,
            "session_duration_seconds": self.session_duration_seconds,
            "saml_audiences": list(self.saml_audiences),
        }


def _emergency_values(spec: PlanSpec) -> dict[str, Any]:
    """EmergencyAccount's columns besides its id: the federation keys and [okta_groups]."""
    return {**spec.emergency_account.federation_values(), "okta_groups": dict(spec.okta_groups)}


class WorkloadAccountSpec(_Table):
    id: AccountId
    name: AccountName
    requesters: Groups = Field(default_factory=list)
    approvers: Groups = Field(default_factory=list)


class LevelSpec(_Table):
    name: LevelName
    policy: PolicyArn
    max_duration_minutes: Minutes
    approvals_required: Approvals
    requesters: Groups = Field(default_factory=list)
    approvers: Groups = Field(default_factory=list)
    # None: the default for the level (on for read-only, off otherwise).
    break_glass: Flag | None = None
    break_glass_after_minutes: Minutes = BREAK_GLASS_AFTER_MINUTES
    break_glass_max_minutes: Minutes = BREAK_GLASS_MAX_MINUTES
    # The on-call rule (docs/plan.md): a requester on call counts as one approval.
    oncall_schedule: PagerDutyId | None = None
    oncall_escalation_level: EscalationLevel = 1

    @property
    def break_glass_on(self) -> bool:
        if self.break_glass is None:
            return default_break_glass(self.name, self.policy)
        return self.break_glass


@dataclass(frozen=True)
class RoleSpec:
    number: int
    account_id: str
    level: str
    role_name: str
    okta_group_name: str


class PlanSpec(_Table):
    """A validated plan: what the database should hold."""

    emergency_account: EmergencyAccountSpec
    workload_accounts: list[WorkloadAccountSpec] = Field(min_length=1)
    levels: list[LevelSpec] = Field(min_length=1)
    okta_groups: OktaGroups = Field(default_factory=dict)

    def roles(self) -> Iterator[RoleSpec]:
        emergency_id = self.emergency_account.id
        for number, account in enumerate(self.workload_accounts, start=1):
            for level in self.levels:
                role_name, group = EmergencyRole.names_for(number, level.name, emergency_id)
                yield RoleSpec(number, account.id, level.name, role_name, group)


_ARRAYS = {"workload_accounts", "levels"}


def _key_path(loc: tuple[str | int, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item + 1}]")  # the first table is [1], as in Role1
        else:
            key = item if re.fullmatch(r"[A-Za-z0-9_-]+", item) else _toml_string(item)
            parts.append(f".{key}" if parts else key)
    return "".join(parts) or "(top level)"


def _message(error: Any) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in {"model_type", "model_attributes_type", "dict_type"}:
        return f"must be a table, got {_show(error['input'])}"
    if kind == "list_type":
        name = loc[-1] if loc else "?"
        return f"must be an array of tables: write each one as [[{name}]]"
    if kind == "too_short":
        return "must list at least one entry"
    return str(error["msg"])


def _schema_errors(exc: PydanticValidationError) -> list[str]:
    return [f"{_key_path(err['loc'])}: {_message(err)}" for err in exc.errors()]


def _cross_errors(spec: PlanSpec) -> list[str]:
    """What the schema of a single table cannot see: duplicates across the file."""
    errors: list[str] = []
    emergency_id = spec.emergency_account.id

    def unique(items: list[Any], array: str, key: str, attr: str, fold: bool = False) -> None:
        seen: dict[str, int] = {}
        for index, item in enumerate(items, start=1):
            value = getattr(item, attr)
            folded = value.casefold() if fold else value
            if folded in seen:
                errors.append(
                    f"{array}[{index}].{key}: {_show(value)} is already used by "
                    f"{array}[{seen[folded]}]" + (" (names differ only in case)" if fold else "")
                )
            else:
                seen[folded] = index

    unique(spec.workload_accounts, "workload_accounts", "id", "id")
    unique(spec.workload_accounts, "workload_accounts", "name", "name")
    unique(spec.levels, "levels", "name", "name", fold=True)
    for index, level in enumerate(spec.levels, start=1):
        if level.break_glass_max_minutes > level.max_duration_minutes and (
            "break_glass_max_minutes" in level.model_fields_set
        ):
            errors.append(
                f"levels[{index}].break_glass_max_minutes: {level.break_glass_max_minutes} is "
                f"more than the level's max_duration_minutes ({level.max_duration_minutes})"
            )
    for index, account in enumerate(spec.workload_accounts, start=1):
        if account.id == emergency_id:
            errors.append(
                f"workload_accounts[{index}].id: {_show(account.id)} is the emergency account; "
                "a workload account must be another account"
            )
    return errors


def parse_plan(text: str) -> PlanSpec:
    """Parse and validate a plan; PlanError lists every problem with its key path."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message carries the place: "... (at line 3, column 7)".
        raise PlanError(f"invalid TOML: {exc}") from None
    try:
        spec = PlanSpec.model_validate(data)
    except PydanticValidationError as exc:
        raise PlanError(_schema_errors(exc)) from None
    errors = _cross_errors(spec)
    if errors:
        raise PlanError(errors)
    return spec


def read_plan_file(path: str | Path) -> tuple[str, str]:
    """The text of a plan file and the SHA-256 of its bytes."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise PlanError(f"cannot read the plan file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(f"invalid TOML: not UTF-8 text (byte {exc.start})") from None
    return text, hashlib.sha256(raw).hexdigest()


# --- Changes --------------------------------------------------------------------

Kind = Literal["emergency account", "workload account", "level", "role"]


@dataclass(frozen=True)
class Change:
    """One row created, updated or removed by an import."""

    action: Literal["created", "updated", "removed"]
    kind: Kind
    key: str
    fields: tuple[tuple[str, Any, Any], ...] = ()
    note: str = ""

    def __str__(self) -> str:
        text = f"{self.action} {self.kind} {self.key}"
        if self.fields:
            text += ": " + ", ".join(f"{name} {old!r} -> {new!r}" for name, old, new in self.fields)
        if self.note:
            text += f" ({self.note})"
        return text

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"action": self.action, "kind": self.kind, "key": self.key}
        if self.fields:
            data["fields"] = {name: [old, new] for name, old, new in self.fields}
        if self.note:
            data["note"] = self.note
        return data


@dataclass
class ImportResult:
    changes: list[Change]
    sha256: str

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def summary(self) -> str:
        if not self.changes:
            return "unchanged"
        counts: dict[str, int] = {}
        for change in self.changes:
            counts[change.action] = counts.get(change.action, 0) + 1
        return ", ".join(f"{n} {action}" for action, n in counts.items())


def _updates(obj: Any, wanted: dict[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    return tuple(
        (name, getattr(obj, name), value)
        for name, value in wanted.items()
        if getattr(obj, name) != value
    )


@dataclass
class _Reconciliation:
    """What must change for the database to hold ``spec``: computed first, then applied."""

    spec: PlanSpec
    changes: list[Change] = field(default_factory=list)
    emergency: EmergencyAccount | None = None
    emergency_updates: tuple[tuple[str, Any, Any], ...] = ()
    removed_emergencies: list[EmergencyAccount] = field(default_factory=list)
    accounts: dict[str, WorkloadAccount] = field(default_factory=dict)
    account_updates: dict[str, tuple[tuple[str, Any, Any], ...]] = field(default_factory=dict)
    removed_accounts: list[WorkloadAccount] = field(default_factory=list)
    levels: dict[str, Level] = field(default_factory=dict)
    level_updates: dict[str, tuple[tuple[str, Any, Any], ...]] = field(default_factory=dict)
    removed_levels: list[Level] = field(default_factory=list)
    # Role -> why it goes (for the refusal message when requests refer to it).
    removed_roles: list[tuple[EmergencyRole, str]] = field(default_factory=list)
    new_roles: list[RoleSpec] = field(default_factory=list)

    def compute(self) -> None:
        self._emergency()
        self._levels()
        self._accounts()
        self._roles()
        # Report removals last, roles first so the list reads top-down.
        self.changes.extend(
            Change("removed", "role", role.role_name, note=why) for role, why in self.removed_roles
        )
        self.changes.extend(
            Change("removed", "workload account", a.account_id, note=a.name)
            for a in self.removed_accounts
        )
        self.changes.extend(Change("removed", "level", lv.name) for lv in self.removed_levels)
        self.changes.extend(
            Change("removed", "emergency account", e.account_id) for e in self.removed_emergencies
        )

    def _emergency(self) -> None:
        wanted = self.spec.emergency_account
        for existing in EmergencyAccount.objects.order_by("pk"):
            if existing.account_id == wanted.id:
                self.emergency = existing
            else:
                self.removed_emergencies.append(existing)
        if self.emergency is None:
            note = f"SAML provider {wanted.saml_provider}"
            self.changes.append(Change("created", "emergency account", wanted.id, note=note))
            return
        self.emergency_updates = _updates(self.emergency, _emergency_values(self.spec))
        if self.emergency_updates:
            self.changes.append(
                Change("updated", "emergency account", wanted.id, self.emergency_updates)
            )

    def _levels(self) -> None:
        existing = {level.name: level for level in Level.objects.all()}
        for position, wanted in enumerate(self.spec.levels, start=1):
            values = self._level_values(wanted, position)
            level = existing.pop(wanted.name, None)
            if level is None:
                self.changes.append(
                    Change("created", "level", wanted.name, note=_describe_level(wanted))
                )
                continue
            self.levels[wanted.name] = level
            updates = _updates(level, values)
            if updates:
                self.level_updates[wanted.name] = updates
                self.changes.append(Change("updated", "level", wanted.name, updates))
        self.removed_levels = list(existing.values())

    @staticmethod
    def _level_values(wanted: LevelSpec, position: int) -> dict[str, Any]:
        return {
            "policy_arn": wanted.policy,
            "max_duration_minutes": wanted.max_duration_minutes,
            "approvals_required": wanted.approvals_required,
            "position": position,
            "requesters": list(wanted.requesters),
            "approvers": list(wanted.approvers),
            "break_glass": wanted.break_glass_on,
            "break_glass_after_minutes": wanted.break_glass_after_minutes,
            "break_glass_max_minutes": wanted.break_glass_max_minutes,
            "oncall_schedule": wanted.oncall_schedule or "",
            "oncall_escalation_level": wanted.oncall_escalation_level,
        }

    @staticmethod
    def _account_values(wanted: WorkloadAccountSpec, number: int) -> dict[str, Any]:
        return {
            "number": number,
            "name": wanted.name,
            "requesters": list(wanted.requesters),
            "approvers": list(wanted.approvers),
        }

    def _accounts(self) -> None:
        existing = {
            account.account_id: account
            for account in WorkloadAccount.objects.select_related("emergency_account")
        }
        for number, wanted in enumerate(self.spec.workload_accounts, start=1):
            account = existing.pop(wanted.id, None)
            if account is None:
                note = f"#{number} {wanted.name}"
                self.changes.append(Change("created", "workload account", wanted.id, note=note))
                continue
            self.accounts[wanted.id] = account
            updates = _updates(account, self._account_values(wanted, number))
            if account.emergency_account.account_id != self.spec.emergency_account.id:
                updates += (
                    (
                        "emergency_account",
                        account.emergency_account.account_id,
                        self.spec.emergency_account.id,
                    ),
                )
            if updates:
                self.account_updates[wanted.id] = updates
                self.changes.append(Change("updated", "workload account", wanted.id, updates))
        self.removed_accounts = list(existing.values())

    def _roles(self) -> None:
        wanted = {role.role_name: role for role in self.spec.roles()}
        kept: set[str] = set()
        roles = EmergencyRole.objects.select_related(
            "emergency_account", "workload_account", "level"
        ).order_by("pk")
        for role in roles:
            target = wanted.get(role.role_name)
            if target is not None and (
                role.okta_group_name == target.okta_group_name
                and role.workload_account.account_id == target.account_id
                and role.level.name == target.level
                and role.emergency_account.account_id == self.spec.emergency_account.id
            ):
                kept.add(role.role_name)
            else:
                self.removed_roles.append((role, self._why_removed(role)))
        for target in wanted.values():
            if target.role_name not in kept:
                self.new_roles.append(target)
                note = f"group {target.okta_group_name}"
                self.changes.append(Change("created", "role", target.role_name, note=note))

    def _why_removed(self, role: EmergencyRole) -> str:
        account_id = role.workload_account.account_id
        if role.emergency_account.account_id != self.spec.emergency_account.id:
            return f"the emergency account changed to {self.spec.emergency_account.id}"
        if any(a.account_id == account_id for a in self.removed_accounts) or (
            account_id not in {a.id for a in self.spec.workload_accounts}
        ):
            return f"workload account {account_id} is no longer in the plan"
        if role.level.name not in {level.name for level in self.spec.levels}:
            return f"level {role.level.name} is no longer in the plan"
        number = next(
            n for n, a in enumerate(self.spec.workload_accounts, start=1) if a.id == account_id
        )
        if number != role.workload_account.number:
            return (
                f"workload account {account_id} moved from position "
                f"{role.workload_account.number} to {number}, which renames its roles"
            )
        return "its name no longer matches the plan"

    def refusals(self) -> list[str]:
        """Removals the database must refuse: requests keep their role, account and level."""
        removed = {role.pk: (role, why) for role, why in self.removed_roles}
        in_use = (
            EmergencyRole.objects.filter(pk__in=removed)
            .annotate(n=Count("requests"))
            .filter(n__gt=0)
            .values_list("pk", "n")
        )
        problems = []
        for pk, n in sorted(in_use):
            role, why = removed[pk]
            problems.append(
                f"cannot remove role {role.role_name} ({role.workload_account.name} / "
                f"{role.level.name}): {n} access request{'s' if n != 1 else ''} refer to it "
                f"and their history must stay; it would go because {why}"
            )
        return problems

    def apply(self) -> None:
        # Deletions first, so the names they free can be reused below.
        EmergencyRole.objects.filter(pk__in=[role.pk for role, _ in self.removed_roles]).delete()
        WorkloadAccount.objects.filter(pk__in=[a.pk for a in self.removed_accounts]).delete()
        Level.objects.filter(pk__in=[level.pk for level in self.removed_levels]).delete()

        wanted = self.spec.emergency_account
        if self.emergency is None:
            self.emergency = _saved(
                EmergencyAccount(account_id=wanted.id, **_emergency_values(self.spec))
            )
        elif self.emergency_updates:
            for name, value in _emergency_values(self.spec).items():
                setattr(self.emergency, name, value)
            _saved(self.emergency)

        for position, spec in enumerate(self.spec.levels, start=1):
            level = self.levels.get(spec.name) or Level(name=spec.name)
            if level.pk is None or spec.name in self.level_updates:
                for name, value in self._level_values(spec, position).items():
                    setattr(level, name, value)
                self.levels[spec.name] = _saved(level)

        self._apply_accounts(self.emergency)

        for role in self.new_roles:
            name, group = role.role_name, role.okta_group_name
            _saved(
                EmergencyRole(
                    emergency_account=self.emergency,
                    workload_account=self.accounts[role.account_id],
                    level=self.levels[role.level],
                    role_name=name,
                    okta_group_name=group,
                )
            )
        EmergencyAccount.objects.filter(pk__in=[e.pk for e in self.removed_emergencies]).delete()

    def _apply_accounts(self, emergency: EmergencyAccount) -> None:
        changed = [self.accounts[account_id] for account_id in self.account_updates]
        # Numbers and names are unique: park the changed rows first, so two accounts
        # can swap positions or names inside the one transaction.
        for account in changed:
            WorkloadAccount.objects.filter(pk=account.pk).update(
                number=1_000_000 + account.pk, name=f"~moving~{account.pk}"
            )
        for number, spec in enumerate(self.spec.workload_accounts, start=1):
            account = self.accounts.get(spec.id) or WorkloadAccount(account_id=spec.id)
            if account.pk is None or spec.id in self.account_updates:
                for name, value in self._account_values(spec, number).items():
                    setattr(account, name, value)
                account.emergency_account = emergency
                self.accounts[spec.id] = _saved(account)


def _saved(obj: Any) -> Any:
    obj.clean_fields()  # the model's own validators, as a last guard
    obj.save()
    return obj


def _describe_level(level: LevelSpec) -> str:
    approvals = level.approvals_required
    return (
        f"{level.policy}, at most {level.max_duration_minutes} min, "
        f"{approvals} approval{'s' if approvals != 1 else ''}"
    )


# --- Import ---------------------------------------------------------------------


def import_plan(
    text: str,
    *,
    sha256: str | None = None,
    source: str = "",
    actor: User | None = None,
    system: str = "import_plan",
) -> ImportResult:
    """Make the database hold the plan in ``text``; all or nothing.

    Raises PlanError (nothing written) for an invalid file, for a change while a
    failover is open, and for removing roles that access requests refer to.
    """
    spec = parse_plan(text)
    digest = sha256 or hashlib.sha256(text.encode()).hexdigest()
    try:
        with transaction.atomic():
            work = _Reconciliation(spec)
            work.compute()
            if not work.changes:
                return ImportResult([], digest)
            audit.lock_chain()  # the lock order: the audit chain, then rows
            failover = Failover.objects.select_for_update().current()
            if failover is not None:
                raise PlanError(
                    f"{failover} is not closed: the access plan cannot change during an "
                    "emergency or a drill. Close it first, then import again."
                )
            refusals = work.refusals()
            if refusals:
                raise PlanError(refusals)
            work.apply()
            audit.record(
                "plan.imported",
                ("plan", spec.emergency_account.id),
                actor=actor,
                system=system,
                payload={
                    "sha256": digest,
                    "source": source,
                    "summary": ImportResult(work.changes, digest).summary(),
                    "changes": [change.as_dict() for change in work.changes],
                },
            )
    except ProtectedError as exc:
        names = ", ".join(sorted(str(obj) for obj in exc.protected_objects)[:5])
        raise PlanError(f"cannot remove rows that other records refer to: {names}") from None
    except IntegrityError as exc:
        raise PlanError(
            f"the plan changed in the database while importing ({exc}); import again"
        ) from None
    except DjangoValidationError as exc:
        raise PlanError([f"invalid value: {message}" for message in exc.messages]) from None
    return ImportResult(work.changes, digest)


def import_plan_file(
    path: str | Path, *, actor: User | None = None, system: str = "import_plan"
) -> ImportResult:
    text, digest = read_plan_file(path)
    return import_plan(text, sha256=digest, source=str(path), actor=actor, system=system)


# --- Export ---------------------------------------------------------------------


def _toml_string(value: str) -> str:
    """A TOML basic string (quotes, backslashes and control characters escaped)."""
    escapes = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n"}
    escapes |= {"\f": "\\f", "\r": "\\r"}
    out = []
    for char in value:
        if char in escapes:
            out.append(escapes[char])
        elif _CONTROL_RE.match(char):
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return str(value)


def current_plan() -> PlanSpec:
    """The plan the database holds, as the file would state it."""
    emergencies = list(EmergencyAccount.objects.order_by("pk"))
    if not emergencies:
        raise PlanError("there is no access plan in the database yet: import one first")
    if len(emergencies) > 1:
        ids = ", ".join(e.account_id for e in emergencies)
        raise PlanError(f"the database holds several emergency accounts ({ids}); a plan has one")
    emergency = emergencies[0]
    accounts = list(emergency.workload_accounts.order_by("number"))
    numbers = [account.number for account in accounts]
    if numbers != list(range(1, len(accounts) + 1)):
        raise PlanError(
            f"workload account numbers are {numbers}, not 1..{len(accounts)}: the file numbers "
            "accounts by position, so renumber them in the admin first"
        )
    data = {
        "emergency_account": {
            "id": emergency.account_id,
            "saml_provider": emergency.saml_provider,
            "workload_trust": emergency.workload_trust,
            "session_duration_seconds": emergency.session_duration_seconds,
            "saml_audiences": emergency.saml_audiences,
        },
        "workload_accounts": [
            {
                "id": a.account_id,
                "name": a.name,
                "requesters": a.requesters,
                "approvers": a.approvers,
            }
            for a in accounts
        ],
        "levels": [_level_data(level) for level in Level.objects.order_by("position", "name")],
        "okta_groups": emergency.okta_groups,
    }
    try:
        return PlanSpec.model_validate(data)
    except PydanticValidationError as exc:
        raise PlanError(
            ["the database holds a plan the file format cannot state:", *_schema_errors(exc)]
        ) from None


def _level_data(level: Level) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": level.name,
        "policy": level.policy_arn,
        "max_duration_minutes": level.max_duration_minutes,
        "approvals_required": level.approvals_required,
        "requesters": level.requesters,
        "approvers": level.approvers,
        "break_glass_after_minutes": level.break_glass_after_minutes,
        "break_glass_max_minutes": level.break_glass_max_minutes,
        "oncall_escalation_level": level.oncall_escalation_level,
    }
    if level.oncall_schedule:
        data["oncall_schedule"] = level.oncall_schedule
    if level.break_glass != default_break_glass(level.name, level.policy_arn):
        data["break_glass"] = level.break_glass
    return data


# Optional keys left out of an exported table while they hold their default.
_OPTIONAL_DEFAULTS: dict[str, Any] = {
    "requesters": [],
    "approvers": [],
    "break_glass": None,
    "break_glass_after_minutes": BREAK_GLASS_AFTER_MINUTES,
    "break_glass_max_minutes": BREAK_GLASS_MAX_MINUTES,
    "oncall_schedule": None,
    "oncall_escalation_level": 1,
}


def _without_defaults(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in values.items()
        if key not in _OPTIONAL_DEFAULTS or value != _OPTIONAL_DEFAULTS[key]
    }


def render_plan(spec: PlanSpec) -> str:
    """The TOML text of a plan (the layout of plans/demo.toml, without its comments)."""
    data = spec.model_dump()  # the spec's field names are the file's keys
    lines = [
        "# The emergency access plan, exported by `manage.py export_plan`.",
        "# Import it with `manage.py import_plan FILE`.",
    ]
    tables = [("[emergency_account]", data["emergency_account"])]
    tables += [("[[workload_accounts]]", _without_defaults(a)) for a in data["workload_accounts"]]
    tables += [("[[levels]]", _without_defaults(level)) for level in data["levels"]]
    if data["okta_groups"]:
        tables.append(("[okta_groups]", data["okta_groups"]))
    for header, values in tables:
        lines += ["", header]
        for key, value in values.items():
            name = key if header != "[okta_groups]" else _toml_string(key)
            lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def export_plan() -> str:
    """The current plan as TOML text; importing it again changes nothing."""
    return render_plan(current_plan())
