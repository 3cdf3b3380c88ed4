"""The on-call rule: a requester on call in PagerDuty counts as one approval.

A level of the plan may name a PagerDuty schedule (``oncall_schedule``) and an escalation
level (``oncall_escalation_level``, default 1). When a request for a role of that level is
filed, the worker asks PagerDuty (``GET /oncalls`` for the schedule, users' emails
included) whether the requester is on call in it now at that escalation level or a lower
one. If so, that counts as **one** approval: recorded as decided by the on-call rule,
with the evidence (schedule, escalation policy and level, PagerDuty user, the shift's start
and end) in the audit event ``oncall.approval_added`` — and if the level needs only one
approval, the request is approved by the rule (``request.approved``, system ``oncall``).
Human approvers supply the rest (``services.approve`` adds ``oncall_approvals``).

Anything else falls back to human approval: not on call (``oncall.not_on_call``), or a
failed lookup — PagerDuty down, slow (``PAGERDUTY_TIMEOUT_SECONDS``), refusing the token,
not configured — (``oncall.lookup_failed``, with the error). One lookup per request
(``OnCallCheck``, one per request): a task run twice changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from federation import pagerduty
from portal import audit
from portal.core.access import current_approvals
from portal.core.errors import Conflict
from requests_app import messages, queue
from requests_app.models import (
    AccessRequest,
    OnCallCheck,
    OnCallOutcome,
    Status,
)
from requests_app.services import apply_transition, lock_request, refuse_if_lapsed

log = logging.getLogger(__name__)

ACTIONS: dict[str, str] = {
    OnCallOutcome.ON_CALL: "oncall.approval_added",
    OnCallOutcome.NOT_ON_CALL: "oncall.not_on_call",
    OnCallOutcome.FAILED: "oncall.lookup_failed",
}


def rule_text(level: Any) -> str:
    return (
        f"on call in PagerDuty schedule {level.oncall_schedule} at escalation level "
        f"{level.oncall_escalation_level} or lower"
    )


def applies(req: AccessRequest) -> bool:
    """Does the request's level have the on-call rule?"""
    return bool(req.role.level.oncall_schedule)


def lookup(req: AccessRequest) -> tuple[str, dict[str, Any]]:
    """Ask PagerDuty (outside any transaction): the outcome and its evidence."""
    level = req.role.level
    if not pagerduty.rest_configured():
        return OnCallOutcome.FAILED, {"error": "PagerDuty is not configured (PAGERDUTY_API_TOKEN)"}
    who = {e.lower() for e in (req.requester.email, req.okta_login) if e}
    try:
        entries = pagerduty.oncalls(schedule_ids=[level.oncall_schedule])
    except pagerduty.PagerDutyError as exc:
        return OnCallOutcome.FAILED, {"error": str(exc)[:500]}
    matches = sorted(
        (
            e
            for e in entries
            if e.email in who
            and e.schedule_id == level.oncall_schedule
            and e.escalation_level <= level.oncall_escalation_level
        ),
        key=lambda e: e.escalation_level,
    )
    if not matches:
        return OnCallOutcome.NOT_ON_CALL, {
            "schedule": level.oncall_schedule,
            "max_escalation_level": level.oncall_escalation_level,
            "on_call": sorted({e.email for e in entries if e.schedule_id == level.oncall_schedule}),
        }
    return OnCallOutcome.ON_CALL, matches[0].evidence()


def check(request_id: int) -> OnCallCheck | None:
    """The task's service: look the requester up once and record what PagerDuty said.
    Returns the check, or None when there was nothing to do (decided, checked, no rule)."""
    req = AccessRequest.objects.select_related("role__level", "requester").get(pk=request_id)
    if req.status != Status.PENDING or not applies(req) or _checked(request_id):
        return None
    outcome, evidence = lookup(req)
    with transaction.atomic():
        req = lock_request(request_id)
        if req.status != Status.PENDING or _checked(request_id):
            return None
        level = req.role.level
        found = OnCallCheck.objects.create(request=req, outcome=outcome, evidence=evidence)
        payload: dict[str, Any] = {"rule": rule_text(level), "outcome": outcome, **evidence}
        if outcome == OnCallOutcome.FAILED:
            payload["fallback"] = "human approval"
        if outcome != OnCallOutcome.ON_CALL:
            audit.record(ACTIONS[outcome], req, system="oncall", payload=payload)
            return found
        count = current_approvals(req).count() + 1
        required = level.approvals_required
        audit.record(
            ACTIONS[outcome],
            req,
            system="oncall",
            payload={**payload, "decided_by": "on-call rule", "approvals": count,
                     "required": required},
        )  # fmt: skip
        if count >= required:
            _approve(req, evidence, level)
    return found


def _checked(request_id: int) -> bool:
    return OnCallCheck.objects.filter(request_id=request_id).exists()


def _approve(req: AccessRequest, evidence: dict[str, Any], level: Any) -> None:
    try:
        refuse_if_lapsed(req)
    except Conflict:
        log.info("on-call approval of #%s came after it lapsed", req.pk)
        return
    apply_transition(
        req,
        "approve",
        system="oncall",
        payload={"decided_by": "on-call rule", "rule": rule_text(level), "oncall": evidence},
        decided_at=timezone.now(),
        decision_comment=(
            f"Approved by the on-call rule: on call in PagerDuty schedule "
            f"{evidence.get('schedule')} at escalation level {evidence.get('escalation_level')}."
        ),
    )
    queue.provision_grant(req.pk)
    messages.request_decided(req)
