"""The access plan (accounts, levels, emergency roles) and the failover lifecycle."""

from __future__ import annotations

import re
from typing import Self

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

account_id_validator = RegexValidator(r"^\d{12}$", "An AWS account id is 12 digits.")
managed_policy_validator = RegexValidator(
    r"^arn:aws:iam::(aws|\d{12}):policy/[\w+=,.@/-]+$",
    "A managed policy ARN looks like arn:aws:iam::aws:policy/ReadOnlyAccess.",
)
level_name_validator = RegexValidator(
    r"^[A-Za-z][A-Za-z0-9]{0,31}$", "A level name is letters and digits, e.g. RO or Ops."
)
# AWS sign-in's SAML endpoints (the global one and the regional ones): the audiences
# an emergency role's trust policy accepts in SAML:aud.
SIGNIN_SAML_AUDIENCE = "https://signin.aws.amazon.com/saml"
SAML_AUDIENCE_RE = re.compile(
    r"https://([a-z]{2}(-gov)?-[a-z]+-\d\.)?signin\.aws\.amazon\.com/saml"
)
# Portal group names in the plan's eligibility lists and Okta group mapping. The portal's
# own role groups (approvers, auditors) are not among them: the plan never grants a role.
portal_group_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_.-]{0,79}$",
    "A portal group name is lower-case letters, digits, '.', '_' or '-', e.g. sre.",
)
RESERVED_GROUPS = frozenset({"approvers", "auditors"})
# Break-glass defaults of a level that does not say (docs/plan.md).
BREAK_GLASS_AFTER_MINUTES, BREAK_GLASS_MAX_MINUTES = 30, 60
READ_ONLY_POLICIES = frozenset(
    {"arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/ViewOnlyAccess"}
)


# A PagerDuty object id (schedule, escalation policy), e.g. PSCHED1 or P1B2C3D.
pagerduty_id_validator = RegexValidator(
    r"^[A-Z0-9]{2,20}$", "A PagerDuty id is upper-case letters and digits, e.g. P1B2C3D."
)


def default_break_glass(name: str, policy_arn: str) -> bool:
    """On for a read-only level (RO, or an AWS read-only policy), off otherwise (Ops)."""
    return name.upper() == "RO" or policy_arn in READ_ONLY_POLICIES


