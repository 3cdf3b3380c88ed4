"""Benchmark the auditor pages on 100,000 access requests in PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python \
        bench/bench_auditor_history.py [--requests 100000] [--runs 7] [--keepdb]

Creates (and afterwards drops, unless --keepdb) the database ``test_<name>``,
migrates it, seeds a plan, 1,000 people, 200 closed failovers (a third drills)
with their requests, approvals and a valid audit chain (about 3 events per
request), then times each page through Django's test client (view, queries and
template) and prints the median and the worst of ``--runs`` runs. It also
streams the full exports (time, rows, peak Python memory) and verifies the chain.

``--drop-indexes`` removes the indexes of requests_app's ``auditor_indexes``
migration first, to show what they buy (use it without ``--keepdb``: they stay
dropped).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

AUDITOR_INDEXES = [
    "req_activated_idx",
    "req_ended_idx",
    "req_justification_trgm",
    "req_ticket_trgm",
]

# Words of the seeded justifications (each request gets 12 of them and its own "case N").
WORDS = ["payments", "database", "latency", "outage", "customers", "checkout", "logs"]
WORDS += ["cloudwatch", "lambda", "queue", "deploy", "rollback", "incident", "kafka"]
WORDS += ["redis", "throttling", "errors", "timeout", "region", "failover"]


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keepdb", action="store_true", help="Reuse / keep the database.")
    parser.add_argument("--drop-indexes", action="store_true")
    parser.add_argument("--skip-exports", action="store_true")
    return parser.parse_args()


def _without_auto_now(*fields):
    """Seed historic timestamps: auto_now_add would overwrite them with now."""
    for f in fields:
        f.auto_now_add = False


def seed(n_requests: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import transaction

    from federation.models import Failover, FailoverStatus
    from portal.audit import GENESIS_HASH
    from portal.core.access import APPROVERS, AUDITORS
    from portal.models import AuditEvent, canonical_fields, canonical_json
    from requests_app.models import AccessRequest, Approval, Status
    from tests.conftest import build_plan

    rng = random.Random(5)
    User = get_user_model()
    _without_auto_now(
        AccessRequest._meta.get_field("created_at"),
        Approval._meta.get_field("created_at"),
        Failover._meta.get_field("opened_at"),
    )
    plan = build_plan()
    roles = list(plan.roles.values())
    people = User.objects.bulk_create(
        [User(username=f"user{i:04d}", email=f"user{i:04d}@example.com") for i in range(1000)]
    )
    approvers = User.objects.bulk_create(
        [User(username=f"approver{i}", email=f"approver{i}@example.com") for i in range(10)]
    )
    Group.objects.get_or_create(name=APPROVERS)[0].user_set.add(*approvers)
    auditor = User.objects.create(username="auditor", email="auditor@example.com")
    auditor.groups.add(Group.objects.get_or_create(name=AUDITORS)[0])

    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    n_failovers = 200
    failovers = []
    for i in range(n_failovers):
        opened = start + dt.timedelta(days=i * 3.6)
        failovers.append(
            Failover(
                status=FailoverStatus.CLOSED,
                is_drill=i % 3 == 0,
                reason=f"Identity Center disruption {i}",
                opened_by=approvers[i % 10],
                opened_at=opened,
                app_activated_at=opened + dt.timedelta(minutes=1),
                close_requested_by=approvers[(i + 1) % 10],
                close_requested_at=opened + dt.timedelta(hours=20),
                app_deactivated_at=opened + dt.timedelta(hours=20, minutes=2),
                groups_emptied_at=opened + dt.timedelta(hours=20, minutes=2),
                closed_at=opened + dt.timedelta(hours=20, minutes=2),
            )
        )
    failovers = Failover.objects.bulk_create(failovers)

    statuses = [
        (Status.EXPIRED, 60),
        (Status.REVOKED, 10),
        (Status.DENIED, 10),
        (Status.LAPSED, 8),
        (Status.CANCELLED, 7),
        (Status.FAILED, 5),
    ]
    population = [s for s, weight in statuses for _ in range(weight)]
    requests = []
    for i in range(n_requests):
        failover = failovers[i * n_failovers // n_requests]
        filed = failover.opened_at + dt.timedelta(minutes=rng.randint(2, 1100))
        status = rng.choice(population)
        who = rng.choice(people)
        role = rng.choice(roles)
        minutes = rng.choice([30, 60, 120])
        req = AccessRequest(
            requester=who,
            role=role,
            failover=failover,
            justification=" ".join(rng.choices(WORDS, k=12)) + f" case {i}",
            ticket=f"INC-{100000 + i}",
            duration_minutes=minutes,
            status=status,
            okta_login=who.email,
            created_at=filed,
        )
        if status not in (Status.LAPSED, Status.CANCELLED):
            req.decided_at = filed + dt.timedelta(minutes=3)
            req.decided_by = rng.choice(approvers)
        if status in (Status.EXPIRED, Status.REVOKED):
            req.activated_at = filed + dt.timedelta(minutes=4)
            req.expires_at = req.activated_at + dt.timedelta(minutes=minutes)
            req.ended_at = req.expires_at if status == Status.EXPIRED else req.activated_at
            req.membership_removed_at = req.ended_at + dt.timedelta(seconds=5)
        elif status in (Status.LAPSED, Status.CANCELLED, Status.DENIED, Status.FAILED):
            req.ended_at = filed + dt.timedelta(minutes=5)
            if status == Status.FAILED:
                # Its clean-up at Okta long done: without this the grant sweep re-sent a
                # removal for each of ~5,000 failed grants while bench pages measured.
                req.membership_removed_at = req.ended_at + dt.timedelta(seconds=5)
        requests.append(req)
    with transaction.atomic():
        requests = AccessRequest.objects.bulk_create(requests, batch_size=5000)
        approvals = []
        for req in requests:
            if req.status in (Status.EXPIRED, Status.REVOKED, Status.FAILED):
                for n in range(req.role.level.approvals_required):
                    approvals.append(
                        Approval(
                            request=req,
                            approver=approvers[(req.pk + n) % 10],
                            comment="ok",
                            created_at=req.created_at + dt.timedelta(minutes=2 + n),
                        )
                    )
        Approval.objects.bulk_create(approvals, batch_size=5000)

    # A valid chain: filed, decided, ended per request, in time order.
    raw = []
    for req in requests:
        raw.append(
            (req.created_at, "request.filed", req.requester_id, req.pk, {"ticket": req.ticket})
        )
        if req.decided_at:
            raw.append((req.decided_at, f"request.{req.status}", req.decided_by_id, req.pk, {}))
        if req.ended_at and req.status != Status.DENIED:
            raw.append((req.ended_at, f"request.ended.{req.status}", None, req.pk, {}))
    raw.sort(key=lambda r: r[0])
    labels = {u.pk: u.username for u in [*people, *approvers]}
    prev, events = GENESIS_HASH, []
    with transaction.atomic():
        for seq, (when, action, actor_id, target_id, payload) in enumerate(raw, start=1):
            fields = canonical_fields(
                seq=seq,
                created_at=when,
                actor_id=actor_id,
                actor_label=labels.get(actor_id, "worker"),
                action=action,
                target_type="accessrequest",
                target_id=str(target_id),
                payload=payload,
                client_ip=None,
                prev_hash=prev,
            )
            digest = hashlib.sha256(canonical_json(fields)).hexdigest()
            events.append(
                AuditEvent(
                    seq=seq,
                    created_at=when,
                    actor_id=actor_id,
                    actor_label=fields["actor"],
                    action=action,
                    target_type="accessrequest",
                    target_id=str(target_id),
                    payload=payload,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
            if len(events) == 5000:
                AuditEvent.objects.bulk_create(events)
                events = []
        AuditEvent.objects.bulk_create(events)
    return {
        "auditor": auditor,
        "person": people[123],
        "account": plan.accounts["prod-data"],
        "level": plan.levels["Ops"],
        "failover": failovers[57],
        "events": len(raw),
    }


def _time(client, url: str, runs: int) -> tuple[float, float, float, int, int]:
    """Median and worst wall time of the page (ms), median SQL time, queries, status."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings, sql = [], []
    status = queries = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        sql.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
        status, queries = response.status_code, len(captured.captured_queries)
    return statistics.median(timings), max(timings), statistics.median(sql), queries, status


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _stream(client, url: str) -> tuple[float, int, float, float]:
    """Seconds, lines, the process's peak RSS growth (MB) while streaming, and RSS before."""
    # Reset the peak ("high water mark") so it measures this export only (Linux).
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _peak_rss_mb()
    started = time.perf_counter()
    response = client.get(url)
    lines = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    return elapsed, lines, _peak_rss_mb() - before, before


