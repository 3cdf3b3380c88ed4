"""What the portal tells approvers when Identity Center's health changes."""

from __future__ import annotations

from typing import Any

from portal.notify import approver_emails, link, notify, notify_now, when


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
