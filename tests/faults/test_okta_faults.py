"""Okta misbehaving: an outage (503s) then rate limiting while revocations run, and members
added in Okta behind the portal's back."""

from __future__ import annotations

import time

import pytest

from federation.sandbox.faults import FaultRule
from portal.models import AuditEvent, NotificationLog
from requests_app import services
from requests_app.models import AccessRequest, Status
from tests.faults.world import assert_invariant, file_and_approve, prepare
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

OUTAGE_SECONDS, REVOCATIONS, GROUP_LIMIT_PER_MINUTE = 20, 10, 20


def test_revocations_through_an_okta_outage_and_rate_limits_all_complete(
    processes, on_private_broker, okta_org, approver
):
    processes.worker()
    processes.beat()
    _, people, roles = prepare(okta_org, approver, REVOCATIONS)
    grants = [file_and_approve(p, roles[n % len(roles)], approver) for n, p in enumerate(people)]
    wait_for(
        lambda: AccessRequest.objects.filter(status=Status.ACTIVE).count() == REVOCATIONS,
        what="the grants to be active",
    )
    # Okta answers 503 to everything for a while ...
    okta_org.add_faults([FaultRule(503, "/api/v1/", "*", count=1_000_000)])
    for req in grants:
        services.revoke(AccessRequest.objects.get(pk=req.pk), actor=approver, reason="done")
    time.sleep(OUTAGE_SECONDS)
    assert all(set(okta_org.member_logins(r.okta_group_name)) for r in roles)  # still there
    # ... then comes back rate limited (429 with X-Rate-Limit-Reset once over the limit).
    okta_org.clear_faults()
    okta_org.add_faults(rate_limits={"groups": GROUP_LIMIT_PER_MINUTE})
    wait_for(
        lambda: not AccessRequest.objects.filter(membership_removed_at__isnull=True).exists(),
        timeout=120,
        interval=0.5,
        what="every membership to be removed after Okta recovered",
    )
    # Nothing that should not fail did: every grant is REVOKED (none FAILED).
    assert set(AccessRequest.objects.values_list("status", flat=True)) == {Status.REVOKED}
    assert_invariant(okta_org, roles)


def test_members_added_behind_the_portals_back_are_removed_within_two_reconcile_periods(
    processes, on_private_broker, okta_org, approver
):
    processes.worker()
    processes.beat(RECONCILE_SECONDS="5")
    _, people, roles = prepare(okta_org, approver, 2)
    okta_org.add_member_behind_the_back(roles[0].okta_group_name, people[0].email)
    added = time.time()
    wait_for(
        lambda: not okta_org.member_logins(roles[0].okta_group_name),
        timeout=15,
        interval=0.2,
        what="the reconciler to remove the member",
    )
    assert time.time() - added <= 2 * 5 + 1
    assert AccessRequest.objects.count() == 0
    # The member goes in Okta before the worker's transaction with the alert commits.
    event = wait_for(
        lambda: AuditEvent.objects.filter(action="okta.unexpected_member_removed").first(),
        timeout=10,
        what="the okta.unexpected_member_removed alert",
    )
    assert event.payload["login"] == people[0].email
    assert NotificationLog.objects.filter(event="okta.drift").exists()
    # A grant the portal gave is left alone.
    file_and_approve(people[1], roles[1], approver)
    wait_for(lambda: AccessRequest.objects.filter(status=Status.ACTIVE).exists(), what="grant")
    time.sleep(6)
    assert_invariant(okta_org, roles)
