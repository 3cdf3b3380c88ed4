"""AWS-side alarms: every use of an emergency role that AWS reports is matched to a grant.

AWS tells the portal in two ways, both feeding :func:`record_use`:

* EventBridge rules (rendered by :mod:`federation.plan.cloudformation`) forward the
  CloudTrail records of ``AssumeRoleWithSAML`` and ``ConsoleLogin`` (emergency account)
  and ``AssumeRole`` into ``EmergencyAccess_<LEVEL>`` (workload accounts) to
  ``POST /api/v1/aws-events``;
* the optional CloudTrail ``LookupEvents`` poller (:mod:`federation.failover.systemlog`),
  the fallback when a delivery was lost.

A use matches a grant when the role is the grant's (the emergency role, or the workload
role it leads to), the person is the grant's Okta login (the SAML source identity, else
the role session name; case-insensitive) and the use falls in the grant's window. A
matched use is stored and becomes sign-in evidence on the grant's timeline. Anything
else -- no grant, or no failover open at the time -- is an alert: an audit event, and
approvers and staff told once per (role, person, hour).

CloudTrail's ``eventID`` is unique per record and is the same through EventBridge and
LookupEvents, so a redelivered, replayed or re-polled event is recorded once.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from federation.evidence_models import AwsRoleUse, EvidenceKind, RoleUseAlert, SignInEvidence
from federation.models import EmergencyRole, Failover
from federation.monitor import messages
from portal import audit
from requests_app.models import HOLDING_STATUSES, AccessRequest

log = logging.getLogger(__name__)

ROLE_PREFIX = "EmergencyAccess_"
# The events the rules forward (and the poller reads), by where they happen.
EMERGENCY_EVENTS = ("AssumeRoleWithSAML", "ConsoleLogin")
WORKLOAD_EVENTS = ("AssumeRole",)
WATCHED_EVENTS = (*EMERGENCY_EVENTS, *WORKLOAD_EVENTS)
# A sign-in can be logged a little before the portal recorded the approval.
CLOCK_SKEW = dt.timedelta(minutes=2)
EVENT_TIME_PRECISION = dt.timedelta(seconds=1)
EVENTBRIDGE = "eventbridge"
CLOUDTRAIL = "cloudtrail"


@dataclass(frozen=True)
class RoleUse:
    """One use of an emergency role, as read from a CloudTrail record."""

    event_id: str
    event_name: str
    at: dt.datetime
    account_id: str
    region: str
    role_arn: str  # the role used: the emergency role, or the workload role assumed
    session_name: str
    source_identity: str
    source_ip: str

    @property
    def login(self) -> str:
        return (self.source_identity or self.session_name).lower()

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]


def _assumed_role(arn: str) -> tuple[str, str]:
    """(role name, session name) of ``arn:aws:sts::<id>:assumed-role/<role>/<session>``."""
    if ":assumed-role/" not in arn:
        return "", ""
    role, _, session = arn.split(":assumed-role/", 1)[1].partition("/")
    return role, session


def _iam_role_arn(account: str, role: str) -> str:
    return f"arn:aws:iam::{account}:role/{role}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def from_cloudtrail(record: Mapping[str, Any]) -> RoleUse | None:
    """The role use a CloudTrail record describes, or None when it is not a successful
    use of an ``EmergencyAccess_*`` role (a failed sign-in, another role, another call)."""
    name = _text(record.get("eventName"))
    if name not in WATCHED_EVENTS or record.get("errorCode"):
        return None
    at = record.get("eventTime")
    moment = at if isinstance(at, dt.datetime) else parse_datetime(_text(at))
    event_id = _text(record.get("eventID"))
    if moment is None or not event_id:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt.UTC)
    identity = record.get("userIdentity") or {}
    request = record.get("requestParameters") or {}
    response = record.get("responseElements") or {}
    if not isinstance(identity, dict) or not isinstance(request, dict):
        return None
    if not isinstance(response, dict):
        response = {}
    account = _text(record.get("recipientAccountId")) or _text(identity.get("accountId"))
    source_identity = ""
    if name == "ConsoleLogin":
        if response.get("ConsoleLogin") != "Success":
            return None
        role, session = _assumed_role(_text(identity.get("arn")))
        context = identity.get("sessionContext") or {}
        source_identity = _text(context.get("sourceIdentity")) if isinstance(context, dict) else ""
        role_arn = _iam_role_arn(account, role) if role else ""
    else:
        role_arn = _text(request.get("roleArn"))
        assumed = response.get("assumedRoleUser") or {}
        _, session = _assumed_role(_text(assumed.get("arn")) if isinstance(assumed, dict) else "")
        session = session or _text(request.get("roleSessionName"))
        source_identity = _text(response.get("sourceIdentity")) or _text(
            request.get("sourceIdentity")
        )
        if name == "AssumeRole" and not source_identity:
            # Role chaining keeps the source identity; the caller's session names the person.
            context = identity.get("sessionContext") or {}
            if isinstance(context, dict):
                source_identity = _text(context.get("sourceIdentity"))
            _, caller_session = _assumed_role(_text(identity.get("arn")))
            session = session or caller_session
    if not role_arn.rsplit("/", 1)[-1].startswith(ROLE_PREFIX):
        return None
    return RoleUse(
        event_id=event_id,
        event_name=name,
        at=moment,
        account_id=account,
        region=_text(record.get("awsRegion")),
        role_arn=role_arn,
        session_name=session,
        source_identity=source_identity,
        source_ip=_text(record.get("sourceIPAddress"))[:64],
    )


# --- Matching ---------------------------------------------------------------------------


def role_for(role_arn: str) -> EmergencyRole | None:
    """The planned emergency role behind an ARN: the emergency role itself, or the
    workload account's ``EmergencyAccess_<LEVEL>`` it leads to."""
    parts = role_arn.split(":")
    if len(parts) < 6 or not parts[5].startswith("role/"):
        return None
    account, name = parts[4], parts[5].rsplit("/", 1)[-1]
    roles = EmergencyRole.objects.select_related("emergency_account", "workload_account", "level")
    found = roles.filter(role_name=name, emergency_account__account_id=account).first()
    if found is not None:
        return found
    for role in roles.filter(workload_account__account_id=account):
        if role.level.workload_role_name == name:
            return role
    return None


