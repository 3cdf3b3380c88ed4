"""Read the Okta System Log (and, optionally, CloudTrail) for sign-in evidence and for
changes made to emergency access outside the portal.

The System Log is read with Okta's opaque ``after`` cursor, persisted in
:class:`~federation.models.LogCursor` after each page -- never "events since the
last timestamp". Okta publishes some events late (``published`` earlier than
events already read); a timestamp query would skip them, the cursor does not:
it is a position in what Okta has persisted, so a late event simply appears
after it.

Each event is recorded once (its uuid is unique), so a page read twice -- a
retried task, two polls racing -- changes nothing the second time. A page's
events and the cursor move commit together.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from federation.aws import clients as aws_clients
from federation.evidence_models import (
    OKTA_SYSTEM_LOG,
    EvidenceKind,
    LogCursor,
    OutsideChangeAlert,
    SignInEvidence,
)
from federation.idp import IdentityProvider, IdpError, IdpLogEvent, get_identity_provider
from federation.models import EmergencyRole, Failover
from federation.monitor import role_use
from portal import audit
from requests_app import grants, messages
from requests_app.models import AccessRequest

log = logging.getLogger(__name__)

CURSOR = OKTA_SYSTEM_LOG
CLOUDTRAIL_CURSOR = "cloudtrail-console-login"
# What the CloudTrail poller looks up (one LookupEvents attribute per call).
CLOUDTRAIL_EVENTS = ("ConsoleLogin", "AssumeRoleWithSAML")
SIGN_IN = "user.authentication.sso"
SESSION_END = "user.session.end"
MEMBERSHIP = ("group.user_membership.add", "group.user_membership.remove")
APP_LIFECYCLE = ("application.lifecycle.activate", "application.lifecycle.deactivate")
WATCHED = (SIGN_IN, SESSION_END, *MEMBERSHIP, *APP_LIFECYCLE)
# One fixed filter: the cursor belongs to the query it came from.
LOG_FILTER = " or ".join(f'eventType eq "{kind}"' for kind in WATCHED)
# Without a cursor yet: look back this far (or to the open failover's start).
INITIAL_LOOKBACK = dt.timedelta(hours=1)
# CloudTrail delivers events up to ~15 minutes late: each poll re-reads this much.
CLOUDTRAIL_OVERLAP = dt.timedelta(minutes=20)
# Failovers closed longer ago than this own no event still in the System Log.
RECENT = dt.timedelta(days=8)


@dataclass
class PollReport:
    pages: int = 0
    events: int = 0
    sign_ins: int = 0
    sign_outs: int = 0
    alerts: list[str] = field(default_factory=list)
    # Emergency groups a membership event showed drifting, reconciled by this poll.
    reconciled: list[str] = field(default_factory=list)
    removed_unexpected: list[str] = field(default_factory=list)
    restored: list[int] = field(default_factory=list)
    full_pass_requested: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class _Context:
    """What the events of one poll are compared with (read once per poll)."""

    app_id: str
    portal_actors: frozenset[str]
    group_names: dict[str, str]  # Okta group id or name -> group name
    roles: dict[str, EmergencyRole]  # group name -> its emergency role
    failovers: list[Failover]
    requesters: dict[int, set[str]]  # failover id -> logins with a request in it

    @classmethod
    def load(cls) -> _Context:
        names: dict[str, str] = {}
        roles: dict[str, EmergencyRole] = {}
        for role in EmergencyRole.objects.all():
            roles[role.okta_group_name] = role
            names[role.okta_group_name.lower()] = role.okta_group_name
            if role.okta_group_id:
                names[role.okta_group_id] = role.okta_group_name
        # Okta keeps (and returns) about a week of events: older failovers cannot own one.
        recent = Q(closed_at__isnull=True) | Q(closed_at__gte=timezone.now() - RECENT)
        failovers = list(Failover.objects.filter(recent).order_by("opened_at"))
        requesters: dict[int, set[str]] = {}
        for failover_id, login in AccessRequest.objects.filter(failover__in=failovers).values_list(
            "failover_id", "okta_login"
        ):
            requesters.setdefault(failover_id, set()).add(login.lower())
        return cls(
            app_id=settings.OKTA_AWS_APP_ID,
            portal_actors=frozenset(a.lower() for a in settings.OKTA_PORTAL_ACTORS),
            group_names=names,
            roles=roles,
            failovers=failovers,
            requesters=requesters,
        )

    def failover_at(self, moment: dt.datetime) -> Failover | None:
        """The failover an event belongs to: the last one opened before it happened."""
        found = None
        for failover in self.failovers:
            if failover.opened_at <= moment:
                found = failover
        return found

    def emergency_group(self, targets: Iterable[dict[str, Any]]) -> str | None:
        for target in targets:
            if target.get("type") != "UserGroup":
                continue
            for key in (target.get("id", ""), str(target.get("displayName", "")).lower()):
                if key in self.group_names:
                    return self.group_names[key]
        return None

    def targets_app(self, targets: Iterable[dict[str, Any]]) -> bool:
        return any(t.get("type") == "AppInstance" and t.get("id") == self.app_id for t in targets)


def _user_login(targets: Iterable[dict[str, Any]]) -> str:
    for target in targets:
        if target.get("type") == "User":
            return str(target.get("alternateId", ""))
    return ""


def _evidence(event: IdpLogEvent, kind: str, failover: Failover | None, *, login: str) -> bool:
    """Record one piece of evidence; False when this event was recorded before."""
    _, created = SignInEvidence.objects.get_or_create(
        source_id=event.uuid,
        defaults={
            "failover": failover,
            "login": login.lower(),
            "kind": kind,
            "at": event.published,
            "source": "okta-system-log",
            "detail": {
                "event_type": event.event_type,
                "outcome": event.outcome,
                "external_session_id": event.external_session_id,
            },
        },
    )
    return created


def _alert(event: IdpLogEvent, target: str, failover: Failover | None, report: PollReport) -> None:
    """Emergency access changed by someone else than the portal: record, tell approvers."""
    user = _user_login(event.targets)
    alert, created = OutsideChangeAlert.objects.get_or_create(
        event_uuid=event.uuid,
        defaults={
            "event_type": event.event_type,
            "actor": event.actor_login,
            "target": target[:300],
            "published": event.published,
            "failover": failover,
            "detail": {"user": user, "outcome": event.outcome},
        },
    )
    if not created:
        return
    what = {
        "group.user_membership.add": f"added {user} to {target}",
        "group.user_membership.remove": f"removed {user} from {target}",
        "application.lifecycle.activate": f"activated the federation app {target}",
        "application.lifecycle.deactivate": f"deactivated the federation app {target}",
    }.get(event.event_type, f"{event.event_type} on {target}")
    summary = f"{event.actor_login or 'someone'} {what} outside the portal"
    audit.record(
        "okta.outside_change",
        alert,
        system="system-log",
        payload={
            "event_type": event.event_type,
            "actor": event.actor_login,
            "target": target,
            "user": user,
            "published": event.published,
            "okta_event": event.uuid,
            "failover": failover.pk if failover else None,
        },
    )
    messages.drift_found(
        summary, {"When": timezone.localtime(event.published).isoformat(timespec="seconds")}
    )
    report.alerts.append(summary)


def _handle(event: IdpLogEvent, ctx: _Context, report: PollReport) -> None:
    failover = ctx.failover_at(event.published)
    if event.event_type == SIGN_IN:
        if ctx.targets_app(event.targets) and event.outcome in {"SUCCESS", "ALLOW"}:
            report.sign_ins += _evidence(
                event, EvidenceKind.SIGN_IN, failover, login=event.actor_login
            )
    elif event.event_type == SESSION_END:
        # Everybody's Okta sign-outs are in the log: keep only emergency users'.
        login = event.actor_login.lower()
        if failover is not None and login in ctx.requesters.get(failover.pk, set()):
            report.sign_outs += _evidence(
                event, EvidenceKind.OKTA_SESSION_END, failover, login=login
            )
    elif event.event_type in MEMBERSHIP or event.event_type in APP_LIFECYCLE:
        if event.event_type in MEMBERSHIP:
            target = ctx.emergency_group(event.targets)
        else:
            target = "AWS federation app" if ctx.targets_app(event.targets) else None
        if target is None or event.outcome not in {"SUCCESS", "ALLOW"}:
            return
        if not ctx.portal_actors:
            log.warning("OKTA_PORTAL_ACTORS is empty: cannot tell outside changes apart")
            return
        if event.actor_login.lower() not in ctx.portal_actors:
            _alert(event, target, failover, report)


# --- Following Okta's side between the reconciler's full passes ---------------------------


@dataclass
class _Drift:
    """What one page of events asks of the reconciler."""

    roles: dict[str, EmergencyRole] = field(default_factory=dict)  # group name -> role
    full_pass: list[str] = field(default_factory=list)  # why a full pass is wanted


def _user(targets: Iterable[dict[str, Any]]) -> tuple[str, str]:
    for target in targets:
        if target.get("type") == "User":
            return str(target.get("alternateId", "")), str(target.get("id", ""))
    return "", ""


def drift_in(events: Iterable[IdpLogEvent], ctx: _Context) -> _Drift:
    """The emergency groups whose membership changes the database does not explain (an
    add without a grant, an active grant's member removed), and whether the federation app
    was switched outside the portal (then every group is checked: a full pass). Changes
    the portal's own grants explain cost no Okta call."""
    drift = _Drift()
    for event in events:
        if event.outcome not in {"SUCCESS", "ALLOW"}:
            continue
        if event.event_type in MEMBERSHIP:
            name = ctx.emergency_group(event.targets)
            if name is None or name in drift.roles:
                continue
            login, user_id = _user(event.targets)
            added = event.event_type == "group.user_membership.add"
            role = ctx.roles[name]
            explained = grants.membership_explained(
                role, login=login, user_id=user_id, added=added, at=event.published
            )
            if not explained:
                drift.roles[name] = role
        elif (
            event.event_type in APP_LIFECYCLE
            and ctx.targets_app(event.targets)
            and event.actor_login.lower() not in ctx.portal_actors
        ):
            drift.full_pass.append(
                f"{event.actor_login or 'someone'} {event.event_type} outside the portal"
            )
    return drift


def _repair(drift: _Drift, idp: IdentityProvider, report: PollReport) -> None:
    """Reconcile each drifting group now (one list call each); a group that cannot be
    repaired now, or an app switched outside the portal, asks for a full pass."""
    for name, role in drift.roles.items():
        try:
            done = grants.reconcile_group(role, idp)
        except IdpError as exc:
            log.warning("Repairing %s after a System Log event failed: %s", name, exc)
            why = f"repairing {name} after a System Log event failed: {exc}"
            grants.request_full_pass(why)
            report.full_pass_requested.append(why)
            continue
        report.reconciled.append(name)
        report.removed_unexpected += done.removed_unexpected
        report.restored += done.restored
    for why in drift.full_pass:
        grants.request_full_pass(why)
        report.full_pass_requested.append(why)


def _initial_since(now: dt.datetime) -> dt.datetime:
    current = Failover.objects.current()
    since = now - INITIAL_LOOKBACK
    if current is not None and current.opened_at < since:
        since = current.opened_at
    return since


def _cursor_refused(exc: IdpError) -> bool:
    """Okta's answer to an ``after`` cursor it does not know: 400 E0000001 on ``after``."""
    return exc.status == 400 and exc.code == "E0000001" and "after" in str(exc)


def poll_system_log(
    idp: IdentityProvider | None = None, *, now: dt.datetime | None = None
) -> PollReport:
    """Read what the System Log holds after the persisted cursor; record and alert."""
    idp = idp or get_identity_provider()
    now = now or timezone.now()
    report = PollReport()
    cursor, _ = LogCursor.objects.get_or_create(name=CURSOR)
    after = cursor.after or None
    since = None if after else _initial_since(now)
    ctx = _Context.load()
    for _ in range(settings.SYSTEM_LOG_MAX_PAGES):
        try:
            page = idp.read_system_log(
                since=since, after=after, filter=LOG_FILTER, limit=settings.SYSTEM_LOG_PAGE_SIZE
            )
        except IdpError as exc:
            if after and _cursor_refused(exc):
                # Okta no longer knows the cursor (expired, or a sandbox org restarted):
                # start again from a recent ``since``; events read twice are recorded once.
                # What happened between the lost cursor and that time is unknown: the
                # reconciler's next tick runs a full pass.
                log.warning("Okta refused the System Log cursor; reading again from a time")
                with transaction.atomic():
                    LogCursor.objects.filter(pk=cursor.pk, after=after).update(after="")
                    audit.record(
                        "okta.log_cursor_reset",
                        cursor,
                        system="system-log",
                        payload={"error": str(exc)[:500]},
                    )
                    grants.request_full_pass("Okta refused the System Log cursor")
                report.full_pass_requested.append("Okta refused the System Log cursor")
                after, since = None, _initial_since(now)
                continue
            report.error = str(exc)
            LogCursor.objects.filter(pk=cursor.pk).update(
                polled_at=timezone.now(), last_error=str(exc)[:2000]
            )
            # Not following the log: the reconciler's ticks are full passes until a read
            # succeeds again (grants.system_log_followed).
            log.warning("Reading the Okta System Log failed (next poll retries): %s", exc)
            return report
        if LogCursor.objects.filter(pk=cursor.pk).values_list("after", flat=True).get() != (
            after or ""
        ):
            return report  # another poll moved the cursor meanwhile: it read this page
        # Repair drift before the cursor moves past its events: a poll that dies here
        # reads the page again (reconciling a group twice changes nothing).
        _repair(drift_in(page.events, ctx), idp, report)
        with transaction.atomic():
            audit.lock_chain()  # the lock order: the audit chain, then rows
            locked = LogCursor.objects.select_for_update().get(pk=cursor.pk)
            if (locked.after or None) != after:
                # Another poll moved the cursor meanwhile: it has read this page already.
                return report
            for event in page.events:
                _handle(event, ctx, report)
            locked.after = page.next_cursor or after or ""
            locked.polled_at = timezone.now()
            if page.next_cursor != after:
                locked.updated_at = locked.polled_at
            locked.last_batch = report.events + len(page.events)
            locked.last_error = ""
            locked.save(
                update_fields=["after", "polled_at", "updated_at", "last_batch", "last_error"]
            )
        report.pages += 1
        report.events += len(page.events)
        # A polling query always has a next link; only a full page means there is more.
        if page.next_cursor is None or len(page.events) < settings.SYSTEM_LOG_PAGE_SIZE:
            break
        after, since = page.next_cursor, None
    return report


# --- CloudTrail ConsoleLogin (optional) ---------------------------------------------------


def _cloudtrail_sign_in(
    event: dict[str, Any], roles: dict[str, EmergencyRole]
) -> tuple[str, EmergencyRole, dt.datetime] | None:
    """(login, role, time) of a successful federated console sign-in to an emergency role."""
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        return None
    identity = detail.get("userIdentity") or {}
    if (detail.get("responseElements") or {}).get("ConsoleLogin") != "Success":
        return None
    # arn:aws:sts::<account>:assumed-role/<role name>/<role session name = Okta login>
    arn = str(identity.get("arn", ""))
    if identity.get("type") != "AssumedRole" or ":assumed-role/" not in arn:
        return None
    role_name, _, session = arn.split(":assumed-role/", 1)[1].partition("/")
    role = roles.get(role_name)
    if role is None or not session:
        return None
    return session.lower(), role, event["EventTime"]


def _role_use(event: dict[str, Any]) -> role_use.RoleUse | None:
    """The CloudTrail record of a LookupEvents event as a role use (if it is one)."""
    try:
        record = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    record.setdefault("eventID", event.get("EventId", ""))
    record.setdefault("eventName", event.get("EventName", ""))
    record.setdefault("eventTime", event.get("EventTime"))
    return role_use.from_cloudtrail(record)


def poll_cloudtrail(*, now: dt.datetime | None = None) -> int:
    """Record CloudTrail ``ConsoleLogin`` events of emergency roles as sign-ins, and feed
    every ``ConsoleLogin`` / ``AssumeRoleWithSAML`` of an emergency role to the AWS-side
    alarm matcher (the fallback for a lost EventBridge delivery). Returns the sign-ins
    recorded."""
    if not settings.CLOUDTRAIL_CONSOLE_LOGINS:
        return 0
    now = now or timezone.now()
    cursor, _ = LogCursor.objects.get_or_create(name=CLOUDTRAIL_CURSOR)
    start = now - INITIAL_LOOKBACK
    if cursor.after:
        start = dt.datetime.fromisoformat(cursor.after) - CLOUDTRAIL_OVERLAP
    roles = {r.role_name: r for r in EmergencyRole.objects.all()}
    failovers = list(Failover.objects.order_by("opened_at"))
    recorded = 0
    uses = 0
    try:
        client = aws_clients.emergency_account_client("cloudtrail", settings.CLOUDTRAIL_REGION)
        for event_name in CLOUDTRAIL_EVENTS:
            pages = client.get_paginator("lookup_events").paginate(
                LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": event_name}],
                StartTime=start,
                EndTime=now,
            )
            for page in pages:
                for event in page.get("Events", []):
                    use = _role_use(event)
                    if use is not None:
                        uses += role_use.record_use(use, source=role_use.CLOUDTRAIL) is not None
                    found = (
                        _cloudtrail_sign_in(event, roles) if event_name == "ConsoleLogin" else None
                    )
                    if found is None:
                        continue
                    recorded += _console_sign_in(event, found, failovers)
    except (BotoCoreError, ClientError) as exc:
        LogCursor.objects.filter(pk=cursor.pk).update(
            polled_at=timezone.now(), last_error=str(exc)[:2000]
        )
        log.warning("Reading CloudTrail failed (next poll retries): %s", exc)
        return recorded
    if uses:
        log.info("CloudTrail: %s new AWS-side use(s) of emergency roles", uses)
    LogCursor.objects.filter(pk=cursor.pk).update(
        after=now.isoformat(), polled_at=timezone.now(), updated_at=now, last_error="",
        last_batch=recorded,
    )  # fmt: skip
    return recorded


def _console_sign_in(
    event: dict[str, Any],
    found: tuple[str, EmergencyRole, dt.datetime],
    failovers: list[Failover],
) -> int:
    login, role, at = found
    failover = None
    for candidate in failovers:
        if candidate.opened_at <= at:
            failover = candidate
    try:
        _, created = SignInEvidence.objects.get_or_create(
            source_id=f"cloudtrail:{event['EventId']}",
            defaults={
                "failover": failover,
                "login": login,
                "kind": EvidenceKind.SIGN_IN,
                "at": at,
                "source": "cloudtrail",
                "role": role,
                "detail": {"event_name": "ConsoleLogin"},
            },
        )
    except IntegrityError:
        created = False
    return int(created)
