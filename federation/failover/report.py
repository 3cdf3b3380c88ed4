"""The failover report: what happened, who had access to what and for how long, every
approval, and what was done outside the portal. Built from the database and the
audit log (so it can be rebuilt at any time); the printable page and the JSON
(``GET /api/v1/failovers/{id}/report``) show the same dictionary.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q
from django.utils import timezone

from federation.evidence_models import AwsRoleUse
from federation.failover.drills import drill_items
from federation.models import Failover, ReturnToNormal
from federation.monitor import role_use
from portal.audit import integrity
from portal.models import AuditEvent
from requests_app.evidence import emergency_users
from requests_app.models import ExtensionStatus


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def _minutes(start: dt.datetime | None, end: dt.datetime | None) -> int | None:
    if start is None:
        return None
    return max(0, round(((end or timezone.now()) - start).total_seconds() / 60))


def _event(e: AuditEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": e.created_at,
        "actor": e.actor_label,
        "action": e.action,
        "target": f"{e.target_type}:{e.target_id}",
        "payload": e.payload,
    }


def _role_use(use: AwsRoleUse) -> dict[str, Any]:
    return {
        "at": use.at,
        "event": use.event_name,
        "role": use.role_arn,
        "login": use.login,
        "grant_id": use.grant_id,
        "alert": use.alert,
        "via": use.source,
        "source_ip": use.source_ip,
    }


def _sign_out(ev: Any) -> dict[str, Any]:
    return {
        "last_sign_in": ev.last_sign_in,
        "signed_out": bool(ev.signed_out),
        "how": ev.how,
        "how_label": ev.how_label,
        "at": ev.at,
        "console_session_ends_by": ev.console_session_ends_by,
    }


def _break_glass(req: Any) -> dict[str, Any] | None:
    """A break-glass grant's mark: its post-hoc review, for the report to show loudly."""
    if not req.break_glass:
        return None
    review = getattr(req, "break_glass_review", None)
    return {
        "review_status": review.status if review else "",
        "review_due_at": review.due_at if review else None,
        "reviewers": [
            {"by": _user(v.reviewer), "verdict": v.verdict, "at": v.created_at}
            for v in (review.verdicts.all() if review else [])
        ],
    }


def _break_glass_decisions(req: Any) -> list[dict[str, Any]]:
    rows = [
        {
            "what": "BREAK-GLASS: activated by the requester without approval",
            "request_id": req.pk,
            "by": _user(req.requester),
            "at": req.decided_at,
            "comment": req.decision_comment,
        }
    ]
    review = getattr(req, "break_glass_review", None)
    for verdict in review.verdicts.all() if review else []:
        rows.append(
            {
                "what": f"break-glass review: {verdict.get_verdict_display().lower()}",
                "request_id": req.pk,
                "by": _user(verdict.reviewer),
                "at": verdict.created_at,
                "comment": verdict.comment,
            }
        )
    return rows


def _access(failover: Failover) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    # One batch of evidence for the whole failover, not a lookup per request.
    evidence = {req.pk: ev for req, ev in emergency_users(failover)}
    access: list[dict[str, Any]] = []
    approvals: list[dict[str, Any]] = []
    requests = (
        failover.requests.with_related()
        .select_related("decided_by", "ended_by")
        .prefetch_related(
            "extensions__approvals__approver",
            "extensions__decided_by",
            "break_glass_review__verdicts__reviewer",
        )
        .order_by("pk")
    )
    for req in requests:
        extensions = list(req.extensions.all())
        extra = sum(x.minutes for x in extensions if x.status == ExtensionStatus.APPROVED)
        access.append(
            {
                "request_id": req.pk,
                "batch": str(req.batch) if req.batch else None,
                "requester": _user(req.requester),
                "okta_login": req.okta_login,
                "role": req.role.role_name,
                "okta_group": req.role.okta_group_name,
                "account": req.role.workload_account.name,
                "account_id": req.role.workload_account.account_id,
                "level": req.role.level.name,
                "status": req.status,
                "ticket": req.ticket,
                "justification": req.justification,
                "requested_minutes": req.duration_minutes,
                "extended_minutes": extra,
                "filed_at": req.created_at,
                "granted_at": req.activated_at,
                "expires_at": req.expires_at,
                "ended_at": req.ended_at,
                "end_reason": req.end_reason,
                "membership_removed_at": req.membership_removed_at,
                "held_until": req.held_until,
                "held_minutes": req.held_minutes() or 0,
                "sign_in": _sign_out(evidence[req.pk]) if req.pk in evidence else None,
                "break_glass": _break_glass(req),
            }
        )
        if req.break_glass:
            approvals.extend(_break_glass_decisions(req))
        for approval in req.approvals.all():
            approvals.append(
                {
                    "what": "approval",
                    "request_id": req.pk,
                    "by": _user(approval.approver),
                    "at": approval.created_at,
                    "comment": approval.comment,
                }
            )
        if req.status == "denied":
            approvals.append(
                {
                    "what": "denial",
                    "request_id": req.pk,
                    "by": _user(req.decided_by),
                    "at": req.decided_at,
                    "comment": req.decision_comment,
                }
            )
        for ext in extensions:
            for ext_approval in ext.approvals.all():
                approvals.append(
                    {
                        "what": f"extension +{ext.minutes} min approved",
                        "request_id": req.pk,
                        "by": _user(ext_approval.approver),
                        "at": ext_approval.created_at,
                        "comment": ext_approval.comment,
                    }
                )
            if ext.status == ExtensionStatus.DENIED:
                approvals.append(
                    {
                        "what": f"extension +{ext.minutes} min denied",
                        "request_id": req.pk,
                        "by": _user(ext.decided_by),
                        "at": ext.decided_at,
                        "comment": ext.decision_comment,
                    }
                )
    approvals.sort(key=lambda a: a["at"] or timezone.now())
    return access, approvals


