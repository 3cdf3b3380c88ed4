"""The production stack on this machine, one process each, for a benchmark run.

gunicorn (the Dockerfile's CMD: ``portal.wsgi``, its gthread workers and threads), a Celery worker
(concurrency 8, as in docker-compose) and Celery beat, a private ``redis-server``
on a free port, a database of its own on the shared PostgreSQL (copied from a
migrated template, dropped afterwards), and the sandbox Okta org
(``python -m federation.sandbox``) with latency and per-family rate limits.

The benchmark process itself is a client: it seeds through the ORM (pointed at
the same database) and drives the portal over HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SANDBOX_TOKEN = "bench-sandbox-token"  # noqa: S105 -- the local sandbox org's
DEFAULT_LATENCY_MS = 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False


def _server_url() -> str:
    """The PostgreSQL server (not database) of BENCH_DATABASE_URL or DATABASE_URL."""
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
    )
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("The benchmarks need PostgreSQL: set DATABASE_URL=postgres://... (any database)")
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(_server_url() + "/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _database_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(_server_url() + "/postgres", autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        return row is not None


def _template_name() -> str:
    """A migrated template database, named after the migrations so a change re-creates it."""
    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(path.read_bytes())
    return f"bench_template_{digest.hexdigest()[:10]}"


def migrated_template() -> str:
    name = _template_name()
    if not _database_exists(name):
        _admin(f'CREATE DATABASE "{name}"')
        env = {**os.environ, "DATABASE_URL": f"{_server_url()}/{name}"}
        done = subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput"],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            _admin(f'DROP DATABASE IF EXISTS "{name}"')
            raise RuntimeError(f"migrating the template failed:\n{done.stderr[-3000:]}")
    return name


# Each request as gunicorn saw it: path, status and time in the worker (ms), to tell the
# portal's own time from the time a request waits in the load generator's process.
ACCESS_LOG_FORMAT = "%(t)s %(m)s %(U)s %(q)s %(s)s %(M)s"


def web_command(port: int, access_log: Path) -> list[str]:
    """The Dockerfile's gunicorn CMD (workers, worker class, threads) on a loopback port."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", "")
    found = re.search(r"^CMD (\[.*?\])", text, re.M | re.S)
    if found is None:
        raise RuntimeError("the Dockerfile has no CMD")
    command = json.loads(found.group(1))
    command = [c.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for c in command]
    # The access log goes to a file of its own (not web.log), with each request's time.
    if "--access-logfile" in command:
        at = command.index("--access-logfile")
        del command[at : at + 2]
    command += ["--access-logfile", str(access_log), "--access-logformat", ACCESS_LOG_FORMAT]
    return [PYTHON, "-m", *command]


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log: Path


