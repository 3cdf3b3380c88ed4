"""50 grants while the worker is SIGKILLed 10 times at random moments: every grant ends
ACTIVE, none twice, Okta == the database, each within 20 s of a live worker."""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from pathlib import Path

import pytest

from portal.models import AuditEvent
from requests_app.models import AccessRequest, Status
from tests.faults.world import (
    WorkerUptime,
    activation_times,
    assert_invariant,
    file_and_approve,
    prepare,
    sigkill_group,
)
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

GRANTS, KILLS, BOUND = 50, 10, 20.0
FIGURES = Path(__file__).with_name("figures")


def test_50_grants_under_10_worker_sigkills_all_converge(
    processes, on_private_broker, okta_org, approver
):
    rng = random.Random(11)
    uptime = WorkerUptime()
    worker = processes.worker()
    uptime.up_since.append(time.time())
    processes.beat()
    _, people, roles = prepare(okta_org, approver, GRANTS)

    decided: dict[int, float] = {}

    def approve_all() -> None:
        for n, person in enumerate(people):
            req = file_and_approve(person, roles[n % len(roles)], approver)
            decided[req.pk] = time.time()
            time.sleep(rng.uniform(0.05, 0.4))

    approving = threading.Thread(target=approve_all)
    approving.start()
    for _ in range(KILLS):
        time.sleep(rng.uniform(1.0, 5.0))  # a random moment of its life
        sigkill_group(worker)
        uptime.down_at.append(time.time())
        time.sleep(rng.uniform(0.2, 3.0))
        worker = processes.worker(name="worker")
        uptime.up_since.append(time.time())
    approving.join(timeout=120)
    assert len(decided) == GRANTS

    wait_for(
        lambda: AccessRequest.objects.filter(status=Status.ACTIVE).count() == GRANTS,
        timeout=60,
        interval=0.5,
        what="every grant to become active",
    )
    active_at = activation_times(list(decided))
    # Seconds of a live (ready) worker between the approval and the grant being active.
    latencies = {
        pk: uptime.live_seconds(decided_at, active_at[pk]) for pk, decided_at in decided.items()
    }
    assert max(latencies.values()) <= BOUND, sorted(latencies.values())[-5:]
    # None twice: one activation per grant in the record.
    activations = AuditEvent.objects.filter(action="request.active").values_list(
        "target_id", flat=True
    )
    assert sorted(activations) == sorted(str(pk) for pk in decided)
    assert_invariant(okta_org, roles)
    _write_figures("worker_sigkill", list(latencies.values()), lost=0, duplicated=0)


def _write_figures(name: str, latencies: list[float], **counts: int) -> None:
    FIGURES.mkdir(exist_ok=True)
    figures = {
        **counts,
        "grants": len(latencies),
        "p50_s": round(statistics.median(latencies), 1),
        "max_s": round(max(latencies), 1),
    }
    (FIGURES / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(name, figures)
