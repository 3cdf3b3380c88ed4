"""What the portal observed: Identity Center health samples, the Okta System Log cursor,
sign-in / sign-out evidence, changes made outside the portal, AWS session denies.

Kept out of ``federation/models.py`` (which imports these names, so Django registers
them in the ``federation`` app) because they are observations, not the access plan.
Foreign keys use string references: ``requests_app`` imports ``federation.models``.
"""

from __future__ import annotations

from django.db import models


class HealthSource(models.TextChoices):
    AWS_HEALTH = "aws-health", "AWS Health API"
    SSO_ADMIN = "sso-admin", "sso-admin ListInstances"
    IDENTITY_STORE = "identitystore", "identitystore ListUsers"
    ACCESS_PORTAL = "access-portal", "AWS access portal (HTTPS)"


class HealthSample(models.Model):
    """One observation of one source. ``ok`` is None when the source could not tell."""

    source = models.CharField(max_length=32, choices=HealthSource.choices)
    ok = models.BooleanField(null=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    recorded_at = models.DateTimeField(db_index=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["source", "-recorded_at"])]

    def __str__(self) -> str:
        verdict = {True: "ok", False: "failed", None: "unavailable"}[self.ok]
        return f"{self.source} {verdict} at {self.recorded_at:%H:%M:%S}"


class HealthStateChange(models.Model):
    """The derived Identity Center state changed (one row per transition)."""

    state = models.CharField(max_length=16)
    at = models.DateTimeField(db_index=True)
    evidence = models.JSONField(default=list, blank=True)
    # What approvers were told on this transition ("disrupted", "healthy" or nothing).
    notified = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.state} since {self.at:%Y-%m-%d %H:%M}"


# The Okta System Log poller's cursor (federation.failover.systemlog); the reconciler
# (requests_app.grants) reads it to know whether the log is being followed.
OKTA_SYSTEM_LOG = "okta-system-log"


class LogCursor(models.Model):
    """Where a poller stopped reading a log: Okta's opaque ``after`` cursor, persisted."""

    name = models.CharField(max_length=64, unique=True)
    after = models.TextField(blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_batch = models.PositiveIntegerField(default=0)  # events read by the last poll

    def __str__(self) -> str:
        return f"{self.name} after {self.after or '(start)'}"


class EvidenceKind(models.TextChoices):
    SIGN_IN = "sign_in", "Signed in to AWS"
    OKTA_SESSION_END = "okta_session_end", "Okta session ended"
    SELF_REPORTED = "self_reported", "Said they signed out"
    SESSIONS_REVOKED = "sessions_revoked", "Sessions revoked"
    # AWS's own record (EventBridge or CloudTrail) of the emergency role being used.
    AWS_ROLE_USE = "aws_role_use", "Used the role in AWS"


class SignInEvidence(models.Model):
    """One piece of sign-in or sign-out evidence about a person during a failover.

    Keyed by Okta login (a sign-in carries all the person's roles); ``source_id``
    is the System Log event uuid, the CloudTrail event id or a portal-made key, and
    unique, so reading the same event twice records it once.
    """

    failover = models.ForeignKey(
        "federation.Failover",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sign_in_evidence",
    )
    login = models.CharField(max_length=254, db_index=True)  # lower case
    kind = models.CharField(max_length=24, choices=EvidenceKind.choices)
    at = models.DateTimeField()
    source = models.CharField(max_length=32)  # okta-system-log | cloudtrail | portal
    source_id = models.CharField(max_length=200, unique=True)
    # CloudTrail names the role signed in to; the portal names the request it acted on.
    role = models.ForeignKey(
        "federation.EmergencyRole", null=True, blank=True, on_delete=models.PROTECT
    )
    request = models.ForeignKey(
        "requests_app.AccessRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sign_in_evidence",
    )
    detail = models.JSONField(default=dict, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["failover", "login", "at"])]

    def __str__(self) -> str:
        return f"{self.login} {self.kind} at {self.at:%H:%M:%S} ({self.source})"


class OutsideChangeAlert(models.Model):
    """Emergency access changed in Okta by someone other than the portal."""

    event_uuid = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=64)
    actor = models.CharField(max_length=254)
    target = models.CharField(max_length=300)
    published = models.DateTimeField()
    failover = models.ForeignKey(
        "federation.Failover", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-published", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type} by {self.actor} on {self.target}"


class RoleSessionDeny(models.Model):
    """AWS's "revoke older sessions" inline deny on one emergency role (one row per role).

    ``issued_before``: sessions whose token was issued earlier are denied. The
    policy stays until every such session would have expired anyway (removing it
    sooner would bring them back to life).
    """

    role = models.OneToOneField(
        "federation.EmergencyRole", on_delete=models.PROTECT, related_name="session_deny"
    )
    issued_before = models.DateTimeField()
    attached_at = models.DateTimeField(null=True, blank=True)
    pending = models.BooleanField(default=True)  # issued_before not yet written to AWS
    removed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"deny on {self.role_id} for tokens before {self.issued_before:%H:%M:%S}"


class RoleUseAlert(models.TextChoices):
    NONE = "", "Matched a grant"
    UNMATCHED = "unmatched", "No active grant for this person and role"
    NO_FAILOVER = "no_failover", "No failover open"


class AwsRoleUse(models.Model):
    """One use of an emergency role seen on the AWS side (EventBridge or CloudTrail):
    ``AssumeRoleWithSAML`` / ``ConsoleLogin`` in the emergency account, ``AssumeRole``
    into a workload account's ``EmergencyAccess_<LEVEL>``.

    ``event_id`` is CloudTrail's ``eventID`` (the same whichever way the event came),
    unique: a redelivered or re-polled event is recorded once.
    """

    event_id = models.CharField(max_length=200, unique=True)
    event_name = models.CharField(max_length=64)
    source = models.CharField(max_length=32)  # eventbridge | cloudtrail
    at = models.DateTimeField(db_index=True)
    aws_account_id = models.CharField(max_length=12, blank=True)
    aws_region = models.CharField(max_length=32, blank=True)
    role = models.ForeignKey(
        "federation.EmergencyRole", null=True, blank=True, on_delete=models.PROTECT
    )
    role_arn = models.CharField(max_length=300)  # the role used (as AWS named it)
    login = models.CharField(max_length=254, db_index=True)  # source identity or session, lower
    session_name = models.CharField(max_length=128, blank=True)
    source_identity = models.CharField(max_length=128, blank=True)
    source_ip = models.CharField(max_length=64, blank=True)
    grant = models.ForeignKey(
        "requests_app.AccessRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="aws_role_uses",
    )
    failover = models.ForeignKey(
        "federation.Failover",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="aws_role_uses",
    )
    alert = models.CharField(max_length=16, choices=RoleUseAlert.choices, blank=True)
    # Approvers and staff hear once per (role, person, hour): the first use of the key.
    alert_key = models.CharField(max_length=400, blank=True, db_index=True)
    notified = models.BooleanField(default=False)
    detail = models.JSONField(default=dict, blank=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        verdict = f"ALERT {self.alert}" if self.alert else f"grant #{self.grant_id}"
        return f"{self.event_name} {self.role_arn} by {self.login} ({verdict})"