def validate_group_list(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError('A list of portal group names, e.g. ["sre"].')
    for item in value:
        portal_group_validator(item)
        if item in RESERVED_GROUPS:
            raise ValidationError(f"{item!r} is a portal role, not a group the plan may name.")
    if len(set(value)) != len(value):
        raise ValidationError("A group is listed twice.")


def validate_okta_groups(value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError(
            'A JSON object of Okta group -> portal group, e.g. {"okta-sre": "sre"}.'
        )
    for okta, portal in value.items():
        if not isinstance(okta, str) or not okta.strip() or not isinstance(portal, str):
            raise ValidationError(f"{okta!r}: map an Okta group name to a portal group name.")
        validate_group_list([portal])


# AWS's bounds for a SAML session (the Okta app's SessionDuration, the role's maximum).
MIN_SESSION_SECONDS, MAX_SESSION_SECONDS = 900, 43200


def default_saml_audiences() -> list[str]:
    return [SIGNIN_SAML_AUDIENCE]


def validate_saml_audiences(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("List at least one AWS sign-in SAML endpoint.")
    for item in value:
        if not isinstance(item, str) or not SAML_AUDIENCE_RE.fullmatch(item):
            raise ValidationError(
                f"{item!r} is not an AWS sign-in SAML endpoint, e.g. {SIGNIN_SAML_AUDIENCE} "
                "or https://us-west-2.signin.aws.amazon.com/saml."
            )
    if len(set(value)) != len(value):
        raise ValidationError("An endpoint is listed twice.")


class WorkloadTrust(models.TextChoices):
    """Whom a workload account's EmergencyAccess_<LEVEL> role trusts."""

    # Least privilege: only the one emergency role mapped to this account and level.
    EMERGENCY_ROLE = "emergency_role", "Only the mapped emergency role (least privilege)"
    # The AWS guide's example: the whole emergency account (any principal it allows).
    ACCOUNT_ROOT = "account_root", "The emergency account's root (the AWS guide's form)"


class EmergencyAccount(models.Model):
    """The one AWS account engineers federate into directly from Okta."""

    account_id = models.CharField(max_length=12, unique=True, validators=[account_id_validator])
    saml_provider = models.CharField(max_length=128, default="Okta")
    workload_trust = models.CharField(
        max_length=16,
        choices=WorkloadTrust.choices,
        default=WorkloadTrust.EMERGENCY_ROLE,
        help_text="Whom the workload accounts' EmergencyAccess_<LEVEL> roles trust.",
    )
    # The Okta app's SessionDuration: how long an AWS console session lasts after sign-in.
    session_duration_seconds = models.PositiveIntegerField(
        default=3600,
        validators=[MinValueValidator(MIN_SESSION_SECONDS), MaxValueValidator(MAX_SESSION_SECONDS)],
        help_text="The AWS console session length set in Okta (900 to 43200 seconds).",
    )
    saml_audiences = models.JSONField(
        default=default_saml_audiences,
        validators=[validate_saml_audiences],
        help_text="AWS sign-in SAML endpoints the emergency roles accept (SAML:aud), as a JSON "
        "list; add regional ones so sign-in does not depend on us-east-1.",
    )
    # The plan's [okta_groups]: an Okta sign-in's groups claim fills these portal groups.
    okta_groups = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_okta_groups],
        help_text='Okta group -> portal group, as a JSON object, e.g. {"okta-sre": "sre"}.',
    )

    def __str__(self) -> str:
        return self.account_id

    @property
    def saml_provider_arn(self) -> str:
        return f"arn:aws:iam::{self.account_id}:saml-provider/{self.saml_provider}"


class WorkloadAccount(models.Model):
    """An account reached by switching role from the emergency account."""

    emergency_account = models.ForeignKey(
        EmergencyAccount, on_delete=models.PROTECT, related_name="workload_accounts"
    )
    # N in EmergencyAccess_Role<N>_<LEVEL>: the account's position in the plan.
    number = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    account_id = models.CharField(max_length=12, unique=True, validators=[account_id_validator])
    name = models.CharField(max_length=64, unique=True)
    # Eligibility (requests_app/eligibility.py): empty = anyone (the open behaviour).
    requesters = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_group_list],
        help_text='Portal groups that may request these roles, as a JSON list, e.g. ["sre"].',
    )
    approvers = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_group_list],
        help_text='Portal groups whose approvers may decide these roles, e.g. ["sre-leads"].',
    )

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(
                fields=["emergency_account", "number"], name="unique_workload_number"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.account_id})"


class Level(models.Model):
    """An access level (RO, Ops): what the workload role may do and who must agree."""

    name = models.CharField(max_length=32, unique=True, validators=[level_name_validator])
    policy_arn = models.CharField(max_length=2048, validators=[managed_policy_validator])
    max_duration_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    approvals_required = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)]
    )
    position = models.PositiveSmallIntegerField(default=0)
    # Eligibility (requests_app/eligibility.py): empty = anyone (the open behaviour).
    requesters = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_group_list],
        help_text='Portal groups that may request these roles, as a JSON list, e.g. ["sre"].',
    )
    approvers = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_group_list],
        help_text='Portal groups whose approvers may decide these roles, e.g. ["sre-leads"].',
    )
    # Break-glass (requests_app/break_glass.py): self-activation when nobody answers.
    break_glass = models.BooleanField(
        default=False, help_text="The requester may activate the role themselves after the wait."
    )
    break_glass_after_minutes = models.PositiveIntegerField(
        default=BREAK_GLASS_AFTER_MINUTES,
        validators=[MinValueValidator(1)],
        help_text="Minutes a request waits unanswered before break-glass is offered.",
    )
    break_glass_max_minutes = models.PositiveIntegerField(
        default=BREAK_GLASS_MAX_MINUTES,
        validators=[MinValueValidator(1)],
        help_text="The longest a break-glass grant lasts.",
    )
    # The on-call rule (requests_app/oncall.py): a requester on call in PagerDuty for this
    # schedule, at this escalation level or a lower one, counts as one approval.
    oncall_schedule = models.CharField(
        max_length=20,
        blank=True,
        validators=[pagerduty_id_validator],
        help_text="PagerDuty schedule id whose on-call requester counts as one approval; "
        "empty = no on-call rule.",
    )
    oncall_escalation_level = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="The highest escalation level (tier) of the schedule that counts.",
    )

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def workload_role_name(self) -> str:
        return f"EmergencyAccess_{self.name}"


