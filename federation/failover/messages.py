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


def _failover_name(failover: Failover) -> str:
    """What people call it: "Failover #3" or "Drill #3" (no internal status)."""
    return f"{'Drill' if failover.is_drill else 'Failover'} #{failover.pk}"


def _held_request_link(failover: Failover, user: Any) -> str:
    """The user's own request page that holds (or held) access in ``failover``: the page
    with "I have signed out"; engineers may not open the return-to-normal page."""
    held = (
        failover.requests.filter(requester=user, activated_at__isnull=False)
        .order_by("-activated_at")
        .first()
    )
    if held is None:
        return link("request-list") + "?mine=1"
    return link("request-detail", held.pk)


def _tell_to_sign_out(event: str, subject: str, failover: Failover, users: list[Any]) -> None:
    text = (
        f"{_failover_name(failover)} is returning to normal: IAM Identity Center is back. "
        "Sign out of the AWS console now and use the AWS access portal (IAM Identity "
        "Center) again. Then press “I have signed out of AWS” on your request page "
        "(the link below)."
    )
    for user in users:
        notify(
            event,
            subject,
            text,
            _held_request_link(failover, user),
            [user.email],
            mention=slack_mention(user),
        )


def return_started(failover: Failover, users: Iterable[Any]) -> None:
    """Step 2 of the return to normal: every emergency user is told to sign out (each with
    a link to their own request), approvers are told where to follow the sign-outs."""
    users = list(users)
    _tell_to_sign_out(
        "failover.return_started", "Sign out now: Identity Center is back", failover, users
    )
    names = ", ".join(u.get_username() for u in users) or "nobody"
    notify(
        "failover.return_started",
        f"{_failover_name(failover)} is returning to normal",
        f"{_failover_name(failover)} is returning to normal. Told to sign out of the AWS "
        f"console: {names}. No new emergency requests are accepted. Follow the sign-outs "
        "on the return-to-normal page.",
        link("failover-return"),
        approver_emails(),
    )


def signout_reminder(failover: Failover, users: Iterable[Any]) -> None:
    _tell_to_sign_out(
        "failover.signout_reminder",
        "Reminder: sign out of the AWS console now",
        failover,
        list(users),
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
