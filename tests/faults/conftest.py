"""Fault injection: the real processes (worker, beat, web) on a private Redis the tests may
kill and restart, against the sandbox Okta org's fault switches. The shared Redis and
PostgreSQL are never touched; a test that restarts PostgreSQL starts its own cluster."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib

from tests.harness import (
    _require_real_services,
    start_celery,
    stop_process,
    wait_for,
    wait_until_ready,
    worker_env,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test alone, without persistence (as .ci/services runs it)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.dir = directory
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")],
        )  # fmt: skip
        client = redis_lib.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), timeout=10, what="the private Redis to start")

    def kill(self) -> None:
        """SIGKILL: everything in memory is gone, as when the host dies."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self, down_seconds: float = 1.0) -> None:
        self.kill()
        time.sleep(down_seconds)
        self.start()

    def client(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(self.url)


def _pings(client: redis_lib.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis_lib.ConnectionError:
        return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


class Processes:
    """Start worker / beat processes of the portal on the private Redis; stop them all."""

    def __init__(self, env: dict[str, str], var_dir: Path) -> None:
        self.env = env
        self.var_dir = var_dir
        self.started: list[subprocess.Popen] = []

    def worker(self, name: str = "worker", *, concurrency: int = 2, **env: str) -> Any:
        proc = start_celery(
            ["worker"], {**self.env, **env}, self.var_dir, name=name, concurrency=concurrency
        )
        self.started.append(proc)
        wait_until_ready(proc)
        return proc

    def beat(self, name: str = "beat", **env: str) -> Any:
        proc = start_celery(["beat"], {**self.env, **env}, self.var_dir, name=name)
        self.started.append(proc)
        wait_until_ready(proc, marker="beat: Starting")
        return proc

    def stop_all(self) -> None:
        """SIGKILL every process group at once: nothing is asserted after the test, and a
        warm shutdown would wait for the tasks still retrying (seconds per process)."""
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.started:
            stop_process(proc)


@pytest.fixture
def okta_org(transactional_db, settings, sandbox_org) -> Iterator[Any]:
    """The sandbox Okta org (reset), committed data; no shared worker (each test starts its
    own processes on its private Redis)."""
    from tests.harness import SANDBOX_TOKEN

    settings.OKTA_ORG_URL = sandbox_org.url
    settings.OKTA_API_TOKEN = SANDBOX_TOKEN
    settings.IDENTITY_PROVIDER = "federation.idp.okta.OktaIdentityProvider"
    sandbox_org.reset()
    yield sandbox_org
    sandbox_org.clear_faults()


@pytest.fixture
def processes(
    okta_org, private_redis, moto_endpoint, tmp_path, django_db_blocker
) -> Iterator[Processes]:
    """Worker/beat factory: the test database, the sandbox org, the private Redis, and the
    Django settings of this test process pointed at that Redis too (so the portal code the
    test runs queues there)."""
    with django_db_blocker.unblock():
        db_url, _ = _require_real_services()
    env = worker_env(
        db_url,
        private_redis.url,
        okta_org.url,
        moto_endpoint,
        tmp_path,
        # The fast grant sweep is what converges after a lost task.
        GRANT_SWEEP_SECONDS="2",
        GRANT_SWEEP_GRACE_SECONDS="5",
    )
    procs = Processes(env, tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def on_private_broker(settings, private_redis, monkeypatch) -> Iterator[None]:
    """Tasks this test process sends go to the private Redis."""
    from portal.celery import app

    def repoint(url: str) -> None:
        # Celery reads CELERY_BROKER_URL from the environment before its configuration.
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        app.conf.broker_url = url
        # Fresh pools for the new URL; the old ones are left open (closing them breaks
        # whoever still holds a reference, e.g. the next test's producer).
        app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.broker_url
    settings.CELERY_BROKER_URL = private_redis.url
    repoint(private_redis.url)
    yield
    repoint(previous)


def log_text(proc: Any) -> str:
    return Path(proc.log_path).read_text()


Condition = Callable[[], Any]