class EmergencyRoleQuerySet(models.QuerySet["EmergencyRole"]):
    def requestable(self) -> Self:
        return self.select_related("workload_account", "level", "emergency_account")


class EmergencyRole(models.Model):
    """One (workload account, level) pair: an IAM role and its Okta group."""

    emergency_account = models.ForeignKey(
        EmergencyAccount, on_delete=models.PROTECT, related_name="roles"
    )
    workload_account = models.ForeignKey(
        WorkloadAccount, on_delete=models.PROTECT, related_name="roles"
    )
    level = models.ForeignKey(Level, on_delete=models.PROTECT, related_name="roles")
    role_name = models.CharField(max_length=64, unique=True)
    okta_group_name = models.CharField(max_length=255, unique=True)
    # Cached once the group is found in Okta; names are the contract, ids a shortcut.
    okta_group_id = models.CharField(max_length=64, blank=True)

    objects = EmergencyRoleQuerySet.as_manager()

    class Meta:
        ordering = ["workload_account__number", "level__position", "level__name"]
        constraints = [
            models.UniqueConstraint(fields=["workload_account", "level"], name="unique_role")
        ]

    def __str__(self) -> str:
        return f"{self.workload_account.name} / {self.level.name}"

    @staticmethod
    def names_for(number: int, level: str, emergency_account_id: str) -> tuple[str, str]:
        role = f"EmergencyAccess_Role{number}_{level}"
        return role, f"aws#{role}#{emergency_account_id}"

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.emergency_account.account_id}:role/{self.role_name}"

    @property
    def workload_role_arn(self) -> str:
        return (
            f"arn:aws:iam::{self.workload_account.account_id}:role/{self.level.workload_role_name}"
        )


class FailoverStatus(models.TextChoices):
    # A real failover waiting for a second approver (REQUIRE_FAILOVER_CONFIRMATION).
    PROPOSED = "proposed", "Awaiting confirmation"
    ACTIVE = "active", "Active"
    # Identity Center is back; emergency users were told to sign out (the return to normal).
    RETURNING = "returning", "Returning to normal"
    CLOSING = "closing", "Closing"
    CLOSED = "closed", "Closed"


# Every change of a failover's status: name -> (allowed sources, target, audit action).
# ``federation.failover.services._move`` applies a row (state, fields and audit event in
# one place); a failover is created PROPOSED or ACTIVE by ``open_failover``.
FAILOVER_TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "confirm": (frozenset({FailoverStatus.PROPOSED}), FailoverStatus.ACTIVE, "failover.confirmed"),
    "withdraw": (frozenset({FailoverStatus.PROPOSED}), FailoverStatus.CLOSED, "failover.withdrawn"),
    "start_return": (
        frozenset({FailoverStatus.ACTIVE}),
        FailoverStatus.RETURNING,
        "failover.return_started",
    ),
    "begin_closing": (
        frozenset({FailoverStatus.ACTIVE, FailoverStatus.RETURNING}),
        FailoverStatus.CLOSING,
        "failover.closing",
    ),
    "close": (frozenset({FailoverStatus.CLOSING}), FailoverStatus.CLOSED, "failover.closed"),
}


class FailoverQuerySet(models.QuerySet["Failover"]):
    def open(self) -> Self:
        return self.filter(status=FailoverStatus.ACTIVE)

    def current(self) -> Failover | None:
        """The failover that is not yet closed, if any (at most one exists)."""
        return self.exclude(status=FailoverStatus.CLOSED).order_by("-opened_at").first()


