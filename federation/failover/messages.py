"""What the portal tells people about the failover: declared, proposed, the return to
normal (sign out now, reminders), the report, overdue drills."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from federation.models import Failover
from portal.notify import approver_emails, link, notify, slack_mention, when


def failover_changed(failover: Failover, what: str) -> None:
    notify(
        f"failover.{what.split()[0]}",
        f"{failover} {what}",
        f"{failover} was {what}.\nReason: {failover.reason}",
        link("dashboard"),
        approver_emails(),
    )


def failover_proposed(failover: Failover) -> None:
    notify(
        "failover.proposed",
        f"{failover} needs a second approver",
        f"{failover.opened_by.get_username()} declared an Identity Center disruption: "
        f"{failover.reason}\nA second approver must confirm it before the federation app "
        "is activated.",
        link("failover"),
        approver_emails(exclude=failover.opened_by.email),
    )


def return_started(failover: Failover, users: Iterable[Any]) -> None:
    """Step 2 of the return to normal: every emergency user is told to sign out."""
    users = list(users)
    notify(
        "failover.return_started",
        "Sign out now: Identity Center is back",
        f"{failover} is returning to normal. Sign out of the AWS console now and use the "
        "AWS access portal (IAM Identity Center) again. Then press “I have signed out” on "
        "your request page. No new emergency requests are accepted.",
        link("failover-return"),
        [u.email for u in users] + approver_emails(),
        mention=" ".join(slack_mention(u) for u in users),
    )


def signout_reminder(failover: Failover, users: Iterable[Any]) -> None:
    users = list(users)
    names = ", ".join(u.get_username() for u in users)
    notify(
        "failover.signout_reminder",
        "Reminder: sign out of the emergency access account",
        f"{failover} is returning to normal and these people have not signed out yet: "
        f"{names}. Sign out of the AWS console and use the AWS access portal again.",
        link("failover-return"),
        [u.email for u in users],
        mention=" ".join(slack_mention(u) for u in users),
    )


def report_ready(failover: Failover) -> None:
    notify(
        "failover.report",
        f"{failover}: report",
        f"{failover} is closed. The report lists every grant, approval and change made "
        "outside the portal.",
        link("failover-report", failover.pk),
        approver_emails(),
    )


def drill_overdue(last_drill_at: Any, interval_days: int) -> None:
    since = (
        f"The last passed drill was on {when(last_drill_at)}."
        if last_drill_at
        else ("No drill has passed yet.")
    )
    notify(
        "drill.overdue",
        "A failover drill is overdue",
        f"{since} Drills are due every {interval_days} days: run one from the Failover page "
        "to prove the federation app, groups and sign-in still work.",
        link("failover"),
        approver_emails(),
    )