@dataclass
class Stack:
    """Start with ``with Stack("surge", latency_ms=100) as stack:``; see the module doc."""

    name: str
    latency_ms: int = DEFAULT_LATENCY_MS
    rate_limits: dict[str, int] = field(default_factory=dict)
    users: Iterable[str] = ()  # Okta logins the sandbox org knows, besides its demo users
    worker_concurrency: int = 8
    env: dict[str, str] = field(default_factory=dict)  # portal settings for every process

    def __post_init__(self) -> None:
        self.children: list[Child] = []
        self.var = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        self.database = f"bench_{self.name}_{os.getpid()}"
        self.okta_url = self.web_url = self.redis_url = ""
        self.access_log = self.var / "access.log"

    # --- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        redis_port, okta_port, web_port = free_port(), free_port(), free_port()
        self._spawn(
            "redis",
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.var)],
        )  # fmt: skip
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        template = migrated_template()
        _admin(f'CREATE DATABASE "{self.database}" TEMPLATE "{template}"')
        self._database_created = True
        seed = self.var / "okta-seed.json"
        seed.write_text(json.dumps({"users": self._okta_users()}))
        # Set-up runs without latency; the benchmark sets it (set_okta) when it starts.
        self._spawn(
            "okta",
            [PYTHON, "-m", "federation.sandbox", "--port", str(okta_port),
             "--token", SANDBOX_TOKEN, "--seed", str(seed)],
        )  # fmt: skip
        self.okta_url = f"http://127.0.0.1:{okta_port}"
        wait_until(lambda: _answers(f"{self.okta_url}/__sandbox__/faults"), "the sandbox org")
        wait_until(lambda: self._redis_ping(redis_port), "redis")
        os.environ.update(self.portal_env())
        self.web_url = f"http://127.0.0.1:{web_port}"
        self._spawn("web", web_command(web_port, self.access_log))
        worker = self._spawn(
            "worker",
            [PYTHON, "-m", "celery", "-A", "portal", "worker", "-l", "info",
             "--concurrency", str(self.worker_concurrency), "-n", f"bench-{self.name}@%h"],
        )  # fmt: skip
        self._spawn(
            "beat",
            [PYTHON, "-m", "celery", "-A", "portal", "beat", "-l", "info",
             "--schedule", str(self.var / "celerybeat-schedule")],
        )  # fmt: skip
        # Each process imports the Okta SDK before it serves (portal.core.preload): minutes
        # on a loaded two-core machine, not seconds.
        wait_until(lambda: _answers(f"{self.web_url}/healthz"), "gunicorn", timeout=300)
        wait_until(
            lambda: self._alive() and "ready." in worker.log.read_text(), "the worker", timeout=300
        )

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
            # Its own children too (gunicorn's workers, the pool): a master killed while
            # they still import would leave them running, orphaned.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.proc.pid, signal.SIGKILL)
        self.children.clear()
        if getattr(self, "_database_created", False):
            try:
                from django.db import connections

                connections.close_all()
            except ImportError:
                pass
            _admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            self._database_created = False
        if not os.environ.get("BENCH_KEEP_LOGS"):
            shutil.rmtree(self.var, ignore_errors=True)

    # --- helpers -------------------------------------------------------------------

    def portal_env(self) -> dict[str, str]:
        """Settings of every portal process, and of this one (seeding through the ORM)."""
        return {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": f"{_server_url()}/{self.database}",
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "OKTA_ORG_URL": self.okta_url,
            "OKTA_API_TOKEN": SANDBOX_TOKEN,
            "PORTAL_VAR_DIR": str(self.var),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "READINESS_SCHEDULE": "off",
            "IDENTITY_PROVIDER": "federation.idp.okta.OktaIdentityProvider",
            **self.env,
        }

    def _okta_users(self) -> list[dict[str, str]]:
        from federation.sandbox.seed import default_seed

        users = default_seed()["users"]
        users += [
            {"login": login, "firstName": login.split("@")[0], "lastName": "Bench"}
            for login in self.users
        ]
        return users

    def _spawn(self, name: str, args: list[str]) -> Child:
        log = self.var / f"{name}.log"
        env = {**os.environ, **(self.portal_env() if name in {"web", "worker", "beat"} else {})}
        with open(log, "w") as out:
            proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own: stop() ends all of it
            )
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def _alive(self) -> bool:
        for child in self.children:
            if child.proc.poll() is not None:
                tail = child.log.read_text()[-3000:]
                raise RuntimeError(f"{child.name} exited ({child.proc.returncode}):\n{tail}")
        return True

    @staticmethod
    def _redis_ping(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    # --- the sandbox org's control plane ----------------------------------------------

    def set_okta(
        self, *, latency_ms: int | None = None, rate_limits: dict[str, int] | None = None
    ) -> None:
        body: dict[str, Any] = {
            "latency_ms": self.latency_ms if latency_ms is None else latency_ms,
            "rate_limits": rate_limits if rate_limits is not None else self.rate_limits,
        }
        requests.post(f"{self.okta_url}/__sandbox__/faults", json=body, timeout=10)

    def clear_okta_windows(self) -> float:
        """Fresh rate-limit windows in every family (and no faults; set_okta sets them).
        Returns when: a call received after it counts in a fresh window."""
        requests.delete(f"{self.okta_url}/__sandbox__/faults", timeout=10).raise_for_status()
        return time.time()

    def okta_windows_used(self) -> dict[str, int]:
        """Calls counted so far in each family's open rate-limit window."""
        reply = requests.get(f"{self.okta_url}/__sandbox__/faults", timeout=10)
        return {family: w["used"] for family, w in reply.json()["windows"].items()}

    def okta_calls(self, since: float = 0.0) -> list[list[Any]]:
        """[received, answered, method, path, status] of each API call the org answered."""
        reply = requests.get(
            f"{self.okta_url}/__sandbox__/calls", json={"since": since}, timeout=60
        )
        return reply.json()["calls"]

    def okta_state(self) -> dict[str, Any]:
        return requests.get(f"{self.okta_url}/__sandbox__/state", timeout=60).json()

    def served(self) -> int:
        """Requests gunicorn has logged so far (``served_ms(..., after=)`` skips them)."""
        with open(self.access_log) as log:
            return sum(1 for _ in log)

    def served_ms(self, method: str, url: re.Pattern[str], after: int = 0) -> list[float]:
        """gunicorn's time (ms) for each ``method`` request whose path (and ``?query``, if
        it had one) matches ``url``, from the ``after``-th on."""
        times = []
        with open(self.access_log) as log:
            for line in itertools.islice(log, after, None):
                _, verb, path, query, _, ms = line.rstrip("\n").rsplit(" ", 5)
                if verb == method and url.fullmatch(f"{path}?{query}" if query else path):
                    times.append(float(ms))
        return times

    def worker_log(self) -> str:
        return next(c.log.read_text() for c in self.children if c.name == "worker")
