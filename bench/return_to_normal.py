"""Benchmark 3, return to normal at scale: close a failover with many active members.

Seeds ``members`` ACTIVE grants spread over ``groups`` emergency groups (rows in
the database, members in the Okta org), then an approver closes the failover
(forced: ``POST /failover/close``). Closing must remove every member, end every
person's Okta sessions and deactivate the federation app.

Asserts: the failover CLOSED, every group empty in Okta, the app INACTIVE,
every grant's removal confirmed and every person's sessions revoked. Reports
the time against the bound the rate limits imply, and the 429s (target: a
handful at most — pace to the limit, do not bounce off it).
"""

from __future__ import annotations

import time
from typing import Any

import requests
from django.utils import timezone

from bench import report
from bench.seed import okta_groups, open_failover, people, plan, setup_django
from bench.stack import DEFAULT_LATENCY_MS, Stack


def _seed_grants(stack: Stack, engineers: list, roles: list, failover_id: int) -> None:
    """One ACTIVE grant per engineer, engineer i in group i % len(roles), as if granted."""
    from requests_app.models import AccessRequest, Status

    ids = {u["login"]: u["id"] for u in stack.okta_state()["users"]}
    now = timezone.now()
    rows = []
    for i, person in enumerate(engineers):
        role = roles[i % len(roles)]
        rows.append(
            AccessRequest(
                requester_id=person.pk,
                role=role,
                failover_id=failover_id,
                justification="incident: the payments API is down, need the console",
                ticket="INC-CLOSE",
                duration_minutes=120,
                status=Status.ACTIVE,
                okta_login=person.email,
                okta_user_id=ids[person.email],
                decided_at=now,
                activated_at=now,
                expires_at=now + timezone.timedelta(minutes=120),
            )
        )
        reply = requests.post(
            f"{stack.okta_url}/__sandbox__/groups/{role.okta_group_id}/users/{person.email}",
            timeout=10,
        )
        reply.raise_for_status()
    AccessRequest.objects.bulk_create(rows)