class Failover(models.Model):
    """A declared Identity Center disruption (or a drill): the federation app is on."""

    status = models.CharField(
        max_length=16, choices=FailoverStatus.choices, default=FailoverStatus.ACTIVE
    )
    is_drill = models.BooleanField(default=False)
    reason = models.TextField()
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    app_activated_at = models.DateTimeField(null=True, blank=True)
    close_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    close_requested_at = models.DateTimeField(null=True, blank=True)
    app_deactivated_at = models.DateTimeField(null=True, blank=True)
    groups_emptied_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # When its Okta work (activate the app, or close) was sent or its retry is due: the
    # failover sweep re-sends it once overdue (a lost task, Redis down at the send).
    work_due_at = models.DateTimeField(null=True, blank=True)
    # A second, different approver confirmed a proposed real failover.
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)

    objects = FailoverQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # At most one failover that is not closed: the federation app has one state.
            # A constant expression: with several unclosed states (proposed, active,
            # returning, closing), a unique index on `status` alone would allow one of each.
            models.UniqueConstraint(
                models.Value(True),
                condition=~models.Q(status="closed"),
                name="one_unclosed_failover_any_state",
            )
        ]

    def __str__(self) -> str:
        return self.label(self.pk, self.is_drill)

    @staticmethod
    def label(pk: int, is_drill: bool) -> str:
        """What people call it, in messages and pages alike (its status is said separately)."""
        return f"{'Drill' if is_drill else 'Failover'} #{pk}"

    @property
    def is_open(self) -> bool:
        return self.status == FailoverStatus.ACTIVE


class DrillResult(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class ReturnToNormal(models.Model):
    """The return-to-normal checklist of one failover (federation/runbook.py).

    Created when the return starts (or when a failover is closed without the
    wizard); each step's evidence is kept here or in the audit log.
    """

    failover = models.OneToOneField(
        Failover, on_delete=models.CASCADE, related_name="return_to_normal"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    started_at = models.DateTimeField(null=True, blank=True)
    # Step 1: Identity Center health when the return started, or an approver's override.
    health_state = models.CharField(max_length=16, blank=True)
    health_override_reason = models.TextField(blank=True)
    # Step 2: every active emergency user was told to sign out.
    announced_at = models.DateTimeField(null=True, blank=True)
    announced_to = models.JSONField(default=list, blank=True)
    # Step 3: reminders to those still signed in.
    reminders_sent = models.PositiveIntegerField(default=0)
    last_reminder_at = models.DateTimeField(null=True, blank=True)
    # Step 4: deactivation, now or at a chosen time. The time is persisted and a beat
    # tick runs it when due: a Celery ETA alone would not survive a broker restart.
    deactivate_at = models.DateTimeField(null=True, blank=True)
    close_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    close_reason = models.TextField(blank=True)
    forced = models.BooleanField(default=False)
    still_signed_in_at_close = models.JSONField(default=list, blank=True)
    sessions_revoked_at = models.DateTimeField(null=True, blank=True)
    sessions_revoked_for = models.JSONField(default=list, blank=True)
    # Drills: what was proved, computed from the audit log and evidence at close.
    drill_result = models.CharField(max_length=8, choices=DrillResult.choices, blank=True)
    drill_checklist = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"Return to normal of {self.failover}"


class ReadinessStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PASS = "pass", "All pass"
    WARN = "warn", "Pass with warnings"
    FAIL = "fail", "Failing"
    UNKNOWN = "unknown", "Could not check"


class ReadinessRun(models.Model):
    """One check of AWS and Okta against the plan; ``results`` holds every check's outcome."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Daily schedule"
        MANUAL = "manual", "Run from the portal"
        COMMAND = "command", "manage.py verify_readiness"

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    status = models.CharField(
        max_length=16, choices=ReadinessStatus.choices, default=ReadinessStatus.RUNNING
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # [{"name", "area", "subject", "status", "detail", "fix"}, ...] in the order checked.
    results = models.JSONField(default=list, blank=True)
    # {"pass": n, "warn": n, "fail": n, "unknown": n}
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        indexes = [models.Index(fields=["status", "-started_at"], name="readiness_status_idx")]

    def __str__(self) -> str:
        return f"Readiness check #{self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status != ReadinessStatus.RUNNING


# Observations (health, System Log cursor, sign-in/out evidence, outside changes, AWS
# session denies) live in their own module; importing them here registers them.
from federation.evidence_models import (  # noqa: E402, F401
    AwsRoleUse,
    EvidenceKind,
    HealthSample,
    HealthSource,
    HealthStateChange,
    LogCursor,
    OutsideChangeAlert,
    RoleSessionDeny,
    RoleUseAlert,
    SignInEvidence,
)
