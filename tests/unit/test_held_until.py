"""One definition of "how long was access held" (issue 8): the auditor's history export,
its timeline page and the failover report give the same answer for the same grant."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from federation.failover.report import build_report
from portal.auditor.exports import request_row
from requests_app.models import AccessRequest, Status

T0 = timezone.now().replace(microsecond=0) - dt.timedelta(hours=3)


def grant(engineer, plan, failover, **fields) -> AccessRequest:
    return AccessRequest.objects.create(
        requester=engineer, role=plan.roles[("prod-payments", "RO")], failover=failover,
        justification="Identity Center is down and payments are failing.", ticket="INC-1",
        duration_minutes=60, okta_login=engineer.email, **fields,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "until", "minutes"),
    [
        # Okta confirmed the removal 7 minutes after the grant expired: held until then.
        (
            {"status": Status.EXPIRED, "ended_at": T0 + dt.timedelta(minutes=60),
             "membership_removed_at": T0 + dt.timedelta(minutes=67)},
            T0 + dt.timedelta(minutes=67), 67,
        ),
        # Revoked, removal not confirmed yet: held until the grant ended.
        ({"status": Status.REVOKED, "ended_at": T0 + dt.timedelta(minutes=20)},
         T0 + dt.timedelta(minutes=20), 20),
    ],
)  # fmt: skip
def test_history_export_timeline_and_report_agree(
    engineer, approver, plan, open_failover, client, fields, until, minutes
):
    req = grant(engineer, plan, open_failover, activated_at=T0, **fields)
    assert (req.held_until, req.held_minutes()) == (until, minutes)
    row = request_row(req)
    assert (row["held_until"], row["held_minutes"]) == (until.isoformat(), minutes)
    [access] = build_report(open_failover)["access"]
    assert (access["held_until"], access["held_minutes"]) == (until, minutes)
    client.force_login(approver)
    page = client.get(reverse("auditor-request", args=[req.pk])).content.decode()
    assert f"({minutes} min)" in page


def test_a_grant_still_held_counts_to_now_and_one_never_granted_counts_nothing(
    engineer, plan, open_failover
):
    live = grant(engineer, plan, open_failover, status=Status.ACTIVE, activated_at=T0)
    assert live.held_until is None
    assert live.held_minutes(now=T0 + dt.timedelta(minutes=45)) == 45
    never = grant(engineer, plan, open_failover, status=Status.DENIED)
    assert (never.held_until, never.held_minutes()) == (None, None)
    report = {a["request_id"]: a for a in build_report(open_failover)["access"]}
    assert report[never.pk]["held_minutes"] == 0
    assert report[live.pk]["held_minutes"] >= 180
