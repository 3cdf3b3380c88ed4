"""Benchmark 4, pages at scale: years of history, 20 people using the portal at once.

Seeds ``requests`` closed requests with their approvals and a valid audit chain
(bench/bench_auditor_history.py's generator, bulk_create), topped up with
filler events to ``events`` audit events; then 20 locust users (bench/locustfile.py,
headless, a process of its own) load a mix of pages (dashboard, approvals queue, a
request page, the auditor's history with filters, the audit log) for a while through
gunicorn. Also streams the exports (rows/s, the web worker's memory growth) and times
``verify_audit``.

Targets: p95 < 100 ms per page, exports >= 50,000 rows/s, export memory flat.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from bench import report
from bench.bench_auditor_history import seed
from bench.seed import Person, second_factor, setup_django
from bench.stack import DEFAULT_LATENCY_MS, ROOT, Stack

USERS = 20
# Each person waits this long between pages (reading, or the page's own htmx poll);
# without it, 20 clients in a tight loop measure the queue in front of 3 workers.
THINK_SECONDS = 1.0  # the mean pause between a user's pages
EXPORT_RUNS = 3  # each export's figure is the median of this many runs


def _top_up_events(target: int) -> int:
    """Append filler events (a valid chain) until there are ``target``; returns the count."""
    from django.utils import timezone

    from portal.audit import GENESIS_HASH
    from portal.models import AuditEvent, canonical_fields, canonical_json

    head = AuditEvent.objects.order_by("-seq").first()
    seq, prev = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    batch: list[AuditEvent] = []
    when = timezone.now()
    while seq < target:
        seq += 1
        fields = canonical_fields(
            seq=seq, created_at=when, actor_id=None, actor_label="monitor",
            action="okta.system_log_polled", target_type="", target_id="",
            payload={"events": seq % 7}, client_ip=None, prev_hash=prev,
        )  # fmt: skip
        digest = hashlib.sha256(canonical_json(fields)).hexdigest()
        batch.append(
            AuditEvent(
                seq=seq, created_at=when, actor_label=fields["actor"],
                action="okta.system_log_polled", target_type="", target_id="",
                payload={"events": seq % 7}, prev_hash=prev, hash=digest,
            )
        )  # fmt: skip
        prev = digest
        if len(batch) == 10_000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    return seq


def _verify(*args: str) -> tuple[float, float, int]:
    """``manage.py verify_audit --no-checkpoints [args]`` (it must pass): the command's
    seconds, the verification's own seconds (its stored run, without Django's start-up)
    and the events it read."""
    from portal.models import ChainVerification

    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "verify_audit", "--no-checkpoints", *args],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    command = time.perf_counter() - started
    run = ChainVerification.objects.order_by("-id").first()
    assert run is not None and run.finished_at is not None
    return command, (run.finished_at - run.started_at).total_seconds(), run.events_checked


def _person(user: Any, web: str) -> Person:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return Person(user.username, user.email, user.pk, "", web, session.session_key)


def _load(
    pages: dict[str, tuple[Person, str]], seconds: float, csv: Path
) -> dict[str, list[float]]:
    """USERS locust users (bench/locustfile.py, headless, a process of its own), each
    loading the pages in turn with their session cookies for ``seconds``; each request's
    ms per page, kept raw in ``{csv}_ms.json``. Locust's own CSV (``{csv}_stats.csv`` and
    so on) is for reference: rounded, and written each second, so it can miss the last.

    Each starts at a random moment of the first THINK_SECONDS and waits 0.5-1.5 x
    THINK_SECONDS between pages (locust's ``between``): with a fixed pause the 20 started
    together and stayed in step, every page asked by all of them within the same few
    milliseconds, and the p95 measured that convoy, not 20 people at work."""
    web = {person.web for person, _ in pages.values()}
    assert len(web) == 1, web
    csv.parent.mkdir(parents=True, exist_ok=True)
    raw = Path(f"{csv}_ms.json")
    raw.unlink(missing_ok=True)
    env = {
        **os.environ,
        "BENCH_LOCUST_PAGES": json.dumps(
            {label: {"cookie": person.session_key, "url": url}
             for label, (person, url) in pages.items()}
        ),
        "BENCH_LOCUST_MS": str(raw),
        "BENCH_THINK_SECONDS": str(THINK_SECONDS),
    }  # fmt: skip
    # --stop-timeout: a page under way when the time is up is finished and counted, not
    # cut off (locust's default); users between pages stop at once.
    done = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "bench/locustfile.py", "--headless",
         f"--users={USERS}", f"--spawn-rate={USERS}", f"--run-time={seconds:g}s",
         "--stop-timeout=60", f"--host={web.pop()}", "--only-summary", f"--csv={csv}",
         "--loglevel=WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 180,
    )  # fmt: skip
    said = f"locust exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert raw.exists(), said
    recorded = json.loads(raw.read_text())
    assert not recorded["failures"], f"pages failed: {recorded['failures'][:5]}\n{said}"
    assert done.returncode == 0, said
    return {label: recorded["ms"].get(label, []) for label in pages}


def _alone(pages: dict[str, tuple[Person, str]], times: int) -> dict[str, list[float]]:
    """Each page ``times`` times, one request at a time (no concurrency): its own cost."""
    timings: dict[str, list[float]] = {label: [] for label in pages}
    for _ in range(times):
        for label, (person, url) in pages.items():
            started = time.perf_counter()
            reply = person.page(url)
            timings[label].append((time.perf_counter() - started) * 1000)
            assert reply.status_code == 200 and not reply.history, (label, reply.url)
    return timings


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():  # a worker gunicorn replaced
        return 0
    for line in status.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _export(person: Person, url: str, web_pids: list[int]) -> dict[str, float]:
    """Stream an export; rows, rows/s, and the most any web worker's RSS grew meanwhile."""
    before = {pid: _rss_kb(pid) for pid in web_pids}
    load = round(os.getloadavg()[0], 2)  # other work on the machine shows in the rate
    growth = 0
    rows = size = 0
    tail = b""
    error = ""
    started = time.perf_counter()
    try:
        with person.http.get(f"{person.web}{url}", stream=True, timeout=600) as reply:
            assert reply.status_code == 200, reply.status_code
            kind = reply.headers.get("Content-Type", "")
            assert kind.startswith(("text/csv", "application/x-ndjson")), kind
            for n, chunk in enumerate(reply.iter_content(65536)):
                rows += chunk.count(b"\n")
                size += len(chunk)
                tail = chunk[-300:]
                if n % 50 == 0:
                    growth = max(growth, *(_rss_kb(p) - before.get(p, 0) for p in web_pids))
    except requests.RequestException as exc:
        # A download cut short (before gthread workers, gunicorn's --timeout did that).
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    if url.split("?")[0].endswith(".csv"):
        rows -= 1  # the header
    return {
        "error": error,
        "rows": rows,
        "bytes": size,
        "tail": tail.decode(errors="replace") if os.environ.get("BENCH_DEBUG") else "",
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "web_worker_rss_growth_mb": round(growth / 1024, 1),
        "load_average_before": load,
    }


def _export_runs(person: Person, url: str, web_pids: list[int]) -> dict[str, Any]:
    """The export EXPORT_RUNS times: the median run's figures, every run's rate, and the
    most any run grew a web worker (one run's rate moved by 25% between benchmark runs
    with the checkpointer or autovacuum busy after the seeding)."""
    runs = [_export(person, url, web_pids) for _ in range(EXPORT_RUNS)]
    median = sorted(runs, key=lambda r: r["rows_per_s"])[len(runs) // 2]
    return {
        **median,
        "runs_rows_per_s": [r["rows_per_s"] for r in runs],
        "web_worker_rss_growth_mb": max(r["web_worker_rss_growth_mb"] for r in runs),
        "error": next((r["error"] for r in runs if r["error"]), ""),
    }


def run(quick: bool, latency_ms: int = DEFAULT_LATENCY_MS) -> dict[str, Any]:
    n_requests, n_events, seconds = (1_000, 10_000, 6.0) if quick else (100_000, 1_000_000, 60.0)
    with Stack("pages", latency_ms=latency_ms) as stack:
        setup_django()
        from django.contrib.auth import get_user_model
        from django.db import connection, transaction

        from federation.models import Failover
        from portal.audit import lock_chain
        from portal.models import AuditEvent
        from requests_app.models import AccessRequest

        started = time.perf_counter()
        # The running worker and beat append to the audit log too: hold its append lock
        # while the generator writes the chain, so nobody links to the same event.
        with transaction.atomic():
            lock_chain()
            assert not AuditEvent.objects.exists(), "the generator starts the chain itself"
            seeded = seed(n_requests)
            events = _top_up_events(n_events)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        seed_seconds = time.perf_counter() - started
        User = get_user_model()
        readers = [User.objects.get(username=name) for name in ("auditor", "approver0")]
        for user in readers:
            second_factor(user)
        auditor, approver = (_person(user, stack.web_url) for user in readers)
        req = AccessRequest.objects.order_by("-pk").first()
        failover = Failover.objects.order_by("pk")[len(Failover.objects.all()) // 2]
        account = seeded["account"]
        pages = {
            "dashboard": (approver, "/"),
            "approvals queue": (approver, "/approvals/"),
            "request page": (approver, f"/requests/{req.pk}/"),
            "history (no filter)": (auditor, "/auditor/"),
            "history (status + account + sort)": (
                auditor, f"/auditor/?status=expired&account={account.pk}&sort=-granted"
            ),
            "history (free text)": (auditor, "/auditor/?q=kafka"),
            "history (failover)": (auditor, f"/auditor/?failover={failover.pk}"),
            "audit log": (auditor, "/audit/"),
        }  # fmt: skip
        # Warm each worker once (imports, template compilation), as a running portal is.
        for label, (person, url) in pages.items():
            for _ in range(3):
                reply = person.page(url)
                # The page itself, not a sign-in or second-factor page it redirected to.
                assert reply.status_code == 200 and not reply.history, (label, reply.url)
        # One person at a time first: what a page costs on its own at this size.
        alone = _alone(pages, 5 if quick else 15)
        before_load = stack.served()
        timings = _load(pages, seconds, report.OUT / f"pages{'-quick' if quick else ''}-locust")
        # The same pages as gunicorn timed them: the rest of a page's time is spent
        # waiting for a core (the load generator shares the two).
        served = {
            label: stack.served_ms("GET", re.compile(re.escape(url)), after=before_load)
            for label, (_, url) in pages.items()
        }
        web = next(c for c in stack.children if c.name == "web")
        kids = subprocess.run(
            ["pgrep", "-P", str(web.proc.pid)], capture_output=True, text=True
        ).stdout.split()
        web_pids = [int(pid) for pid in kids]
        exports = {
            "requests CSV": _export_runs(auditor, "/auditor/requests.csv", web_pids),
            "requests JSONL": _export_runs(auditor, "/auditor/requests.jsonl", web_pids),
            "audit log JSONL": _export_runs(auditor, "/auditor/audit.jsonl", web_pids),
        }
        full = _verify("--full")
        # Then what an hourly run meets: the events appended since the last verification.
        with transaction.atomic():
            lock_chain()
            appended = _top_up_events(events + max(100, n_events // 100)) - events
        incremental = _verify()
        counts = {"requests": AccessRequest.objects.count(), "events": AuditEvent.objects.count()}
    page_figures = {label: report.spread(values) for label, values in timings.items()}
    served_figures = {label: report.spread(values) for label, values in served.items()}
    alone_figures = {label: report.spread(values) for label, values in alone.items()}
    result = {
        "requests": counts["requests"],
        "audit_events": counts["events"],
        "seed_seconds": round(seed_seconds, 1),
        "concurrent_users": USERS,
        "think_seconds": THINK_SECONDS,
        "load_seconds": seconds,
        "pages_ms": page_figures,
        "pages_alone_ms": alone_figures,
        "pages_served_ms": served_figures,
        "exports": exports,
        "verify_audit": {
            "events": full[2],
            "command_seconds": round(full[0], 1),
            "seconds": round(full[1], 2),
            "events_per_s": round(full[2] / full[1]),
        },
        "verify_audit_incremental": {
            "appended": appended,
            "events": incremental[2],
            "command_seconds": round(incremental[0], 1),
            "seconds": round(incremental[1], 2),
            "events_per_s": round(incremental[2] / incremental[1]),
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    rows = [
        (label, str(f["n"]), report.fmt(f["median"]), report.fmt(f["p95"]), report.fmt(f["max"]),
         report.fmt(served_figures[label]["median"]), report.fmt(served_figures[label]["p95"]),
         report.fmt(alone_figures[label]["median"]), report.fmt(alone_figures[label]["p95"]))
        for label, f in page_figures.items()
    ]  # fmt: skip
    print(
        report.table(
            f"pages: {counts['requests']} requests, {counts['events']} audit events, "
            f"{USERS} concurrent users, {THINK_SECONDS:.0f} s between pages (target p95 < 100 ms)",
            rows,
            (
                "page",
                "n",
                "median ms",
                "p95 ms",
                "max ms",
                "served median",
                "served p95",
                "alone median",
                "alone p95",
            ),
        )
    )
    for label, e in exports.items():
        print(
            f"export {label}: {e['rows']} rows in {e['seconds']} s = {e['rows_per_s']} rows/s "
            f"(median of {e['runs_rows_per_s']}), "
            f"web worker RSS +{e['web_worker_rss_growth_mb']} MB, load before "
            f"{e['load_average_before']} {e['error']}"
        )
    for name, v in (("--full", result["verify_audit"]),
                    ("(incremental)", result["verify_audit_incremental"])):  # fmt: skip
        print(
            f"verify_audit {name}: {v['events']} events in {v['seconds']} s = "
            f"{v['events_per_s']}/s (the command with Django's start-up: {v['command_seconds']} s)"
        )
    print(f"load average at the end: {result['load_average']}")
    _picture(page_figures, quick)
    return result


def _picture(figures: dict[str, dict[str, float]], quick: bool) -> None:
    plt = report.pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 3.6))
    labels = list(figures)
    ax.barh(labels, [figures[k]["p95"] for k in labels], label="p95", color="tab:orange")
    ax.barh(labels, [figures[k]["median"] for k in labels], label="median", color="tab:blue")
    ax.axvline(100, color="red", linestyle="--", label="target p95")
    ax.set_xlabel(f"ms, {USERS} concurrent users")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(report.png_path("pages", quick), dpi=80)
    plt.close(fig)
