"""The return to normal as a checklist: the AWS guide's runbook, step by step, read from
the database and the evidence (never changed here; ``federation.failover.services``
changes the failover).

1. Identity Center is HEALTHY (federation.monitor.health), or an approver overrides with a reason.
2. Announce: every emergency user is told (email, Slack, the banner) to sign out and
   use the AWS access portal; the failover is RETURNING, so new requests are refused
   and pending ones lapse.
3. Wait for sign-outs (requests_app.evidence), reminding those still signed in every
   SIGNOUT_REMINDER_MINUTES (beat).
4. Deactivate the federation app and empty every group — now or at a chosen time,
   persisted and run by a beat tick — then verify both in Okta and end the users' Okta
   sessions (federation.tasks.close_federation).
5. Close with a report (federation.failover.report).

The checklist's state lives on ``ReturnToNormal`` and in the audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from federation.models import Failover, FailoverStatus, ReturnToNormal
from federation.monitor import health as health_monitor
from federation.monitor.health import HEALTHY, HealthState
from portal.audit import actor_label
from requests_app import evidence
from requests_app.models import HOLDING_STATUSES

# --- Evidence from the health monitor and the sign-in / sign-out evidence ----------------


def current_health() -> HealthState:
    """Identity Center's derived state now (federation.monitor.health)."""
    return health_monitor.current_state()


def emergency_users(failover: Failover) -> list[tuple[Any, Any]]:
    """(request, SignOutEvidence) for every emergency user of the failover."""
    return list(evidence.emergency_users(failover))


def waiting_for(req: Any, ev: Any) -> bool:
    """Must the return to normal wait for this grant's holder?

    Yes if they were seen signing in and nothing since says they left — and also
    while their grant is live without any sign-out evidence: they can still sign
    in, and a sign-in reaches the portal only with the next System Log poll.
    """
    if ev.signed_out:
        return False
    return ev.last_sign_in is not None or req.status in HOLDING_STATUSES


def still_signed_in(failover: Failover) -> list[tuple[Any, Any]]:
    return [(req, ev) for req, ev in emergency_users(failover) if waiting_for(req, ev)]


def people(rows: list[tuple[Any, Any]]) -> list[Any]:
    seen: dict[int, Any] = {}
    for req, _ in rows:
        seen.setdefault(req.requester_id, req.requester)
    return list(seen.values())


# --- The checklist, as the wizard page and the API show it ----------------------------------------


@dataclass(frozen=True)
class Step:
    number: int
    key: str
    title: str
    state: str  # "done" | "current" | "todo" | "skipped"
    summary: str
    at: dt.datetime | None = None


@dataclass
class Checklist:
    failover: Failover
    run: ReturnToNormal | None
    health: HealthState
    steps: list[Step]
    users: list[tuple[Any, Any]] = field(default_factory=list)
    still_signed_in: list[tuple[Any, Any]] = field(default_factory=list)

    @property
    def can_start(self) -> bool:
        return self.failover.status == FailoverStatus.ACTIVE

    @property
    def returning(self) -> bool:
        return self.failover.status == FailoverStatus.RETURNING

    @property
    def all_signed_out(self) -> bool:
        return not self.still_signed_in

    @property
    def scheduled_for(self) -> dt.datetime | None:
        if self.run is None or self.failover.status != FailoverStatus.RETURNING:
            return None
        return self.run.deactivate_at

    @property
    def next_reminder_at(self) -> dt.datetime | None:
        if not self.returning or self.run is None or self.run.announced_at is None:
            return None
        last = self.run.last_reminder_at or self.run.announced_at
        return last + dt.timedelta(minutes=settings.SIGNOUT_REMINDER_MINUTES)

    def version(self) -> str:
        """Changes whenever anything on the page would (htmx polls answer 204 until then)."""
        parts = [self.failover.status, self.health.state, str(self.scheduled_for)]
        parts += [f"{s.key}:{s.state}" for s in self.steps]
        parts += [f"{req.pk}:{ev.signed_out}:{ev.last_sign_in}" for req, ev in self.users]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "health": {
                "state": self.health.state,
                "since": self.health.since,
                "override_reason": run.health_override_reason if run else "",
            },
            "steps": [
                {
                    "number": s.number,
                    "key": s.key,
                    "title": s.title,
                    "state": s.state,
                    "summary": s.summary,
                    "at": s.at,
                }
                for s in self.steps
            ],
            "users": [
                {
                    "request_id": req.pk,
                    "username": req.requester.get_username(),
                    "role": req.role.role_name,
                    "status": req.status,
                    "signed_out": bool(ev.signed_out),
                    "how": ev.how,
                    "at": ev.at,
                    "last_sign_in": ev.last_sign_in,
                    "console_session_ends_by": ev.console_session_ends_by,
                }
                for req, ev in self.users
            ],
            "still_signed_in": sorted(
                {req.requester.get_username() for req, _ in self.still_signed_in}
            ),
            "announced_at": run.announced_at if run else None,
            "reminders_sent": run.reminders_sent if run else 0,
            "next_reminder_at": self.next_reminder_at,
            "deactivate_at": self.scheduled_for,
            "forced": bool(run and run.forced),
            "close_reason": run.close_reason if run else "",
            "sessions_ended_for": run.sessions_revoked_for if run else [],
            "drill_result": (run.drill_result or None) if run else None,
        }


