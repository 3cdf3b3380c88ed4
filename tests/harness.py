"""The integration harness: real PostgreSQL, real Redis, a real Celery worker
process (with beat) and the sandbox Okta org over HTTP, driven through the real
okta SDK. Loaded by tests/conftest.py as a pytest plugin.

The worker is a separate process, so integration tests commit their data
(``transactional_db``) and the worker connects to the same test database.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import OperationalError, connection
from django.db.backends.base.operations import BaseDatabaseOperations

SANDBOX_TOKEN = "integration-test-token"
ROOT = Path(__file__).resolve().parent.parent


FLUSH_ATTEMPTS = 5


@pytest.fixture(autouse=True, scope="session")
def _flush_again_after_a_deadlock() -> Iterator[None]:
    """A transactional test's teardown TRUNCATEs every table while the session worker's
    beat (sweeps every second) reads some of them in a transaction: PostgreSQL may pick the
    TRUNCATE as the deadlock's victim, and the next test then starts on the last one's
    rows. The failed flush rolled back; flushing again is safe."""
    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: BaseDatabaseOperations, sql_list: list[str]) -> None:
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                original(self, sql_list)
                return
            except OperationalError as exc:
                if attempt == FLUSH_ATTEMPTS or not isinstance(
                    exc.__cause__, psycopg.errors.DeadlockDetected
                ):
                    raise
                logging.getLogger(__name__).warning("flush deadlocked; flushing again")
                time.sleep(0.2 * attempt)

    patch = pytest.MonkeyPatch()
    patch.setattr(BaseDatabaseOperations, "execute_sql_flush", execute_sql_flush)
    yield
    patch.undo()


def wait_for(
    condition: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll until condition() is truthy; return its value or fail with `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def _require_real_services() -> tuple[str, str]:
    broker = django_settings.CELERY_BROKER_URL
    if connection.vendor != "postgresql" or not broker.startswith("redis://"):
        pytest.fail(
            "Integration tests need PostgreSQL and Redis: run the README's test command "
            "(make test), or set DATABASE_URL=postgres://... and REDIS_URL=redis://..."
        )
    db = connection.settings_dict
    db_url = f"postgres://{db['USER'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"{db_url}/{db['NAME']}", broker


@pytest.fixture(scope="session")
def sandbox_org() -> Iterator[Any]:
    """The sandbox Okta org, serving over HTTP on a free loopback port."""
    from federation.sandbox import serve

    server = serve(host="127.0.0.1", port=0, token=SANDBOX_TOKEN)
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def sandbox_pagerduty() -> Iterator[Any]:
    """The sandbox PagerDuty, serving https on a free loopback port (its certificate is
    ``.ca_path``); the worker's PAGERDUTY_* settings point at it."""
    from federation.sandbox import pagerduty

    server = pagerduty.serve(host="127.0.0.1", port=0)
    yield server
    server.shutdown()