def failover_open_at(moment: dt.datetime) -> Failover | None:
    """The failover (disruption or drill) open at that moment, if any."""
    # CloudTrail gives whole seconds: a use in the failover's first second is in it.
    return (
        Failover.objects.filter(opened_at__lt=moment + EVENT_TIME_PRECISION)
        .filter(Q(closed_at__isnull=True) | Q(closed_at__gte=moment))
        .order_by("-opened_at")
        .first()
    )


def grant_for(role: EmergencyRole, login: str, moment: dt.datetime) -> AccessRequest | None:
    """The grant of ``role`` to ``login`` whose window (approval .. membership removed)
    holds ``moment``."""
    candidates = AccessRequest.objects.filter(
        role=role, okta_login__iexact=login, decided_at__isnull=False
    ).order_by("-decided_at")
    for grant in candidates:
        start = (grant.decided_at or grant.created_at) - CLOCK_SKEW
        end = grant.membership_removed_at or grant.ended_at
        # A denied request has decided_at too: only grants that were held count.
        held = grant.activated_at is not None or grant.status in HOLDING_STATUSES
        if held and start <= moment and (end is None or moment <= end + CLOCK_SKEW):
            return grant
    return None


def alert_key(use: RoleUse) -> str:
    return f"{use.role_arn.lower()}|{use.login}|{use.at.astimezone(dt.UTC):%Y-%m-%dT%H}"