def main() -> None:
    args = _args()
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from portal.audit import integrity

    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database (the benchmark creates test_<name>).")
    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, keepdb=args.keepdb)
    print(f"database {name}")
    try:
        from portal.models import AuditEvent
        from requests_app.models import AccessRequest

        if AccessRequest.objects.count() < args.requests:
            started = time.perf_counter()
            seeded = seed(args.requests)
            print(
                f"seeded {args.requests} requests, {seeded['events']} events in "
                f"{time.perf_counter() - started:.0f}s"
            )
        from django.contrib.auth import get_user_model

        from bench.seed import second_factor
        from federation.models import Failover, Level, WorkloadAccount

        with connection.cursor() as cursor:
            # As autovacuum would: statistics, and the GIN indexes' pending lists merged.
            cursor.execute("VACUUM ANALYZE")
            if args.drop_indexes:
                for index in AUDITOR_INDEXES:
                    cursor.execute(f"DROP INDEX IF EXISTS {index}")
                print("dropped the auditor indexes")
        auditor = get_user_model().objects.get(username="auditor")
        person = get_user_model().objects.get(username="user0123")
        account = WorkloadAccount.objects.get(name="prod-data")
        level = Level.objects.get(name="Ops")
        failover = Failover.objects.order_by("pk")[57]
        print(f"{AccessRequest.objects.count()} requests, {AuditEvent.objects.count()} events")

        second_factor(auditor)
        client = Client()
        client.force_login(auditor)
        pages = {
            "no filter, newest first": "/auditor/",
            "page 200 (offset 4975)": "/auditor/?page=200",
            "status=expired": "/auditor/?status=expired",
            "person (exact username)": f"/auditor/?person={person.username}",
            "person (prefix)": "/auditor/?person=user01",
            "account + level": f"/auditor/?account={account.pk}&level={level.pk}",
            "failover": f"/auditor/?failover={failover.pk}",
            "drills only": "/auditor/?kind=drill",
            "filed in one month": "/auditor/?date_from=2024-06-01&date_to=2024-06-30",
            "held access in one week": (
                "/auditor/?date_from=2024-06-01&date_to=2024-06-07&dates=held"
            ),
            "free text, common word": "/auditor/?q=kafka",
            "free text, rare (one row)": "/auditor/?q=case%2054321",
            "ticket": "/auditor/?q=INC-154321",
            "sort by person": "/auditor/?sort=person",
            "sort by granted, newest": "/auditor/?sort=-granted",
            "sort by account": "/auditor/?sort=account",
            "sort by ended, newest": "/auditor/?sort=-ended",
            "combined (acct+status+dates+sort)": (
                f"/auditor/?account={account.pk}&status=expired&status=revoked"
                "&date_from=2024-03-01&date_to=2024-09-30&sort=-granted"
            ),
            "person page": f"/auditor/people/{person.pk}/",
            "account page": f"/auditor/accounts/{account.pk}/",
            "failover report (federation's)": f"/failover/{failover.pk}/report/",
            "audit log page": "/audit/",
        }
        print(f"\n{'page':36} {'median ms':>10} {'worst ms':>9} {'SQL ms':>8} {'queries':>8}")
        for label, url in pages.items():
            median, worst, sql, queries, status = _time(client, url, args.runs)
            if status != 200:  # a redirect or an error page is not the page
                sys.exit(f"{label}: {url} answered HTTP {status}")
            print(f"{label:36} {median:10.1f} {worst:9.1f} {sql:8.1f} {queries:8d}")

        if not args.skip_exports:
            print(f"\n{'export':40} {'seconds':>10} {'lines':>10} {'+peak RSS MB':>13}")
            for label, url in {
                "requests CSV (all)": "/auditor/requests.csv",
                "requests JSONL (all)": "/auditor/requests.jsonl",
                "audit log JSONL (all)": "/auditor/audit.jsonl",
            }.items():
                seconds, lines, growth, before = _stream(client, url)
                print(f"{label:40} {seconds:10.1f} {lines:10d} {growth:13.1f}", end="")
                print(f"  (RSS before {before:.0f} MB)")
            started = time.perf_counter()
            result = integrity.check(use_checkpoints=False)
            print(
                f"\nverify chain: {result.events} events in {time.perf_counter() - started:.1f}s "
                f"({'intact' if result.intact else result.first})"
            )
    finally:
        if not args.keepdb:
            connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
