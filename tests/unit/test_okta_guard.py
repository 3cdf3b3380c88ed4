"""Okta's circuit breaker and rate-limit pacer (federation/idp/guard.py) as units: the state
machines on a mock clock, the shared store on the real Redis, and the grant tasks' retry
policy around them (paused work does not burn retries)."""

from __future__ import annotations

import os
import threading
import time
from email.utils import formatdate

import pytest

from federation.idp import IdpRateLimited, IdpRetryableError, IdpUnavailable, guard
from requests_app import tasks
from requests_app.models import AccessRequest, Status
from tests.unit.test_grant_tasks import approved, on_commit_tasks  # noqa: F401 -- fixtures

REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
CONFIG = guard.CircuitConfig(failures=3, cooldown=10.0, probe_timeout=5.0)


class Circuit:
    """The circuit's state machine driven by hand, as the store would apply it."""

    def __init__(self) -> None:
        self.state: guard.State | None = None

    def before(self, now: float) -> guard.Decision:
        self.state, decision = guard.circuit_before(self.state, now, CONFIG)
        return decision

    def fail(self, now: float) -> str:
        self.state, outcome = guard.circuit_failed(self.state, now, "503", CONFIG)
        return outcome

    def succeed(self, now: float) -> guard.State | None:
        self.state, episode = guard.circuit_succeeded(self.state, now)
        return episode

    def kind(self, now: float) -> str:
        return guard.describe_circuit(self.state, now, CONFIG).state


def test_circuit_opens_after_n_consecutive_failures_and_remembers_since_when():
    circuit = Circuit()
    assert circuit.fail(100.0) == "counted"
    assert circuit.fail(101.0) == "counted"
    assert circuit.kind(101.0) == guard.CLOSED
    assert circuit.fail(102.0) == "opened"
    described = guard.describe_circuit(circuit.state, 103.0, CONFIG)
    assert described.state == guard.OPEN and described.failures == 3
    assert described.since.timestamp() == 100.0  # the first failure of the streak
    decision = circuit.before(105.0)
    assert not decision.go and decision.retry_after == pytest.approx(7.0)


def test_a_success_in_between_resets_the_count():
    circuit = Circuit()
    circuit.fail(1.0)
    circuit.fail(2.0)
    assert circuit.succeed(3.0) is None  # not open: no episode to report
    assert circuit.state is None
    assert circuit.fail(4.0) == "counted"


def test_half_open_lets_one_probe_through_and_a_failed_probe_reopens():
    circuit = Circuit()
    for t in (0.0, 1.0, 2.0):
        circuit.fail(t)
    assert circuit.kind(12.5) == guard.HALF_OPEN
    probe = circuit.before(12.5)
    assert probe.go and probe.probe
    other = circuit.before(12.6)  # a second caller while the probe is out
    assert not other.go and other.retry_after == pytest.approx(4.9)
    assert circuit.fail(13.0) == "still open"  # no second "opened": one episode
    assert circuit.kind(13.0) == guard.OPEN
    assert not circuit.before(20.0).go  # a fresh cool-down from the failed probe
    assert circuit.before(23.5).probe


def test_a_stuck_probe_frees_its_slot_after_the_probe_timeout():
    circuit = Circuit()
    for t in (0.0, 1.0, 2.0):
        circuit.fail(t)
    assert circuit.before(12.0).probe
    assert not circuit.before(16.0).go
    assert circuit.before(17.5).probe


def test_a_successful_probe_closes_the_circuit_once():
    circuit = Circuit()
    for t in (0.0, 1.0, 2.0):
        circuit.fail(t)
    assert circuit.before(12.0).probe
    episode = circuit.succeed(12.2)
    assert episode is not None and episode["since"] == 0.0 and episode["closed_at"] == 12.2
    assert circuit.kind(12.3) == guard.CLOSED and circuit.before(12.3).go
    assert circuit.succeed(12.4) is None  # a second success reports nothing


# --- the pacer ---------------------------------------------------------------------------


def test_pacer_lets_calls_through_until_okta_has_told_it_a_limit():
    assert guard.pace_take(None, 0.0) == (None, 0.0)


