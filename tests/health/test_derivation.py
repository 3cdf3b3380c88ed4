"""The health rule, from recorded samples: HEALTHY / DEGRADED / DISRUPTED / UNKNOWN, the
evidence behind each, and what changes of state tell approvers (once per episode)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from federation.models import HealthSample, HealthSource, HealthStateChange
from federation.monitor import health
from federation.monitor.health import DEGRADED, DISRUPTED, HEALTHY, UNKNOWN, derive
from portal.models import AuditEvent

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
POLL = 60
N = 3
ALL = [
    HealthSource.AWS_HEALTH,
    HealthSource.SSO_ADMIN,
    HealthSource.IDENTITY_STORE,
    HealthSource.ACCESS_PORTAL,
]
PROBES = ALL[1:]


def sample(source: str, ok: bool | None, minutes_ago: float, error: str = "", ms: int = 120):
    return HealthSample(
        source=source,
        ok=ok,
        latency_ms=ms,
        error=error or ("" if ok else "EndpointConnectionError"),
        recorded_at=NOW - dt.timedelta(minutes=minutes_ago),
    )


def history(source: str, *oks: bool | None) -> list[HealthSample]:
    """Samples newest first, one poll interval apart."""
    return [sample(source, ok, minutes_ago=i) for i, ok in enumerate(oks)]


def run(samples, sources=ALL):
    return derive(samples, now=NOW, sources=sources, failures=N, poll_seconds=POLL)


def all_ok(*skip: str) -> list[HealthSample]:
    return [s for source in ALL if source not in skip for s in history(source, True, True, True)]


def test_every_source_passing_is_healthy_with_latency_in_the_evidence():
    state, evidence = run(all_ok())
    assert state == HEALTHY
    assert "sso-admin ListInstances: ok, 120 ms" in evidence
    assert "AWS Health API: no open issue, 120 ms" in evidence


def test_nothing_configured_is_unknown_and_says_what_to_set():
    state, evidence = run([], sources=[])
    assert state == UNKNOWN
    assert "IDENTITY_CENTER_REGION" in evidence[0]


def test_no_sample_heard_recently_is_unknown():
    stale = [sample(s, True, minutes_ago=10) for s in ALL]
    state, evidence = run(stale)
    assert state == UNKNOWN
    assert all("not heard from" in line for line in evidence)


def test_aws_health_without_a_support_plan_is_unavailable_never_healthy():
    unavailable = [
        sample(HealthSource.AWS_HEALTH, None, 0, error="source unavailable (SubscriptionRequired)")
    ]
    assert run(unavailable, sources=[HealthSource.AWS_HEALTH])[0] == UNKNOWN
    # Alongside passing probes the state rests on the probes, and says so.
    state, evidence = run(all_ok(HealthSource.AWS_HEALTH) + unavailable)
    assert state == HEALTHY
    assert "AWS Health API: source unavailable (SubscriptionRequired)" in evidence


@pytest.mark.parametrize("probe", PROBES)
def test_n_consecutive_failures_of_one_probe_is_disrupted(probe):
    samples = all_ok(probe) + history(probe, False, False, False)
    state, evidence = run(samples)
    assert state == DISRUPTED
    assert any("failed 3 times in a row" in line for line in evidence)


@pytest.mark.parametrize("failures", [1, 2])
def test_fewer_failures_in_a_row_is_degraded(failures):
    oks = [False] * failures + [True] * (N - failures)
    samples = all_ok(HealthSource.SSO_ADMIN) + history(HealthSource.SSO_ADMIN, *oks)
    state, evidence = run(samples)
    assert state == DEGRADED
    assert any(
        f"failing (EndpointConnectionError, 120 ms), {failures} in a row" in line
        for line in evidence
    )


def test_a_recent_failure_keeps_it_degraded_after_recovery():
    samples = all_ok(HealthSource.ACCESS_PORTAL) + history(
        HealthSource.ACCESS_PORTAL, True, False, True
    )
    state, evidence = run(samples)
    assert state == DEGRADED
    assert "AWS access portal (HTTPS): ok, 120 ms, but 1 of the last 3 failed" in evidence


def test_failures_separated_by_a_gap_in_monitoring_are_not_in_a_row():
    # Two old failures from before the monitor stopped, one fresh one: not three in a row.
    gap = [sample(HealthSource.SSO_ADMIN, False, m) for m in (0, 30, 31)]
    samples = all_ok(HealthSource.SSO_ADMIN) + gap
    assert run(samples)[0] == DEGRADED


def test_an_open_aws_health_issue_alone_is_degraded():
    issue = [sample(HealthSource.AWS_HEALTH, False, 0, error="1 open issue(s): AWS_SSO_ISSUE")]
    state, evidence = run(all_ok(HealthSource.AWS_HEALTH) + issue)
    assert state == DEGRADED
    assert "AWS Health API: 1 open issue(s): AWS_SSO_ISSUE" in evidence


def test_an_open_aws_health_issue_with_a_failing_probe_is_disrupted():
    issue = [sample(HealthSource.AWS_HEALTH, False, 0, error="1 open issue(s): AWS_SSO_ISSUE")]
    failing = history(HealthSource.IDENTITY_STORE, False, True, True)
    samples = all_ok(HealthSource.AWS_HEALTH, HealthSource.IDENTITY_STORE) + issue + failing
    assert run(samples)[0] == DISRUPTED


def test_unavailable_probes_neither_fail_nor_pass():
    samples = all_ok(HealthSource.IDENTITY_STORE) + history(
        HealthSource.IDENTITY_STORE, None, None, None
    )
    assert run(samples)[0] == HEALTHY
    only_unavailable = history(HealthSource.SSO_ADMIN, None, None, None)
    assert run(only_unavailable, sources=[HealthSource.SSO_ADMIN])[0] == UNKNOWN


# --- Recorded state changes and what approvers are told --------------------------------


@pytest.fixture
def configured(settings):
    settings.IDENTITY_CENTER_REGION = "eu-west-1"
    settings.AWS_ACCESS_PORTAL_URL = "https://d-1234567890.awsapps.com/start"
    settings.HEALTH_POLL_SECONDS = POLL
    settings.HEALTH_FAILURES_FOR_DISRUPTED = N


def record(at: dt.datetime, *, failing: tuple[str, ...] = ()) -> None:
    HealthSample.objects.bulk_create(
        HealthSample(
            source=source,
            ok=source not in failing,
            latency_ms=100,
            error="ReadTimeoutError" if source in failing else "",
            recorded_at=at,
        )
        for source in ALL
    )


@pytest.fixture
def told(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(
        "federation.monitor.messages.health_changed", lambda state: calls.append(state.state)
    )
    return calls


def test_state_changes_are_recorded_and_told_once_per_episode(db, configured, told):
    start = timezone.now() - dt.timedelta(minutes=30)
    minute = dt.timedelta(minutes=1)
    timeline = [
        (0, ()),  # healthy
        (1, (HealthSource.SSO_ADMIN,)),  # degraded
        (2, (HealthSource.SSO_ADMIN,)),
        (3, (HealthSource.SSO_ADMIN,)),  # disrupted: told
        (4, ()),  # degraded (recovering)
        (5, (HealthSource.SSO_ADMIN,)),
        (6, (HealthSource.SSO_ADMIN,)),
        (7, (HealthSource.SSO_ADMIN,)),  # disrupted again, same episode: not told again
        (8, ()),
        (9, ()),
        (10, ()),  # the last 3 samples passed: healthy, told
        (11, ()),
    ]
    states = []
    for offset, failing in timeline:
        at = start + offset * minute
        record(at, failing=failing)
        states.append(health.evaluate(now=at).state)
    assert states == [
        HEALTHY, DEGRADED, DEGRADED, DISRUPTED, DEGRADED, DEGRADED, DEGRADED, DISRUPTED,
        DEGRADED, DEGRADED, HEALTHY, HEALTHY,
    ]  # fmt: skip
    assert told == [DISRUPTED, HEALTHY]
    changes = list(HealthStateChange.objects.order_by("at").values_list("state", "notified"))
    assert changes == [
        (HEALTHY, ""), (DEGRADED, ""), (DISRUPTED, "disrupted"), (DEGRADED, ""),
        (DISRUPTED, ""), (DEGRADED, ""), (HEALTHY, "healthy"),
    ]  # fmt: skip
    audited = AuditEvent.objects.filter(action="health.changed").order_by("seq")
    assert [e.payload["to"] for e in audited] == [c[0] for c in changes]
    current = health.current_state(now=start + 11 * minute)
    assert (current.state, current.since) == (HEALTHY, start + 10 * minute)


def test_the_notification_is_queued_on_commit_to_approvers(
    db, configured, approver, approver2, django_capture_on_commit_callbacks, mailoutbox
):
    at = timezone.now()
    for minutes in (2, 1, 0):
        record(at - dt.timedelta(minutes=minutes), failing=(HealthSource.ACCESS_PORTAL,))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert health.evaluate(now=at).state == DISRUPTED
    assert callbacks, "the notification waits for the commit"
    from portal.models import NotificationLog

    log = NotificationLog.objects.get(event="health.changed")
    assert "DISRUPTED" in log.subject
    assert set(log.recipients) == {"approver1@example.com", "approver2@example.com"}


def test_a_quiet_monitor_is_unknown_since_its_last_sample_went_stale(db, configured):
    at = timezone.now() - dt.timedelta(minutes=30)
    record(at)
    health.evaluate(now=at)
    later = at + dt.timedelta(minutes=20)
    state = health.current_state(now=later)
    assert state.state == UNKNOWN
    assert state.since == at + dt.timedelta(seconds=health.FRESH_INTERVALS * POLL)


def test_history_draws_24_hours_of_buckets_and_state_segments(db, configured):
    now = timezone.now()
    record(now - dt.timedelta(hours=2))
    record(now - dt.timedelta(minutes=1), failing=(HealthSource.SSO_ADMIN,))
    HealthStateChange.objects.create(state=HEALTHY, at=now - dt.timedelta(hours=2))
    HealthStateChange.objects.create(state=DEGRADED, at=now - dt.timedelta(minutes=1))
    drawn = health.history(now=now)
    assert [row["source"] for row in drawn["rows"]] == ALL
    sso = next(r for r in drawn["rows"] if r["source"] == HealthSource.SSO_ADMIN)
    assert len(sso["cells"]) == 96
    assert [c["css"] for c in sso["cells"] if c["css"] != "none"] == ["ok", "bad"]
    assert [s["css"] for s in drawn["segments"]] == ["none", "ok", "warn"]


def test_health_never_blocks_declaring_a_disruption(
    db, configured, approver, django_capture_on_commit_callbacks
):
    from federation.failover.services import open_failover

    record(timezone.now())
    assert health.evaluate().state == HEALTHY
    with django_capture_on_commit_callbacks(execute=False):
        failover = open_failover(actor=approver, reason="People cannot sign in", drill=False)
    assert failover.pk