def run(quick: bool, latency_ms: int = DEFAULT_LATENCY_MS) -> dict[str, Any]:
    members, accounts = (40, 2) if quick else (500, 10)
    # Full size: limits low enough that they, not the portal, set the pace.
    limits = {} if quick else {"groups": 250, "users": 250}
    logins = [f"eng{i:03d}@example.com" for i in range(members)]
    with Stack("return_to_normal", latency_ms=latency_ms, users=logins) as stack:
        setup_django()
        from federation.models import Failover, FailoverStatus
        from portal.core.access import APPROVERS
        from requests_app.models import AccessRequest

        roles = plan(accounts)
        okta_groups(roles)
        engineers = people("eng", members, stack.web_url)
        (approver,) = people("approver", 1, stack.web_url, group=APPROVERS)
        failover_id = open_failover(approver)
        for role in roles:
            role.refresh_from_db()
        _seed_grants(stack, engineers, roles, failover_id)
        # Fresh rate-limit windows (the seeding's calls opened some): the close's first call
        # in each family opens its first window, so the bound below is exact.
        stack.clear_okta_windows()
        stack.set_okta(rate_limits=limits)
        started = time.time()
        reply = approver.api(
            "POST", "/failover/close", json={"force": True, "reason": "benchmark: back to normal"}
        )
        close_request_s = time.time() - started
        assert reply.status_code == 200, reply.text
        deadline = started + (120 if quick else 900)
        while time.time() < deadline:
            closed = Failover.objects.filter(pk=failover_id, status=FailoverStatus.CLOSED).exists()
            open_removals = AccessRequest.objects.filter(membership_removed_at__isnull=True).count()
            if closed and open_removals == 0:
                break
            time.sleep(0.5)
        failover = Failover.objects.get(pk=failover_id)
        last_removal = max(AccessRequest.objects.values_list("membership_removed_at", flat=True))
        state = stack.okta_state()
        calls = stack.okta_calls(started)
    assert failover.status == FailoverStatus.CLOSED, f"failover is {failover.status}"
    assert last_removal is not None, "some removals were never confirmed"
    wanted = {r.okta_group_name for r in roles}
    full = {g["name"]: g["members"] for g in state["groups"] if g["name"] in wanted}
    full = {name: logins_left for name, logins_left in full.items() if logins_left}
    assert not full, f"members left in Okta: {full}"
    assert all(app["status"] == "INACTIVE" for app in state["apps"])
    cleared = {u["login"] for u in state["users"] if u["sessions_cleared"]}
    assert set(logins) <= cleared, f"sessions not ended: {sorted(set(logins) - cleared)[:5]}"

    done_at = max(failover.closed_at.timestamp(), last_removal.timestamp())
    took = done_at - started
    families: dict[str, dict[str, int]] = {}
    for _, _, _, path, status in calls:
        family = path.removeprefix("/api/v1/").split("/")[0]
        counts = families.setdefault(family, {"calls": 0, "429": 0})
        counts["calls"] += 1
        counts["429"] += status == 429
    effective = {"groups": 500, "users": 600, "apps": 100, **limits}
    needed = calls_needed(members, len(roles))
    bound = rate_limit_bound(needed, effective, latency_ms)
    first_call = min((c[0] for c in calls), default=started) - started
    result = {
        "members": members,
        "groups": len(roles),
        "okta_latency_ms": latency_ms,
        "rate_limits_per_min": effective,
        "close_to_done_s": round(took, 2),
        "close_to_failover_closed_s": round(failover.closed_at.timestamp() - started, 2),
        "close_request_s": round(close_request_s, 2),
        "close_to_first_okta_call_s": round(first_call, 2),
        "rate_limit_bound_s": bound,
        "ratio_to_bound": round(took / bound, 2) if bound >= 1 else None,
        "okta_calls_by_family": families,
        "okta_429s": sum(f["429"] for f in families.values()),
        "okta_calls_needed_at_least": needed,
        # Every call, relative to the close (quick size only: small).
        "okta_call_log": [_relative(c, started) for c in calls],
    }
    rows = [
        ("close -> all removed and closed (s)", report.fmt(took), f"bound {bound:.1f} s"),
        ("429s", str(result["okta_429s"]), "target: a handful"),
        ("the close request (POST /failover/close, s)", report.fmt(close_request_s), ""),
        ("close -> first Okta call (s)", report.fmt(first_call), ""),
    ]
    rows += [
        (f"okta {family} calls", str(c["calls"]), f"{c['429']} x 429")
        for family, c in sorted(families.items())
    ]
    print(
        report.table(
            f"return to normal: {members} members in {len(roles)} groups, limits {effective}",
            rows,
            ("measure", "value", ""),
        )
    )
    _picture(calls, started, quick)
    return result


def calls_needed(members: int, groups: int) -> dict[str, int]:
    """The calls Okta must answer at the least, per endpoint family, for a close of
    ``members`` grants (one person each) in ``groups`` emergency groups.

    groups: one DELETE per member, and one listing per emergency group: closing verifies
    in Okta that each group is empty (the only way it finds a member added behind the
    portal's back; ``federation.failover.services.empty_federation``). users: one session
    revocation per person. apps: the deactivation and the check that the app is off.
    """
    return {"groups": members + groups, "users": members, "apps": 2}


def rate_limit_bound(needed: dict[str, int], limits: dict[str, int], latency_ms: int) -> float:
    """The earliest the close can be done: each family is limited on its own (Okta counts
    per family, the calls of different families do not wait for each other), so the bound
    is the slowest family's, not the sum. ``n`` calls at ``limit`` a minute need
    ``ceil(n / limit)`` windows of 60 s; the last window opens ``(n - 1) // limit`` minutes
    after the first call, and its last call takes one latency."""
    return (
        max(((n - 1) // limits[family]) * 60 for family, n in needed.items() if n)
        + latency_ms / 1000
    )


def _relative(call: list, started: float) -> list:
    return [round(call[0] - started, 3), round(call[1] - started, 3), *call[2:]]


def _picture(calls: list, started: float, quick: bool) -> None:
    plt = report.pyplot()
    if plt is None or not calls:
        return
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for family in ("groups", "users", "apps"):
        times = sorted(c[0] - started for c in calls if c[3].startswith(f"/api/v1/{family}"))
        if times:
            ax.step(times, range(1, len(times) + 1), where="post", label=f"{family} calls")
    limited = [c[0] - started for c in calls if c[4] == 429]
    if limited:
        ax.plot(limited, [0] * len(limited), "rx", label="429")
    ax.set_xlabel("seconds since close")
    ax.set_ylabel("Okta calls (cumulative)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(report.png_path("return_to_normal", quick), dpi=80)
    plt.close(fig)