def test_pacer_spends_the_window_then_waits_for_the_reset():
    state, _ = guard.pace_observe(None, 0.0, limit=20, remaining=3, reset=60.0, limited=False)
    waits = []
    for t in range(5):
        state, wait = guard.pace_take(state, float(t))
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.0, 57.0, 56.0]
    # After the reset a fresh window of `limit` calls, until Okta tells its real reset.
    state, wait = guard.pace_take(state, 61.0)
    assert wait == 0.0 and state["tokens"] == 19 and state["estimated"]
    state, _ = guard.pace_observe(state, 61.2, 20, 19, reset=121.0, limited=False)
    assert state["reset"] == 121.0 and not state["estimated"]


def test_pacer_takes_the_lower_of_its_count_and_okta_remaining():
    state, _ = guard.pace_observe(None, 0.0, 100, 50, reset=60.0, limited=False)
    state, _ = guard.pace_take(state, 1.0)  # 49 left by our count
    state, _ = guard.pace_observe(state, 1.1, 100, 10, reset=60.0, limited=False)  # others use it
    assert state["tokens"] == 10
    state, _ = guard.pace_observe(state, 1.2, 100, 30, reset=60.0, limited=False)  # older answer
    assert state["tokens"] == 10


def test_a_429_empties_the_window_until_its_reset():
    state, _ = guard.pace_observe(None, 0.0, 100, 50, reset=60.0, limited=False)
    state, _ = guard.pace_observe(state, 1.0, 100, 5, reset=60.0, limited=True)
    assert guard.pace_take(state, 2.0)[1] == 58.0


def test_background_work_yields_the_window_to_grant_work():
    state, _ = guard.pace_observe(None, 0.0, limit=10, remaining=10, reset=60.0, limited=False)
    # The reconciler may use the first half of a quiet window only.
    takes = []
    for t in range(6):
        state, wait = guard.pace_take(state, float(t), background=True)
        takes.append(wait == 0.0)
    assert takes == [True, True, True, True, True, False]
    # Grant work spends the rest and has to wait: the window is contended ...
    for t in range(6, 12):
        state, wait = guard.pace_take(state, float(t))
    assert wait == 49.0
    # ... so background work takes nothing from the next window either (the deferred grant
    # work fills it), and gets it back in the one after.
    state, wait = guard.pace_take(state, 61.0, background=True)
    assert wait > 0 and state["tokens"] == 10
    state, wait = guard.pace_take(state, 125.0, background=True)
    assert wait == 0.0


def test_answers_from_an_ended_window_are_ignored():
    state, _ = guard.pace_observe(None, 0.0, 100, 0, reset=60.0, limited=False)
    state, _ = guard.pace_take(state, 61.0)  # a new (estimated) window
    kept = dict(state)
    state, _ = guard.pace_observe(state, 61.5, 100, 0, reset=60.0, limited=True)
    assert state == kept


def test_the_reset_is_read_against_oktas_date_not_our_clock():
    # Okta's clock is 30 s ahead: its reset 10 s after its Date is 10 s from our now.
    okta_now = 1_000_030.0
    headers = {
        "X-Rate-Limit-Limit": "20",
        "X-Rate-Limit-Remaining": "0",
        "X-Rate-Limit-Reset": str(int(okta_now + 10)),
        "Date": formatdate(okta_now, usegmt=True),
    }
    assert guard.rate_headers(headers, 1_000_000.0) == (20, 0, 1_000_010.0)
    assert guard.rate_headers({"Date": "x"}, 0.0) is None


def test_family_of_an_okta_url():
    assert guard.family_of("https://x.okta.com/api/v1/groups/00g1/users/00u2") == "groups"
    assert guard.family_of("https://x.okta.com/api/v1/users/me/sessions") == "users"
    assert guard.family_of("https://x.okta.com/oauth2/v1/token") == "default"


# --- the store, shared by processes through Redis -------------------------------------------


@pytest.fixture
def redis_store():
    store = guard.Store(REDIS, f"okta-guard-test:{os.getpid()}:")
    store.clear()
    yield store
    store.clear()