def pagerduty_env(server: Any) -> dict[str, str]:
    """The PAGERDUTY_* settings of a process that talks to the sandbox PagerDuty."""
    from federation.sandbox import pagerduty

    return {
        "PAGERDUTY_API_URL": server.url,
        "PAGERDUTY_EVENTS_URL": server.url,
        "PAGERDUTY_API_TOKEN": pagerduty.DEFAULT_TOKEN,
        "PAGERDUTY_ROUTING_KEY": pagerduty.DEFAULT_ROUTING_KEY,
        "PAGERDUTY_CA_BUNDLE": str(server.ca_path),
        "PAGERDUTY_TIMEOUT_SECONDS": "2",
        # Tests send the paging check when they need it: a timed run would race them.
        "PAGERDUTY_CHECK_SECONDS": "86400",
    }


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server for AWS (IAM, STS) over HTTP, shared with the worker process.

    AWS managed policies (ReadOnlyAccess, ...) exist only with
    MOTO_IAM_LOAD_MANAGED_POLICIES; each account's IAM loads them on first use.
    """
    from moto.server import ThreadedMotoServer

    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    # Its request log would bury a failing test's own output.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup,
    django_db_blocker,
    sandbox_org,
    moto_endpoint,
    sandbox_pagerduty,
    tmp_path_factory,
) -> Iterator[subprocess.Popen]:
    """A real `celery worker -B` process on Redis, pointed at the test database."""
    with django_db_blocker.unblock():
        db_url, broker = _require_real_services()
    import redis

    redis.Redis.from_url(broker).flushdb()
    var_dir = tmp_path_factory.mktemp("worker-var")
    env = worker_env(
        db_url, broker, sandbox_org.url, moto_endpoint, var_dir, **pagerduty_env(sandbox_pagerduty)
    )
    proc = start_celery(["worker", "-B"], env, var_dir, name="worker")
    try:
        wait_until_ready(proc)
        yield proc
    finally:
        stop_process(proc)


def worker_env(
    db_url: str, broker: str, okta_url: str, moto_endpoint: str, var_dir: Path, **overrides: str
) -> dict[str, str]:
    """The environment of a worker (or beat) process of the integration harness."""
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        "REDIS_URL": broker,
        "OKTA_ORG_URL": okta_url,
        "OKTA_API_TOKEN": SANDBOX_TOKEN,
        "PORTAL_VAR_DIR": str(var_dir),
        "EXPIRY_SWEEP_SECONDS": "1",
        # The reconciler is exercised explicitly; a timed run would race the assertions.
        "RECONCILE_SECONDS": "86400",
        "GRANT_TASK_BACKOFF_BASE_SECONDS": "1",
        "GRANT_TASK_MAX_RETRIES": os.environ.get("GRANT_TASK_MAX_RETRIES", "3"),
        "OKTA_SDK_MAX_RETRIES": "0",
        # The health and System Log monitors too: tests send their tasks when they need them.
        "HEALTH_POLL_SECONDS": "86400",
        # The return-to-normal tick runs scheduled deactivations: every second here.
        "RUNBOOK_TICK_SECONDS": "1",
        "SYSTEM_LOG_POLL_SECONDS": "86400",
        # AWS is the moto server; the daily readiness check runs only when a test asks.
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "READINESS_SCHEDULE": "off",
        **overrides,
    }


def start_celery(
    command: list[str], env: dict[str, str], var_dir: Path, *, name: str, concurrency: int = 2
) -> subprocess.Popen:
    """`celery -A portal <command>` (worker, worker -B or beat); its log in var_dir/<name>.log
    (``proc.log_path``)."""
    log_path = var_dir / f"{name}.log"
    log_file = open(log_path, "a")  # noqa: SIM115 - lives as long as the process
    args = [sys.executable, "-m", "celery", "-A", "portal", *command, "--loglevel", "INFO"]
    if command[0] == "worker":
        args += ["--concurrency", str(concurrency), "--without-gossip", "--without-mingle",
                 "--hostname", f"{name}@%h"]  # fmt: skip
    if command[0] == "beat" or "-B" in command:
        args += ["--schedule", str(var_dir / f"{name}-schedule")]
    # Its own process group: a fault test SIGKILLs the worker with its pool children.
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    proc.log_path = log_path  # type: ignore[attr-defined]
    proc.log_file = log_file  # type: ignore[attr-defined]
    return proc


def wait_until_ready(proc: subprocess.Popen, marker: str = "ready.", timeout: float = 60) -> None:
    """Wait for a started worker's "ready." (fail with its log if it exits first)."""
    log_path: Path = proc.log_path  # type: ignore[attr-defined]
    start = log_path.stat().st_size if log_path.exists() else 0

    def ready() -> bool:
        return proc.poll() is not None or marker in log_path.read_text()[start:]

    wait_for(ready, timeout=timeout, what=f"{log_path.stem} to start")
    if proc.poll() is not None:
        pytest.fail(f"{log_path.stem} exited:\n{log_path.read_text()[-4000:]}")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log_file = getattr(proc, "log_file", None)
    if log_file is not None:
        log_file.close()


@pytest.fixture
def integration(transactional_db, settings, sandbox_org, celery_worker_process) -> Iterator[Any]:
    """Everything real: committed data, the worker, the sandbox org (reset per test)."""
    settings.OKTA_ORG_URL = sandbox_org.url
    settings.OKTA_API_TOKEN = SANDBOX_TOKEN
    settings.IDENTITY_PROVIDER = "federation.idp.okta.OktaIdentityProvider"
    sandbox_org.reset()
    yield sandbox_org
    sandbox_org.clear_faults()


@pytest.fixture
def prepared_plan(integration) -> Any:
    """The demo plan, with its groups created in Okta and assigned to the federation app
    (what the preparation tasks of the runbook do once, before any disruption)."""
    from federation.idp import get_identity_provider
    from tests.conftest import build_plan

    plan = build_plan()
    idp = get_identity_provider()
    for role in plan.roles.values():
        group = idp.ensure_group(role.okta_group_name, "Emergency access (portal managed)")
        idp.assign_group_to_app(django_settings.OKTA_AWS_APP_ID, group.id)
    return plan


@pytest.fixture
def live_portal(integration, live_server) -> str:
    """A live portal URL whose requests are served from the test database the worker uses."""
    return live_server.url
