"""The reconciler follows the Okta System Log between full passes, through the real
processes: a worker and beat (periods overridden small) against the sandbox Okta org over
HTTP. A member added behind the portal's back is removed by the System Log poll that reads
the event, listing just that group; the full pass still comes every
RECONCILE_FULL_PASS_SECONDS; a lost cursor or a failing log read falls back to full
passes."""

from __future__ import annotations

import time
import urllib.parse
import urllib.request

import pytest

from federation.evidence_models import OKTA_SYSTEM_LOG
from federation.models import EmergencyRole, LogCursor
from federation.sandbox.faults import FaultRule
from portal.models import AuditEvent, NotificationLog
from requests_app.grants import RECONCILER
from tests.faults.world import prepare
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

POLL_SECONDS = 2
# A loaded two-core machine: the poll may start late and the worker may be slow.
SLACK_SECONDS = 6


def start(processes, **env: str) -> None:
    """Worker and beat with the same periods (the worker reads them when deciding)."""
    env = {"RECONCILE_SECONDS": "1", "SYSTEM_LOG_POLL_SECONDS": str(POLL_SECONDS), **env}
    processes.worker(**env)
    processes.beat(**env)


def last_full_pass():
    return LogCursor.objects.filter(name=RECONCILER).values_list("updated_at", flat=True).first()


def following() -> bool:
    cursor = LogCursor.objects.filter(name=OKTA_SYSTEM_LOG).first()
    return bool(cursor and cursor.after and not cursor.last_error and last_full_pass())


def settled() -> object:
    """The reconciler at rest, following the log: no full pass requested (the first poll
    may ask for one over the events ``prepare`` caused) and none started across two ticks
    (a tick that decided before the log was followed may still be passing). Returns when
    the last full pass started."""
    wait_for(following, timeout=60, what="the first full pass and the System Log followed")

    def at_rest():
        before = following() and not LogCursor.objects.get(name=RECONCILER).after
        full_pass = last_full_pass()
        time.sleep(2.5)  # two reconciler ticks
        return before and following() and last_full_pass() == full_pass and full_pass

    return wait_for(at_rest, timeout=30, what="the reconciler at rest")


def is_census(method: str, path: str) -> bool:
    """The groups search a full pass starts with."""
    return (method, path) == ("GET", "/api/v1/groups")


def is_listing(method: str, path: str) -> bool:
    """A group's member listing."""
    return method == "GET" and path.startswith("/api/v1/groups/") and path.endswith("/users")


def group_listings(org, since: float) -> list[str]:
    """The paths of the member listings Okta answered since ``since``."""
    return [path for _, _, method, path, _ in org.call_log.calls(since) if is_listing(method, path)]


