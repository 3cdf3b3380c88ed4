"""Access requests: who asked for which emergency role, and where that stands."""

from __future__ import annotations

import datetime as dt
from typing import Self

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from federation.models import EmergencyRole, Failover
from portal.core.access import can_see_all_requests
from portal.core.types import User


class Status(models.TextChoices):
    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved, being granted"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"
    DENIED = "denied", "Denied"
    CANCELLED = "cancelled", "Cancelled"
    LAPSED = "lapsed", "Lapsed"
    FAILED = "failed", "Failed"


# The state machine: transition name -> (states it may start from, state it ends in).
# Nothing sets AccessRequest.status except requests_app.services, through this table.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "approve": (frozenset({Status.PENDING}), Status.APPROVED),
    "deny": (frozenset({Status.PENDING}), Status.DENIED),
    "cancel": (frozenset({Status.PENDING}), Status.CANCELLED),
    "lapse": (frozenset({Status.PENDING}), Status.LAPSED),
    "activate": (frozenset({Status.APPROVED}), Status.ACTIVE),
    "fail": (frozenset({Status.APPROVED}), Status.FAILED),
    "expire": (frozenset({Status.ACTIVE}), Status.EXPIRED),
    "revoke": (frozenset({Status.APPROVED, Status.ACTIVE}), Status.REVOKED),
    # The requester ends their own grant early ("End my access now"): revoked, by them.
    "end": (frozenset({Status.APPROVED, Status.ACTIVE}), Status.REVOKED),
    # Nobody answered: the requester activates the grant themselves (requests_app.break_glass).
    "break_glass": (frozenset({Status.PENDING}), Status.APPROVED),
}
# The audit action of a transition whose target state does not say enough on its own.
TRANSITION_ACTIONS: dict[str, str] = {"break_glass": "request.break_glass"}

OPEN_STATUSES = frozenset({Status.PENDING, Status.APPROVED, Status.ACTIVE})
ONE_OPEN_REQUEST = "one_open_request_per_person_and_role"
# States in which the requester may be (or is about to be) a member of the Okta group.
HOLDING_STATUSES = frozenset({Status.APPROVED, Status.ACTIVE})
# Ended states after which the Okta membership must be gone.
ENDED_GRANT_STATUSES = frozenset({Status.EXPIRED, Status.REVOKED, Status.FAILED})


class AccessRequestQuerySet(models.QuerySet["AccessRequest"]):
    def visible_to(self, user: User) -> Self:
        if can_see_all_requests(user):
            return self
        return self.filter(requester=user)

    def with_related(self) -> Self:
        return self.select_related(
            "requester",
            "role__workload_account",
            "role__level",
            "role__emergency_account",
            "failover",
        ).prefetch_related("approvals__approver")