def record_use(
    use: RoleUse, *, source: str, detail: dict[str, Any] | None = None
) -> AwsRoleUse | None:
    """Store one use, match it, alert when unmatched. None when it was recorded before."""
    role = role_for(use.role_arn)
    failover = failover_open_at(use.at)
    grant = grant_for(role, use.login, use.at) if role is not None and use.login else None
    if failover is None:
        alert = RoleUseAlert.NO_FAILOVER
    elif grant is None:
        alert = RoleUseAlert.UNMATCHED
    else:
        alert = RoleUseAlert.NONE
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = AwsRoleUse.objects.create(
                    event_id=use.event_id[:200],
                    event_name=use.event_name,
                    source=source,
                    at=use.at,
                    aws_account_id=use.account_id[:12],
                    aws_region=use.region[:32],
                    role=role,
                    role_arn=use.role_arn[:300],
                    login=use.login[:254],
                    session_name=use.session_name[:128],
                    source_identity=use.source_identity[:128],
                    source_ip=use.source_ip,
                    grant=grant,
                    failover=failover if failover is not None else None,
                    alert=alert,
                    alert_key=alert_key(use)[:400] if alert else "",
                    detail=detail or {},
                )
        except IntegrityError:
            return None  # this CloudTrail event was recorded before: nothing to do
        payload = {
            "event": use.event_name,
            "event_id": use.event_id,
            "role": use.role_arn,
            "login": use.login,
            "source_identity": use.source_identity,
            "session_name": use.session_name,
            "at": use.at,
            "region": use.region,
            "source_ip": use.source_ip,
            "via": source,
        }
        if grant is not None and not alert:
            SignInEvidence.objects.get_or_create(
                source_id=f"aws-role-use:{use.event_id}"[:200],
                defaults={
                    "failover": grant.failover,
                    "login": use.login,
                    "kind": EvidenceKind.AWS_ROLE_USE,
                    "at": use.at,
                    "source": source,
                    "role": role,
                    "request": grant,
                    "detail": {"event_name": use.event_name, "role_arn": use.role_arn},
                },
            )
            audit.record("aws.role_used", grant, system=f"aws-{source}", payload=payload)
            return row
        # Serialise alerts (the chain's lock) so two deliveries of one hour notify once.
        audit.lock_chain()
        told = AwsRoleUse.objects.filter(alert_key=row.alert_key, notified=True).exists()
        audit.record(
            "aws.role_use_alert",
            row,
            system=f"aws-{source}",
            payload={
                **payload,
                "alert": alert,
                "grant": grant.pk if grant else None,
                "failover": failover.pk if failover else None,
                "notified": not told,
            },
        )
        if not told:
            row.notified = True
            row.save(update_fields=["notified"])
            messages.role_use_alert(row)
    log.warning("AWS-side use of %s by %s: %s", use.role_arn, use.login, alert)
    return row


def recent_alerts(hours: int = 24, *, now: dt.datetime | None = None) -> list[AwsRoleUse]:
    """Alerts of the last ``hours`` (the dashboard's list), newest first."""
    since = (now or timezone.now()) - dt.timedelta(hours=hours)
    return list(
        AwsRoleUse.objects.exclude(alert="").filter(at__gte=since).select_related("role")[:20]
    )


def uses_in(failover: Failover) -> list[AwsRoleUse]:
    """Every AWS-side use seen while the failover was open (its report and drill)."""
    window = Q(at__gte=failover.opened_at)
    if failover.closed_at is not None:
        window &= Q(at__lte=failover.closed_at)
    return list(AwsRoleUse.objects.filter(Q(failover=failover) | window).order_by("at", "pk"))


def simulated_record(role: EmergencyRole, login: str, event: str) -> dict[str, Any]:
    """A made-up CloudTrail record of ``login`` using ``role`` (demo and drills without AWS):
    what EventBridge would deliver."""
    account = role.emergency_account.account_id
    session = f"arn:aws:sts::{account}:assumed-role/{role.role_name}/{login}"
    record: dict[str, Any] = {
        "eventID": f"simulated-{uuid.uuid4()}",
        "eventName": event,
        "eventTime": timezone.now(),
        "awsRegion": "us-east-1",
        "recipientAccountId": account,
        "sourceIPAddress": "192.0.2.1",
    }
    if event == "ConsoleLogin":
        record["userIdentity"] = {"type": "AssumedRole", "arn": session, "accountId": account}
        record["responseElements"] = {"ConsoleLogin": "Success"}
    else:
        record["userIdentity"] = {"type": "SAMLUser", "userName": login}
        record["requestParameters"] = {"roleArn": role.role_arn, "roleSessionName": login}
        record["responseElements"] = {
            "assumedRoleUser": {"arn": session},
            "sourceIdentity": login,
        }
    return record


def simulate(role: EmergencyRole, login: str, event: str = "AssumeRoleWithSAML") -> AwsRoleUse:
    """Record a simulated use, through the same path as an EventBridge delivery."""
    use = from_cloudtrail(simulated_record(role, login, event))
    if use is None:  # pragma: no cover - the record above is always a use
        raise ValueError("the simulated record is not a role use")
    row = record_use(use, source="simulated", detail={"simulated": True})
    if row is None:  # pragma: no cover - a fresh uuid
        raise ValueError("already recorded")
    return row