def build_report(failover: Failover) -> dict[str, Any]:
    run = (
        ReturnToNormal.objects.filter(failover=failover)
        .select_related("started_by", "close_requested_by")
        .first()
    )
    request_ids = [str(pk) for pk in failover.requests.values_list("pk", flat=True)]
    timeline = AuditEvent.objects.filter(
        Q(target_type="failover", target_id=str(failover.pk))
        | Q(target_type="accessrequest", target_id__in=request_ids)
    ).order_by("seq")
    window = Q(created_at__gte=failover.opened_at)
    if failover.closed_at is not None:
        window &= Q(created_at__lte=failover.closed_at + dt.timedelta(minutes=5))
    # Changes in Okta behind the portal's back, and emergency roles used in AWS without a grant.
    outside = AuditEvent.objects.filter(
        window, Q(action__startswith="okta.") | Q(action="aws.role_use_alert")
    ).order_by("seq")
    access, approvals = _access(failover)
    if failover.confirmed_by_id:
        approvals.insert(
            0,
            {
                "what": "failover confirmed (second approver)",
                "request_id": None,
                "by": _user(failover.confirmed_by),
                "at": failover.confirmed_at,
                "comment": "",
            },
        )
    # The stored verification (daily beat, or "verify now"): re-hashing the whole
    # chain on every view of a report would cost seconds on a long history.
    chain = integrity.badge()
    report: dict[str, Any] = {
        "failover": {
            "id": failover.pk,
            "kind": "drill" if failover.is_drill else "disruption",
            "status": failover.status,
            "reason": failover.reason,
            "opened_by": _user(failover.opened_by),
            "opened_at": failover.opened_at,
            "confirmed_by": _user(failover.confirmed_by),
            "confirmed_at": failover.confirmed_at,
            "app_activated_at": failover.app_activated_at,
            "close_requested_by": _user(failover.close_requested_by),
            "close_requested_at": failover.close_requested_at,
            "app_deactivated_at": failover.app_deactivated_at,
            "groups_emptied_at": failover.groups_emptied_at,
            "closed_at": failover.closed_at,
            "open_minutes": _minutes(failover.opened_at, failover.closed_at),
        },
        "return_to_normal": {
            "started_by": _user(run.started_by) if run else None,
            "started_at": run.started_at if run else None,
            "health_state": run.health_state if run else "",
            "health_override_reason": run.health_override_reason if run else "",
            "announced_at": run.announced_at if run else None,
            "announced_to": run.announced_to if run else [],
            "reminders_sent": run.reminders_sent if run else 0,
            "deactivate_at": run.deactivate_at if run else None,
            "close_reason": run.close_reason if run else "",
            "forced": bool(run and run.forced),
            "still_signed_in_at_close": run.still_signed_in_at_close if run else [],
            "sessions_ended_for": run.sessions_revoked_for if run else [],
            "sessions_ended_at": run.sessions_revoked_at if run else None,
        },
        "access": access,
        "approvals": approvals,
        "outside_portal": [_event(e) for e in outside],
        "aws_role_uses": [_role_use(u) for u in role_use.uses_in(failover)],
        "timeline": [_event(e) for e in timeline],
        "audit_chain": {
            "intact": chain.ok,
            "state": chain.state,
            "verified_at": chain.last.finished_at if chain.last else None,
            "first_bad_seq": chain.last.first_bad_seq if chain.last else None,
        },
        "generated_at": timezone.now(),
    }
    if failover.is_drill:
        report["drill"] = {
            "result": (run.drill_result if run else "") or None,
            "checklist": drill_items(failover, run),
        }
    return report
