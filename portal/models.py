"""Cross-cutting records: the hash-chained audit log and personal API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from typing import Any, Self

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """One thing that happened. Append-only; each event hashes the one before it."""

    seq = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Kept as text too: the record must survive the user being renamed.
    actor_label = models.CharField(max_length=254)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["target_type", "target_id", "seq"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_type}:{self.target_id}"

    def canonical_fields(self) -> dict[str, Any]:
        return canonical_fields(
            seq=self.seq,
            created_at=self.created_at,
            actor_id=self.actor_id,
            actor_label=self.actor_label,
            action=self.action,
            target_type=self.target_type,
            target_id=self.target_id,
            payload=self.payload,
            client_ip=self.client_ip,
            prev_hash=self.prev_hash,
        )

    def canonical(self) -> bytes:
        """The bytes the hash covers (docs/audit.md, "The canonical form")."""
        return canonical_json(self.canonical_fields())

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()


def canonical_fields(
    *,
    seq: int,
    created_at: dt.datetime,
    actor_id: int | None,
    actor_label: str,
    action: str,
    target_type: str,
    target_id: str,
    payload: Any,
    client_ip: str | None,
    prev_hash: str,
) -> dict[str, Any]:
    """What one event says, as plain JSON values: the object the hash is taken over.

    An export line is exactly this object plus ``hash``, so anyone can re-hash it
    with a JSON library and SHA-256 (tools/verify_export.py does, stdlib only).
    """
    return {
        "seq": seq,
        # Always UTC with microseconds: what the database gives back, whatever TIME_ZONE is.
        "created_at": created_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        # The id binds the event to one account; the label is the name it had then.
        "actor_id": actor_id,
        "actor": actor_label,
        "action": action,
        "target": f"{target_type}:{target_id}",
        "payload": payload,
        "client_ip": client_ip,
        "prev_hash": prev_hash,
    }


def canonical_json(fields: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace, non-ASCII escaped: one byte string per event."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class ChainVerification(models.Model):
    """One run of the audit-chain verification (beat, ``verify_audit`` or "verify now").

    Operational bookkeeping, not evidence: the integrity badge reads the latest run
    so a page never re-hashes the whole log.
    """

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        INTACT = "intact", "Intact"
        BROKEN = "broken", "Broken"
        ERROR = "error", "Could not finish"

    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=128)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    events_checked = models.PositiveBigIntegerField(default=0)
    head_seq = models.PositiveBigIntegerField(null=True, blank=True)
    head_hash = models.CharField(max_length=64, blank=True)
    checkpoints_checked = models.PositiveIntegerField(default=0)
    latest_checkpoint_seq = models.PositiveBigIntegerField(null=True, blank=True)
    first_bad_seq = models.PositiveBigIntegerField(null=True, blank=True)
    # [{"seq": n, "reason": "..."}], the first few; the command lists them all.
    problems = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Chain verification {self.started_at:%Y-%m-%d %H:%M} {self.outcome}"

    @property
    def first_problem(self) -> str:
        return self.problems[0]["reason"] if self.problems else ""


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> Self:
        """Not revoked and not expired."""
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        )


class ApiToken(models.Model):
    """A personal API token; only its SHA-256 is stored, the token is shown once."""

    PREFIX = "eap_"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    # The first characters, so a person can tell their tokens apart.
    hint = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Null only for tokens made before tokens expired; new ones always carry an end.
    expires_at = models.DateTimeField(null=True, blank=True)
    # A read-only token is refused on every unsafe API method, whatever its owner may do.
    read_only = models.BooleanField(default=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def generate(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)


class NotificationLog(models.Model):
    """One notification on one channel: queued in the state change's transaction,
    marked sent or failed by the worker, so no message is lost silently."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SLACK = "slack", "Slack"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    channel = models.CharField(max_length=8, choices=Channel.choices)
    event = models.CharField(max_length=64, db_index=True)
    subject = models.CharField(max_length=255)
    recipients = models.JSONField(default=list, blank=True)
    link = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.channel} {self.event}: {self.subject} ({self.state})"


class SlackIdentity(models.Model):
    """Which portal user a Slack user is, for the Approve / Deny buttons."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_identities"
    )
    slack_user_id = models.CharField(max_length=32, unique=True)
    team_id = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "Slack identities"

    def __str__(self) -> str:
        return f"{self.slack_user_id} → {self.user}"


class PortalAccount(models.Model):
    """What the portal knows about an account beyond Django's user.

    ``okta_login`` is the Okta account that receives the access: set by an admin or
    from the Okta sign-in, never by the user (no self-service email changes).
    ``sessions_valid_after``: sessions started before it are ended (role removed).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portal_account"
    )
    okta_login = models.CharField(max_length=254, blank=True)
    okta_user_id = models.CharField(max_length=64, blank=True)
    sessions_valid_after = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} → {self.okta_login or '(email)'}"


class Heartbeat(models.Model):
    """The last sign of life of one piece of the machinery ("beat", "worker", "okta"...):
    what /readyz, `manage.py doctor` and the approvers' banner read."""

    name = models.CharField(max_length=64, primary_key=True)
    seen_at = models.DateTimeField()
    detail = models.CharField(max_length=254, blank=True)
    # The start of the current silence (or outage) once it was noticed; cleared on recovery.
    # Approvers are alerted once per episode: when this is set.
    alerted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} seen {self.seen_at:%Y-%m-%d %H:%M:%S}"