class AccessRequest(models.Model):
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests"
    )
    role = models.ForeignKey(EmergencyRole, on_delete=models.PROTECT, related_name="requests")
    failover = models.ForeignKey(Failover, on_delete=models.PROTECT, related_name="requests")
    justification = models.TextField()
    ticket = models.CharField(max_length=128)
    duration_minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    # The Okta login is the portal email; its Okta id is remembered once found.
    okta_login = models.CharField(max_length=254)
    okta_user_id = models.CharField(max_length=64, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision_comment = models.TextField(blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    end_reason = models.TextField(blank=True)
    # Set once Okta confirmed the member is gone; until then the reconciler keeps trying.
    membership_removed_at = models.DateTimeField(null=True, blank=True)
    provisioning_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # Several roles asked for at once share one batch id (one decision per request).
    batch = models.UUIDField(null=True, blank=True, db_index=True)
    # Escalation: approvers are told again while nobody decides (ESCALATION_MINUTES).
    escalations = models.PositiveIntegerField(default=0)
    last_escalated_at = models.DateTimeField(null=True, blank=True)
    # The end time the "ending soon" notice was sent for; an extension moves the end.
    ending_notice_for = models.DateTimeField(null=True, blank=True)
    # Activated by the requester through break-glass (its review: BreakGlassReview).
    break_glass = models.BooleanField(default=False)
    # When the Okta side of this grant (adding or removing the member) is next expected to
    # run: set when its task is queued or scheduled for a retry. The grant sweep re-sends
    # the work of a grant whose time passed without the work being done (a lost task).
    work_due_at = models.DateTimeField(null=True, blank=True)

    objects = AccessRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            # The grant sweep's query: only grants whose Okta side is not done are in it,
            # so in the steady state the index is empty.
            models.Index(
                fields=["work_due_at"],
                name="grant_work_pending",
                condition=models.Q(status="approved")
                | models.Q(
                    status__in=["expired", "revoked", "failed"],
                    membership_removed_at__isnull=True,
                ),
            ),
        ]
        constraints = [
            # Filing checks this first with a friendly message; the database holds the line
            # when two filings race.
            models.UniqueConstraint(
                fields=["requester", "role"],
                condition=models.Q(status__in=sorted(OPEN_STATUSES)),
                name=ONE_OPEN_REQUEST,
            )
        ]

    def __str__(self) -> str:
        return f"Request #{self.pk} {self.requester} → {self.role} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def approvals_needed(self) -> int:
        # The on-call rule's approval (OnCallCheck) counts too: one request's page only.
        given = len(self.approvals.all()) + oncall_approvals(self.pk)
        return max(0, self.role.level.approvals_required - given)

    # "How long was access held": the one definition the auditor's history, its exports,
    # the failover report and its API answer all use.
    @property
    def held_until(self) -> dt.datetime | None:
        """When the access really ended: Okta's confirmed removal, else the end of the
        grant; None while it is still held (or was never granted)."""
        if self.activated_at is None:
            return None
        return self.membership_removed_at or self.ended_at

    def held_minutes(self, now: dt.datetime | None = None) -> int | None:
        """Whole minutes from Okta's confirmed membership to ``held_until`` (or now, while
        still held); None when access was never granted."""
        if self.activated_at is None:
            return None
        until = self.held_until or now or timezone.now()
        return max(0, round((until - self.activated_at).total_seconds() / 60))


class Approval(models.Model):
    """One approver's yes; a level may need several distinct ones."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["request", "approver"], name="one_approval_per_person")
        ]

    def __str__(self) -> str:
        return f"{self.approver} approved #{self.request_id}"


class ExtensionStatus(models.TextChoices):
    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    CANCELLED = "cancelled", "Cancelled"
    LAPSED = "lapsed", "Lapsed"


# Every change of an extension's status: name -> (allowed sources, target, audit action).
# The audit event is on the request, so its timeline shows the extension;
# ``requests_app.extensions._move`` applies a row.
EXTENSION_TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "approve": (
        frozenset({ExtensionStatus.PENDING}),
        ExtensionStatus.APPROVED,
        "request.extended",
    ),
    "deny": (
        frozenset({ExtensionStatus.PENDING}),
        ExtensionStatus.DENIED,
        "request.extension_denied",
    ),
    "cancel": (
        frozenset({ExtensionStatus.PENDING}),
        ExtensionStatus.CANCELLED,
        "request.extension_cancelled",
    ),
    "lapse": (
        frozenset({ExtensionStatus.PENDING}),
        ExtensionStatus.LAPSED,
        "request.extension_lapsed",
    ),
}


class Extension(models.Model):
    """More time on an active grant: a smaller approval than the request itself.

    Bounded so that the request's total granted time stays within its level's
    maximum; on approval the grant's end moves (requests_app/extensions.py).
    """

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="extensions")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    minutes = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    justification = models.TextField()
    status = models.CharField(
        max_length=16, choices=ExtensionStatus.choices, default=ExtensionStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision_comment = models.TextField(blank=True)
    previous_expires_at = models.DateTimeField(null=True, blank=True)
    new_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # One open question at a time per grant.
            models.UniqueConstraint(
                fields=["request"],
                condition=models.Q(status="pending"),
                name="one_pending_extension_per_request",
            )
        ]

    def __str__(self) -> str:
        return f"Extension #{self.pk} of request #{self.request_id} (+{self.minutes} min)"


class ExtensionApproval(models.Model):
    extension = models.ForeignKey(Extension, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["extension", "approver"], name="one_extension_approval_per_person"
            )
        ]

    def __str__(self) -> str:
        return f"{self.approver} approved extension #{self.extension_id}"


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Waiting for review"
    ACCEPTED = "accepted", "Accepted"
    FLAGGED = "flagged", "Flagged"


# The post-hoc review of a break-glass grant: name -> (sources, target, audit action).
# ``requests_app.break_glass._move_review`` applies a row; the event is on the request.
REVIEW_TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "accept": (frozenset({ReviewStatus.OPEN}), ReviewStatus.ACCEPTED, "break_glass.accepted"),
    "flag": (frozenset({ReviewStatus.OPEN}), ReviewStatus.FLAGGED, "break_glass.flagged"),
}


class BreakGlassReview(models.Model):
    """Two approvers other than the requester look at a break-glass grant afterwards."""

    request = models.OneToOneField(
        AccessRequest, on_delete=models.CASCADE, related_name="break_glass_review"
    )
    status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.OPEN, db_index=True
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    due_at = models.DateTimeField(db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Overdue: approvers and staff are told again (BREAK_GLASS_REVIEW_HOURS, beat).
    escalations = models.PositiveIntegerField(default=0)
    last_escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"Review of break-glass request #{self.request_id} ({self.status})"


class Verdict(models.TextChoices):
    ACCEPT = "accept", "Accepted"
    FLAG = "flag", "Flagged"


class ReviewVerdict(models.Model):
    review = models.ForeignKey(BreakGlassReview, on_delete=models.CASCADE, related_name="verdicts")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "reviewer"], name="one_verdict_per_reviewer")
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} {self.verdict} review #{self.review_id}"


# --- PagerDuty: the on-call rule and the approvers' page (requests_app/oncall.py, paging.py)


class OnCallOutcome(models.TextChoices):
    ON_CALL = "on_call", "On call: counts as one approval"
    NOT_ON_CALL = "not_on_call", "Not on call"
    FAILED = "failed", "Lookup failed: human approval"


class OnCallCheck(models.Model):
    """The one on-call lookup of a request whose level has the on-call rule. ``ON_CALL``
    counts as one approval (``oncall_approvals``); the evidence is PagerDuty's entry."""

    request = models.OneToOneField(
        AccessRequest, on_delete=models.CASCADE, related_name="oncall_check"
    )
    outcome = models.CharField(max_length=16, choices=OnCallOutcome.choices)
    # schedule, escalation_policy, escalation_level, user, email, start, end (or the error)
    evidence = models.JSONField(default=dict, blank=True)
    checked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"On-call check of #{self.request_id}: {self.outcome}"


def oncall_approvals(request_id: int) -> int:
    """1 when the on-call rule approved the request, else 0: added to the approvers' count."""
    return OnCallCheck.objects.filter(request_id=request_id, outcome=OnCallOutcome.ON_CALL).count()


class PageStatus(models.TextChoices):
    TRIGGERED = "triggered", "Approvers paged"
    RESOLVED = "resolved", "Resolved"


# The approvers' page of a failover: name -> (sources, target, audit action), applied by
# ``requests_app.paging._move``; the audit event is on the failover.
PAGE_TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "trigger": (frozenset({PageStatus.RESOLVED}), PageStatus.TRIGGERED, "pagerduty.paged"),
    "resolve": (frozenset({PageStatus.TRIGGERED}), PageStatus.RESOLVED, "pagerduty.resolved"),
}


class ApproverPage(models.Model):
    """PagerDuty's incident for a failover whose requests wait: one dedup key per
    failover, so however many requests wait, the approvers get one page."""

    failover = models.OneToOneField(
        "federation.Failover", on_delete=models.CASCADE, related_name="approver_page"
    )
    dedup_key = models.CharField(max_length=64, unique=True)
    status = models.CharField(
        max_length=16, choices=PageStatus.choices, default=PageStatus.RESOLVED
    )
    triggers = models.PositiveIntegerField(default=0)
    triggered_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # What PagerDuty last confirmed (the send task: trigger / resolve); empty = not yet.
    sent_action = models.CharField(max_length=16, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"Page {self.dedup_key} ({self.status})"
