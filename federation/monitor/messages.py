"""What the portal tells approvers when Identity Center's health changes, and when an
emergency role is used in AWS outside a grant."""

from __future__ import annotations

from typing import Any

from portal.notify import approver_emails, link, notify, notify_now, staff_emails, when


def health_changed(state: Any) -> None:
    """Identity Center health turned DISRUPTED or HEALTHY (called by the health monitor).

    ``state`` is a state name or an object with ``.state`` (and optionally
    ``.since`` and ``.evidence``).
    """
    name = str(getattr(state, "state", state)).upper()
    if name == "DISRUPTED":
        text = (
            "IAM Identity Center looks disrupted. If people cannot reach the AWS access "
            "portal, declare a disruption in the portal to switch on emergency access."
        )
    elif name == "HEALTHY":
        text = (
            "IAM Identity Center looks healthy again. If a failover is open, start the "
            "return to normal."
        )
    else:
        text = f"IAM Identity Center health is now {name}."
    evidence = getattr(state, "evidence", None)
    if evidence:
        lines = [evidence] if isinstance(evidence, str) else list(evidence)
        text += "\nEvidence: " + "; ".join(lines)
    notify(
        "health.changed", f"Identity Center is {name}", text, link("dashboard"), approver_emails()
    )


ROLE_USE_WHY = {
    "unmatched": "no active grant for this person and role",
    "no_failover": "no failover is open",
}


def role_use_alert(use: Any) -> None:
    """An emergency role was used in AWS with no matching grant or no failover open
    (called once per role, person and hour by :mod:`federation.monitor.role_use`)."""
    why = ROLE_USE_WHY.get(use.alert, use.alert)
    text = (
        f"AWS reports {use.event_name} of {use.role_arn} by {use.login or 'an unknown person'} "
        f"at {when(use.at)}, but {why}.\n"
        f"Source IP: {use.source_ip or '—'}; Region: {use.aws_region or '—'}; "
        f"seen via {use.source}.\n"
        "If nobody can explain it, treat it as a security incident: deactivate the "
        "federation app and revoke the role's sessions."
    )
    notify(
        "aws.role_use_alert",
        f"Emergency role used in AWS: {use.login or '?'} on {use.role_arn.rsplit('/', 1)[-1]}",
        text,
        link("dashboard"),
        [*approver_emails(), *staff_emails()],
    )


def machinery_silent(name: str, detail: str, *, since: Any) -> None:
    """The worker or beat went silent: grants are not being processed (once per episode).
    Delivered at once from this process: the worker that would deliver it may be the one
    that is down."""
    text = (
        f"Grants are not being processed: the Celery {name} is {detail} (last seen "
        f"{when(since)}). Approved requests are not added to Okta and ended grants are not "
        "removed until it is back. See the runbook in docs/reliability.md "
        f'("{name} down").'
    )
    notify_now(
        "machinery.silent", f"The {name} is down: grants are not processed", text,
        link("dashboard"), approver_emails(),
    )  # fmt: skip


def machinery_back(name: str) -> None:
    notify_now(
        "machinery.back", f"The {name} is back", f"The Celery {name} reports again; pending "
        "grants are being processed.", link("dashboard"), approver_emails(),
    )  # fmt: skip
