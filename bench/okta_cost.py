"""Benchmark 5, the Okta cost of staying correct: Okta calls per hour spent by beat.

50 emergency groups (25 accounts x RO/Ops). The stack runs its production beat
schedule sped up ``SPEED`` times (reconciler every 60 s -> 6 s, System Log poll
every 30 s -> 3 s, health poll every 60 s -> 6 s); calls counted over a window
are scaled back to calls per hour of the real schedule. Once in normal times
(no failover), once during a failover (a drill, with active members).

Target (issue 13): <= 250 calls/hour in normal times, drift still repaired
within one poll period. Today the reconciler lists every group every minute.
"""

from __future__ import annotations

import re
import time
from typing import Any

from bench import report
from bench.return_to_normal import _seed_grants
from bench.seed import okta_groups, open_failover, people, plan, setup_django
from bench.stack import DEFAULT_LATENCY_MS, Stack

SPEED = 10
GROUPS = 50
KINDS = [
    ("list group members", re.compile(r"^GET /api/v1/groups/[^/]+/users$")),
    ("find group (search)", re.compile(r"^GET /api/v1/groups$")),
    ("System Log", re.compile(r"^GET /api/v1/logs$")),
    ("apps", re.compile(r"^\w+ /api/v1/apps")),
    ("users", re.compile(r"^\w+ /api/v1/users")),
    ("membership changes", re.compile(r"^(PUT|DELETE) /api/v1/groups/[^/]+/users/")),
]


def _per_hour(calls: list, window: float) -> dict[str, float]:
    scale = 3600 / window / SPEED
    found: dict[str, float] = {}
    for call in calls:
        line = f"{call[2]} {call[3]}"
        kind = next((name for name, pattern in KINDS if pattern.match(line)), "other")
        found[kind] = found.get(kind, 0) + scale
    found = {k: round(v) for k, v in sorted(found.items())}
    found["total"] = sum(found.values())
    return found


def run(quick: bool, latency_ms: int = DEFAULT_LATENCY_MS) -> dict[str, Any]:
    window = 12.0 if quick else 120.0
    members = 20
    logins = [f"eng{i:03d}@example.com" for i in range(members)]
    env = {
        "RECONCILE_SECONDS": str(60 // SPEED),
        "SYSTEM_LOG_POLL_SECONDS": str(30 // SPEED),
        "HEALTH_POLL_SECONDS": str(60 // SPEED),
    }
    with Stack("okta_cost", latency_ms=latency_ms, users=logins, env=env) as stack:
        setup_django()
        from portal.core.access import APPROVERS

        roles = plan(GROUPS // 2)
        okta_groups(roles)
        engineers = people("eng", members, stack.web_url)
        (approver,) = people("approver", 1, stack.web_url, group=APPROVERS)
        # Counts, not times: no latency, so sped-up runs never overlap.
        stack.set_okta(latency_ms=0)
        time.sleep(60 / SPEED)  # one reconciler period: the first runs are under way
        since = time.time()
        time.sleep(window)
        normal = _per_hour(stack.okta_calls(since), window)

        failover_id = open_failover(approver)
        for role in roles:
            role.refresh_from_db()
        _seed_grants(stack, engineers, roles, failover_id)
        time.sleep(60 / SPEED)
        since = time.time()
        time.sleep(window)
        during = _per_hour(stack.okta_calls(since), window)
    assert normal["total"] > 0 and during["total"] > 0, "beat made no Okta calls"
    result = {
        "groups": GROUPS,
        "speed_up": SPEED,
        "window_s": window,
        "target_normal_per_hour": 250,
        "calls_per_hour_normal": normal,
        "calls_per_hour_failover": during,
        "ratio_to_target": round(normal["total"] / 250, 1),
    }
    kinds = sorted(set(normal) | set(during), key=lambda k: (k == "total", k))
    print(
        report.table(
            f"Okta calls per hour spent by beat, {GROUPS} emergency groups (target normal <= 250)",
            [(k, str(normal.get(k, 0)), str(during.get(k, 0))) for k in kinds],
            ("calls", "normal times", "during a failover"),
        )
    )
    return result
