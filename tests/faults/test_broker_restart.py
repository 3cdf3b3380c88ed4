"""The worker, beat and web survive a Redis restart (issue 11: Celery 5.7.0's consumer died
with AttributeError 'hostname' while restoring unacknowledged messages)."""

from __future__ import annotations

import time
import uuid

import pytest

from portal.celery import app
from tests.faults.conftest import log_text
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _ran(worker, task_id: str) -> bool:
    return f"[{task_id}] succeeded" in log_text(worker)


def test_worker_keeps_consuming_after_redis_restarts_under_it(
    processes, private_redis, on_private_broker
):
    worker = processes.worker()
    # Messages the worker holds unacknowledged when the broker goes: ETA tasks (as a
    # retried grant task is) are kept by the worker until due.
    for _ in range(3):
        app.send_task("requests_app.expire_due_grants", countdown=120)
    wait_for(lambda: log_text(worker).count("received") >= 3, what="the worker to take them")

    for _ in range(2):
        private_redis.restart(down_seconds=2)
        wait_for(
            lambda: log_text(worker).count("Connected to redis") >= 2,
            timeout=30,
            what="the worker to reconnect",
        )
        time.sleep(1)
        assert worker.poll() is None, log_text(worker)[-3000:]
        assert "Unrecoverable error" not in log_text(worker)
        task_id = str(uuid.uuid4())
        app.send_task("requests_app.expire_due_grants", task_id=task_id)
        wait_for(lambda t=task_id: _ran(worker, t), timeout=30, what="a task after the restart")


def test_beat_keeps_scheduling_after_redis_restarts(processes, private_redis, on_private_broker):
    worker = processes.worker()
    beat = processes.beat(EXPIRY_SWEEP_SECONDS="1")
    wait_for(lambda: "expire_due_grants" in log_text(worker), what="a scheduled run")
    private_redis.kill()
    time.sleep(4)  # beat tries to send into the outage
    private_redis.start()
    mark = len(log_text(worker))
    wait_for(
        lambda: (
            "requests_app.expire_due_grants" in log_text(worker)[mark:]
            and "succeeded" in log_text(worker)[mark:]
        ),
        timeout=30,
        what="beat to schedule again after the restart",
    )
    assert beat.poll() is None, log_text(beat)[-3000:]
    assert worker.poll() is None
