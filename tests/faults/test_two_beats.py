"""Two beats started by mistake: one schedules, the other stands by; each periodic task
runs once per period. When the first beat dies the standby takes over."""

from __future__ import annotations

import re
import time

import pytest

from tests.faults.conftest import log_text
from tests.harness import stop_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _sent(beat, task: str) -> list[str]:
    return re.findall(rf"Sending due task {task} ", log_text(beat))


def test_a_second_beat_schedules_nothing_until_the_first_dies(
    processes, on_private_broker, okta_org
):
    processes.worker()
    first = processes.beat("beat1", EXPIRY_SWEEP_SECONDS="2")
    wait_for(lambda: "holds the beat lock" in log_text(first), what="the first beat's lock")
    second = processes.beat("beat2", EXPIRY_SWEEP_SECONDS="2")
    wait_for(lambda: "standing by" in log_text(second), what="the second beat to stand by")
    start = len(_sent(first, "expire-due-grants"))
    time.sleep(10)
    runs = len(_sent(first, "expire-due-grants")) - start
    # Once per 2 s period over 10 s (beat's own timing: 4 to 6), and none by the standby.
    assert 4 <= runs <= 6, runs
    assert _sent(second, "expire-due-grants") == []

    stop_process(first)
    wait_for(
        lambda: "holds the beat lock" in log_text(second),
        timeout=20,
        what="the standby beat to take over",
    )
    wait_for(lambda: _sent(second, "expire-due-grants"), timeout=10, what="it to schedule")