def test_the_shared_store_never_hands_out_more_calls_than_the_window_has(redis_store):
    redis_store.change(
        "rate:groups", lambda s: guard.pace_observe(s, 0.0, 100, 50, 1e12, limited=False)
    )
    granted = []

    def caller() -> None:
        # Two "processes": each its own Store (own connections) on the same keys.
        mine = guard.Store(REDIS, redis_store.prefix)
        for _ in range(20):
            if mine.change("rate:groups", lambda s: guard.pace_take(s, 1.0)) == 0.0:
                granted.append(1)

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 50


def test_the_process_store_works_without_redis():
    store = guard.Store("filesystem://", "x:")
    assert store.change("k", lambda s: ({"n": 1}, "made")) == "made"
    assert store.get("k") == {"n": 1}
    store.change("k", lambda s: (None, None))
    assert store.get("k") is None


# --- the tasks: paused, not failed -------------------------------------------------------


@pytest.mark.django_db
def test_a_grant_paused_by_the_open_circuit_does_not_burn_its_retries(
    approved,  # noqa: F811
    fake_idp,
    settings,
    on_commit_tasks,  # noqa: F811
):
    settings.GRANT_TASK_BACKOFF_BASE_SECONDS = 0
    settings.GRANT_TASK_MAX_RETRIES = 2
    paused = IdpUnavailable("Okta unreachable", retry_after=0.0)
    fake_idp.fail_next("add_group_member", paused, times=6)
    fake_idp.fail_next("add_group_member", IdpRetryableError("503", status=503), times=2)
    tasks.provision_grant.apply(args=[approved.pk])
    approved.refresh_from_db()
    assert approved.status == Status.ACTIVE
    # One line for the whole pause ("Okta is unreachable ..."), one per real failure.
    assert approved.provisioning_attempts == 3


@pytest.mark.django_db
def test_a_grant_paced_to_the_rate_limit_is_not_a_failure(
    approved,  # noqa: F811
    fake_idp,
    settings,
    on_commit_tasks,  # noqa: F811
):
    settings.GRANT_TASK_MAX_RETRIES = 1
    fake_idp.fail_next("add_group_member", IdpRateLimited("paced", retry_after=0.0), times=3)
    fake_idp.fail_next(
        "add_group_member", IdpRetryableError("429", status=429, retry_after=0.0), times=3
    )
    tasks.provision_grant.apply(args=[approved.pk])
    approved.refresh_from_db()
    assert approved.status == Status.ACTIVE and approved.provisioning_attempts == 0


@pytest.mark.django_db
def test_removals_are_retried_past_the_bound(
    approved,  # noqa: F811
    fake_idp,
    settings,
    monkeypatch,
    on_commit_tasks,  # noqa: F811
):
    settings.GRANT_TASK_BACKOFF_BASE_SECONDS = 0
    settings.GRANT_TASK_MAX_RETRIES = 2
    monkeypatch.setattr("requests_app.queue.deprovision_grant", lambda *a: None)
    tasks.provision_grant.apply(args=[approved.pk])
    AccessRequest.objects.filter(pk=approved.pk).update(status=Status.REVOKED)
    fake_idp.fail_next("remove_group_member", IdpRetryableError("503", status=503), times=6)
    tasks.deprovision_grant.apply(args=[approved.pk])
    approved.refresh_from_db()
    assert approved.membership_removed_at is not None
    assert fake_idp.members_of(approved.role.okta_group_name) == []


def test_without_redis_calls_go_through_unguarded_and_fast(settings, monkeypatch):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    monkeypatch.setattr(guard, "_redis_down_until", 0.0)
    assert guard.before_call().go
    started = time.monotonic()
    for _ in range(20):
        assert guard.pace("groups") == 0.0
        assert guard.before_call().go
    assert time.monotonic() - started < 1  # no connection attempt per call
    assert guard.circuit_state().state == guard.CLOSED


def test_family_limit_is_what_okta_last_said(redis_store, monkeypatch):
    monkeypatch.setattr(guard, "store", lambda: redis_store)
    assert guard.family_limit("groups") is None  # nothing heard from Okta yet
    guard.observe(
        "groups",
        204,
        {"X-Rate-Limit-Limit": "250", "X-Rate-Limit-Remaining": "249",
         "X-Rate-Limit-Reset": str(int(time.time()) + 60)},
    )  # fmt: skip
    assert guard.family_limit("groups") == 250
    assert guard.family_limit("users") is None
