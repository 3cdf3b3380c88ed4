"""Several processes appending at once leave one valid chain: no fork, no duplicate, no gap."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest

from portal.audit import verify_chain
from portal.models import AuditEvent
from tests.harness import ROOT, _require_real_services

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WRITERS, EACH = 4, 40


def test_concurrent_appends_from_several_processes_keep_one_chain(tmp_path):
    db_url, _ = _require_real_services()
    start = tmp_path / "start"
    env = {**os.environ, "DATABASE_URL": db_url, "PORTAL_VAR_DIR": str(tmp_path)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.audit.append_worker", f"writer-{n}", str(EACH), start],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(WRITERS)
    ]
    start.touch()  # all at once
    for writer in writers:
        _, err = writer.communicate(timeout=180)
        assert writer.returncode == 0, err[-3000:]

    events = list(AuditEvent.objects.order_by("seq"))
    assert len(events) == WRITERS * EACH
    assert [e.seq for e in events] == list(range(1, WRITERS * EACH + 1))
    assert len({e.prev_hash for e in events}) == len(events)  # nobody linked to the same head
    assert verify_chain() is None
    # Each writer's events are in its own order, and the writers did interleave.
    by_writer: dict[str, list[int]] = {}
    for event in events:
        by_writer.setdefault(event.actor_label, []).append(event.payload["i"])
    assert all(order == list(range(EACH)) for order in by_writer.values())
    switches = sum(1 for a, b in itertools.pairwise(events) if a.actor_label != b.actor_label)
    # They really raced (about 155 of 159 neighbours differ on a quiet machine).
    assert switches >= EACH
