"""Redis killed and restarted empty (no persistence) during provisioning and during
revocation: the worker keeps running, nothing is lost, everything converges within 20 s
of Redis being back."""

from __future__ import annotations

import threading
import time

import pytest

from requests_app import services
from requests_app.models import AccessRequest, Status
from tests.faults.conftest import log_text
from tests.faults.test_worker_kill import _write_figures
from tests.faults.world import assert_invariant, file_and_approve, prepare
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

GRANTS, BOUND = 20, 20.0


def _restart_redis_while(private_redis, action) -> float:
    """Run ``action`` in a thread; kill Redis in the middle of it, restart it empty 2 s
    later. Returns the moment Redis answered again."""
    worker_thread = threading.Thread(target=action)
    worker_thread.start()
    time.sleep(1.0)
    private_redis.kill()
    time.sleep(2.0)
    private_redis.start()
    back = time.time()
    worker_thread.join(timeout=120)
    return back


def test_redis_restarted_empty_during_provisioning_and_revocation(
    processes, private_redis, on_private_broker, okta_org, approver
):
    worker = processes.worker()
    processes.beat()
    _, people, roles = prepare(okta_org, approver, GRANTS)
    granted: list[int] = []

    def approve_all() -> None:
        for n, person in enumerate(people):
            granted.append(file_and_approve(person, roles[n % len(roles)], approver).pk)
            time.sleep(0.1)

    back = _restart_redis_while(private_redis, approve_all)
    wait_for(
        lambda: AccessRequest.objects.filter(status=Status.ACTIVE).count() == GRANTS,
        timeout=60,
        interval=0.2,
        what="every grant to become active after the Redis restart",
    )
    provisioned = time.time() - back
    assert provisioned <= BOUND, provisioned
    assert worker.poll() is None and "Unrecoverable error" not in log_text(worker)
    assert_invariant(okta_org, roles)

    def revoke_all() -> None:
        for pk in granted:
            services.revoke(AccessRequest.objects.get(pk=pk), actor=approver, reason="done")
            time.sleep(0.1)

    back = _restart_redis_while(private_redis, revoke_all)
    wait_for(
        lambda: (
            not AccessRequest.objects.filter(
                status=Status.REVOKED, membership_removed_at__isnull=True
            ).exists()
        ),
        timeout=60,
        interval=0.2,
        what="every membership to be removed after the Redis restart",
    )
    removed = time.time() - back
    assert removed <= BOUND, removed
    assert worker.poll() is None and "Unrecoverable error" not in log_text(worker)
    assert_invariant(okta_org, roles)
    _write_figures("redis_restart", [provisioned, removed], lost=0, duplicated=0)