def _health_step(f: Failover, run: ReturnToNormal | None, health: HealthState) -> Step:
    title = "Identity Center is healthy"
    if run is not None and run.started_at:
        if run.health_override_reason:
            summary = (
                f"Identity Center was {run.health_state}; {actor_label(run.started_by)} "
                f"overrode: {run.health_override_reason}"
            )
        else:
            summary = f"Identity Center was {run.health_state} when the return started."
        return Step(1, "health", title, "done", summary, run.started_at)
    if f.status == FailoverStatus.ACTIVE:
        if health.state == HEALTHY:
            return Step(1, "health", title, "current", "Identity Center is HEALTHY now.")
        return Step(
            1,
            "health",
            title,
            "current",
            f"Identity Center is {health.state} now: starting needs an override reason.",
        )
    return Step(1, "health", title, "skipped", "Closed without the checklist (forced).")


def _announce_step(f: Failover, run: ReturnToNormal | None) -> Step:
    title = "Tell everyone to sign out"
    if run is not None and run.announced_at:
        who = ", ".join(run.announced_to) or "nobody held access"
        return Step(
            2, "announce", title, "done", f"Told: {who}. New requests refused.", run.announced_at
        )
    if f.status == FailoverStatus.ACTIVE:
        return Step(
            2, "announce", title, "todo", "Email, Slack and the banner tell every emergency user."
        )
    return Step(2, "announce", title, "skipped", "Closed without the checklist (forced).")


def _signout_step(
    f: Failover, run: ReturnToNormal | None, still: list[tuple[Any, Any]], users: list[Any]
) -> Step:
    title = "Wait for sign-outs"
    if f.status == FailoverStatus.ACTIVE:
        return Step(3, "signouts", title, "todo", f"{len(people(users))} emergency user(s).")
    names = sorted({req.requester.get_username() for req, _ in still})
    if f.status == FailoverStatus.RETURNING:
        if names:
            return Step(3, "signouts", title, "current", f"Still signed in: {', '.join(names)}.")
        return Step(3, "signouts", title, "done", "Everyone has signed out.")
    if run is not None and run.forced and run.still_signed_in_at_close:
        return Step(
            3,
            "signouts",
            title,
            "skipped",
            f"Forced ({run.close_reason}) while still signed in: "
            f"{', '.join(run.still_signed_in_at_close)}.",
        )
    if run is not None and run.announced_at is None:
        return Step(3, "signouts", title, "skipped", "Closed without the checklist (forced).")
    return Step(3, "signouts", title, "done", "Everyone had signed out.")


def _deactivate_step(f: Failover, run: ReturnToNormal | None) -> Step:
    title = "Deactivate the app, empty the groups, end sessions"
    if f.status in (FailoverStatus.ACTIVE, FailoverStatus.PROPOSED):
        return Step(4, "deactivate", title, "todo", "Now or at a chosen time (after hours).")
    if f.status == FailoverStatus.RETURNING:
        if run is not None and run.deactivate_at:
            when = timezone.localtime(run.deactivate_at).strftime("%Y-%m-%d %H:%M %Z")
            return Step(4, "deactivate", title, "current", f"Scheduled for {when}.")
        return Step(4, "deactivate", title, "current", "Now, or schedule it for after hours.")
    if f.status == FailoverStatus.CLOSING:
        error = f" Last Okta error: {f.last_error}" if f.last_error else ""
        return Step(
            4,
            "deactivate",
            title,
            "current",
            f"A worker is deactivating the app and emptying the groups.{error}",
            f.close_requested_at,
        )
    ended = len(run.sessions_revoked_for) if run is not None else 0
    return Step(
        4,
        "deactivate",
        title,
        "done",
        f"App INACTIVE and every group empty (verified in Okta); sessions ended for {ended} "
        "user(s).",
        f.groups_emptied_at,
    )


def _close_step(f: Failover, run: ReturnToNormal | None) -> Step:
    title = "Close with a report"
    if f.status == FailoverStatus.CLOSED:
        result = ""
        if run is not None and run.drill_result:
            result = f" Drill {run.get_drill_result_display().lower()}."
        return Step(5, "close", title, "done", f"Closed.{result}", f.closed_at)
    return Step(5, "close", title, "todo", "Written once the worker has verified step 4.")


def checklist(failover: Failover) -> Checklist:
    run = ReturnToNormal.objects.filter(failover=failover).select_related("started_by").first()
    health = current_health()
    live = failover.status in (FailoverStatus.ACTIVE, FailoverStatus.RETURNING)
    users = emergency_users(failover) if live else []
    still = [(req, ev) for req, ev in users if waiting_for(req, ev)]
    if failover.status == FailoverStatus.PROPOSED:
        first = Step(
            1, "health", "Identity Center is healthy", "todo", "The failover is not confirmed yet."
        )
    else:
        first = _health_step(failover, run, health)
    steps = [
        first,
        _announce_step(failover, run),
        _signout_step(failover, run, still, users),
        _deactivate_step(failover, run),
        _close_step(failover, run),
    ]
    return Checklist(failover, run, health, steps, users, still)