def add_in_the_okta_console(org, group: str, login: str) -> None:
    """An Okta admin adds a member behind the portal's back (the sandbox's control plane)."""
    path = f"/__sandbox__/groups/{urllib.parse.quote(group, safe='')}/users/{login}"
    request = urllib.request.Request(org.url + path, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def test_a_member_added_behind_the_back_is_removed_within_one_poll_without_a_full_pass(
    processes, on_private_broker, okta_org, approver
):
    start(processes, RECONCILE_FULL_PASS_SECONDS="3600")
    _, people, roles = prepare(okta_org, approver, 1)
    full_pass = settled()
    group = roles[0].okta_group_name
    since = time.time()

    add_in_the_okta_console(okta_org, group, people[0].email)
    wait_for(
        lambda: not okta_org.member_logins(group),
        timeout=POLL_SECONDS + 4 * SLACK_SECONDS,
        interval=0.1,
        what="the System Log poll to remove the member",
    )
    took = time.time() - since

    assert took <= POLL_SECONDS + SLACK_SECONDS, took
    # No full pass: just that group was listed, once.
    assert last_full_pass() == full_pass
    group_id = EmergencyRole.objects.get(pk=roles[0].pk).okta_group_id
    assert group_listings(okta_org, since) == [f"/api/v1/groups/{group_id}/users"]
    # The alerts of today, written by the worker after the member went.
    event = wait_for(
        lambda: AuditEvent.objects.filter(action="okta.unexpected_member_removed").first(),
        timeout=10,
        what="the okta.unexpected_member_removed alert",
    )
    assert event.payload == {"okta_group": group, "login": people[0].email}
    # The poll records the event itself (the outside change) once the group is repaired.
    wait_for(
        lambda: AuditEvent.objects.filter(action="okta.outside_change").exists(),
        timeout=10,
        what="the okta.outside_change alert",
    )
    assert NotificationLog.objects.filter(event="okta.drift").exists()


def censuses(org, since: float) -> int:
    """Full passes since ``since``: each starts with one census of the groups."""
    return sum(1 for _, _, method, path, _ in org.call_log.calls(since) if is_census(method, path))


def listings_by_pass(org, since: float, until: float) -> list[list[str]]:
    """The member listings of each full pass that began (with its census) in the window."""
    passes: list[list[str]] = []
    for received, _, method, path, _ in sorted(org.call_log.calls(since)):
        if is_census(method, path):
            if received >= until:
                break
            passes.append([])
        elif passes and is_listing(method, path):
            passes[-1].append(path)
    return passes


def test_a_full_pass_every_n_seconds_and_a_complete_one_every_fourth(
    processes, on_private_broker, okta_org, approver
):
    start(processes, RECONCILE_FULL_PASS_SECONDS="3")
    prepare(okta_org, approver, 0)
    wait_for(following, timeout=60, what="the first full pass and the System Log followed")
    groups = EmergencyRole.objects.count()
    # Past the passes that list the groups just created (their creation is a membership
    # change to Okta; listed by the next pass and, within the clock-skew margin, the one after).
    time.sleep(9)
    since = time.time()
    time.sleep(15)
    until = time.time()
    time.sleep(2)  # a pass under way at ``until`` finishes its listings

    # Every 3 s over 15 s: five passes (fewer on a loaded machine). Each asks Okta
    # for the census of the groups; every fourth (every 10.5 s at least) lists every
    # group; the others list none (nothing changed, nothing in use). Listings are counted
    # by the pass they belong to: one under way at either end of the window was cut in
    # two (6 listings: a whole pass and two of the next, in one CI run).
    passes = listings_by_pass(okta_org, since, until)
    assert 2 <= len(passes) <= 6, passes
    assert all(len(listed) in (0, groups) for listed in passes), passes
    assert 1 <= sum(1 for listed in passes if listed) <= 2, passes
    assert last_full_pass().timestamp() >= since


def test_a_lost_cursor_and_a_failing_log_read_fall_back_to_full_passes(
    processes, on_private_broker, okta_org, approver
):
    start(processes, RECONCILE_FULL_PASS_SECONDS="3600")
    prepare(okta_org, approver, 0)
    wait_for(following, timeout=60, what="the first full pass and the System Log followed")

    # Okta no longer knows the cursor (expired; the org restarted): refused with a 400.
    first = last_full_pass()
    LogCursor.objects.filter(name=OKTA_SYSTEM_LOG).update(after="1000_99999")
    wait_for(
        lambda: AuditEvent.objects.filter(action="okta.log_cursor_reset").exists(),
        timeout=POLL_SECONDS + 4 * SLACK_SECONDS,
        what="the poll to find its cursor refused",
    )
    wait_for(lambda: last_full_pass() > first, timeout=20, what="a full pass after the reset")
    wait_for(following, timeout=20, what="the System Log followed again")

    # The log cannot be read: every reconciler tick is a full pass until it can.
    okta_org.add_faults([FaultRule(503, "/api/v1/logs", "GET", count=1_000_000)])
    wait_for(
        lambda: LogCursor.objects.get(name=OKTA_SYSTEM_LOG).last_error,
        timeout=POLL_SECONDS + 4 * SLACK_SECONDS,
        what="a failed System Log read",
    )
    since = time.time()
    time.sleep(5)
    assert censuses(okta_org, since) >= 3  # a full pass per tick (1 s), not one an hour
    okta_org.clear_faults()
    wait_for(
        lambda: not LogCursor.objects.get(name=OKTA_SYSTEM_LOG).last_error,
        timeout=POLL_SECONDS + 4 * SLACK_SECONDS,
        what="the System Log read again",
    )
    time.sleep(1.5)  # a tick that started before the read may still be listing
    since = time.time()
    time.sleep(4)
    # Followed again: no full pass, no listing.
    assert group_listings(okta_org, since) == [] and censuses(okta_org, since) == 0
