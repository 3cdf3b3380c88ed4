"""AWS's "revoke older sessions" for an emergency role: an inline deny on the role.

Removing someone from the Okta group stops *new* sign-ins, but an AWS console
session that is already open lives until its SAML ``SessionDuration`` runs out.
AWS ends such sessions with an inline policy on the role that denies everything
to sessions whose token was issued before a moment (``aws:TokenIssueTime``); it
is what the IAM console's "Revoke active sessions" button writes. Only used when
the portal is given IAM write access to the emergency account
(``AWS_EMERGENCY_IAM_WRITE``).

Things to know:

* The deny is per role, not per person: everyone whose session on that role is
  older than the moment must sign in again (whoever still holds a grant can:
  their new token is newer, so the deny never blocks a current or future grant).
* It does not reach into the workload accounts: a role already switched into
  there (role chaining) lasts at most one more hour.
* It must stay until every session it denies would have expired anyway
  (``issued_before`` + the plan's ``SessionDuration``): removing it sooner
  would bring those sessions back to life. :func:`sweep` removes it then.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from federation.aws import clients as aws_clients
from federation.evidence_models import RoleSessionDeny
from federation.models import EmergencyRole
from portal import audit

log = logging.getLogger(__name__)

POLICY_NAME = "AWSRevokeOlderSessions"
# Clock skew between AWS and the portal: keep the deny this much longer.
LIFT_MARGIN = dt.timedelta(minutes=5)


def deny_document(issued_before: dt.datetime) -> dict[str, Any]:
    """The policy the IAM console's "Revoke active sessions" writes."""
    moment = issued_before.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": moment}},
            }
        ],
    }


def _session_length(role: EmergencyRole) -> dt.timedelta:
    return dt.timedelta(seconds=role.emergency_account.session_duration_seconds)


def request_deny(role: EmergencyRole, issued_before: dt.datetime) -> RoleSessionDeny:
    """Record that sessions of ``role`` older than ``issued_before`` must end, then try
    to write it to AWS now (a failure stays pending: :func:`sweep` retries)."""
    # Token issue times have one-second resolution: round up so "now" is covered.
    issued_before = (issued_before + dt.timedelta(seconds=1)).replace(microsecond=0)
    with transaction.atomic():
        audit.lock_chain()  # the lock order: the audit chain, then rows
        deny, created = RoleSessionDeny.objects.select_for_update().get_or_create(
            role=role, defaults={"issued_before": issued_before}
        )
        if not created and (deny.issued_before < issued_before or deny.removed_at):
            deny.issued_before = max(deny.issued_before, issued_before)
            deny.pending, deny.removed_at = True, None
            deny.save(update_fields=["issued_before", "pending", "removed_at"])
    attach(deny.pk)
    deny.refresh_from_db()
    return deny


def attach(deny_id: int) -> bool:
    """Write the pending deny to AWS; True once AWS holds it."""
    deny = RoleSessionDeny.objects.select_related("role").get(pk=deny_id)
    if not deny.pending:
        return True
    moment = deny.issued_before
    try:
        aws_clients.emergency_account_client("iam").put_role_policy(
            RoleName=deny.role.role_name,
            PolicyName=POLICY_NAME,
            PolicyDocument=json.dumps(deny_document(moment)),
        )
    except (BotoCoreError, ClientError) as exc:
        log.warning("Could not attach %s to %s: %s", POLICY_NAME, deny.role.role_name, exc)
        RoleSessionDeny.objects.filter(pk=deny.pk).update(last_error=str(exc)[:2000])
        return False
    with transaction.atomic():
        # Only if nobody asked for a later moment meanwhile (then it stays pending).
        done = RoleSessionDeny.objects.filter(pk=deny.pk, issued_before=moment).update(
            pending=False, attached_at=timezone.now(), last_error=""
        )
        if done:
            audit.record(
                "aws.session_deny_attached",
                deny.role,
                system="worker",
                payload={
                    "role": deny.role.role_name,
                    "policy": POLICY_NAME,
                    "issued_before": moment,
                },
            )
    return bool(done)


def lift(deny_id: int, *, now: dt.datetime | None = None, force: bool = False) -> bool:
    """Remove the deny once every session it denies would have expired anyway."""
    now = now or timezone.now()
    deny = RoleSessionDeny.objects.select_related("role__emergency_account").get(pk=deny_id)
    if deny.removed_at is not None or deny.pending:
        return False
    if not force and now < deny.issued_before + _session_length(deny.role) + LIFT_MARGIN:
        return False
    try:
        aws_clients.emergency_account_client("iam").delete_role_policy(
            RoleName=deny.role.role_name, PolicyName=POLICY_NAME
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
            log.warning("Could not remove %s from %s: %s", POLICY_NAME, deny.role.role_name, exc)
            RoleSessionDeny.objects.filter(pk=deny.pk).update(last_error=str(exc)[:2000])
            return False
    except BotoCoreError as exc:
        log.warning("Could not remove %s from %s: %s", POLICY_NAME, deny.role.role_name, exc)
        return False
    with transaction.atomic():
        removed = RoleSessionDeny.objects.filter(
            pk=deny.pk, issued_before=deny.issued_before, pending=False
        ).update(removed_at=now, last_error="")
        if removed:
            audit.record(
                "aws.session_deny_removed",
                deny.role,
                system="worker",
                payload={"role": deny.role.role_name, "policy": POLICY_NAME, "forced": force},
            )
    return bool(removed)


def sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Attach pending denies and lift expired ones (beat, and at failover close)."""
    if not settings.AWS_EMERGENCY_IAM_WRITE:
        return {}
    attached = sum(
        attach(pk)
        for pk in RoleSessionDeny.objects.filter(pending=True).values_list("pk", flat=True)
    )
    lifted = sum(
        lift(pk, now=now)
        for pk in RoleSessionDeny.objects.filter(
            pending=False, removed_at__isnull=True
        ).values_list("pk", flat=True)
    )
    return {"attached": attached, "lifted": lifted}
