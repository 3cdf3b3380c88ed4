"""The failover sweep (federation/failover/work.py): the database says which of the
failover's Okta work is due; overdue work is re-sent, work in time is left alone, and a
retry that the sweep superseded gives way."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from federation import tasks as federation_tasks
from federation.failover import work
from federation.models import Failover, FailoverStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(
        "federation.queue.send_on_commit", lambda name, args, **_: calls.append((name, args[0]))
    )
    return calls


def _due(failover: Failover, seconds_ago: float | None) -> None:
    at = None if seconds_ago is None else timezone.now() - dt.timedelta(seconds=seconds_ago)
    Failover.objects.filter(pk=failover.pk).update(work_due_at=at)


def test_an_overdue_activation_is_sent_again(open_failover, sent, settings):
    settings.GRANT_SWEEP_GRACE_SECONDS = 10
    _due(open_failover, 2)
    assert work.resend_overdue_work() == []  # within the grace period: the task may be running
    _due(open_failover, 30)
    assert work.resend_overdue_work() == [open_failover.pk]
    assert sent == [("federation.activate_federation_app", open_failover.pk)]
    # Sending stamps it again: the next sweep leaves it alone.
    assert work.resend_overdue_work() == []


def test_a_closing_failover_is_sent_its_close_and_a_done_one_nothing(open_failover, sent):
    Failover.objects.filter(pk=open_failover.pk).update(app_activated_at=timezone.now())
    _due(open_failover, None)
    assert work.resend_overdue_work() == []  # activated: nothing due
    Failover.objects.filter(pk=open_failover.pk).update(status=FailoverStatus.CLOSING)
    assert work.resend_overdue_work() == [open_failover.pk]
    assert sent == [("federation.close_federation", open_failover.pk)]


def test_a_retry_gives_way_to_the_copy_the_sweep_sent(open_failover):
    _due(open_failover, 0)
    failover = Failover.objects.get(pk=open_failover.pk)
    stamp = failover.work_due_at.isoformat()
    assert not federation_tasks._superseded(failover, stamp)
    assert not federation_tasks._superseded(failover, None)  # a fresh send always runs
    _due(open_failover, -5)
    assert federation_tasks._superseded(Failover.objects.get(pk=open_failover.pk), stamp)
