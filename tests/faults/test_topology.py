"""The production topology, proven natively (no container runtime works here): each
docker-compose.yml service's own ``command`` runs with that service's ``environment``
(pointed at a private PostgreSQL cluster and a private Redis on loopback), each service's
``healthcheck`` passes, one grant goes web -> worker -> Okta, and PostgreSQL restarted
under it gives a clear 503, then everything recovers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.faults.conftest import PrivateRedis, free_port
from tests.harness import ROOT, SANDBOX_TOKEN, stop_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _as_postgres(args: list[str]) -> list[str]:
    # initdb refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PrivateCluster:
    def __init__(self, directory: Path) -> None:
        self.bin = PG_BIN[-1]
        self.dir = directory
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        subprocess.run(
            _as_postgres([str(self.bin / "initdb"), "-D", str(directory / "data"), "-U",
                          "postgres", "--auth=trust", "-E", "UTF8"]),
            check=True, capture_output=True,
        )  # fmt: skip

    def ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        subprocess.run(
            _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l",
                          str(self.dir / "log"), "-o", options, "-w", "-m", "fast", action]),
            check=True, capture_output=True,
        )  # fmt: skip

    def url(self, password: str) -> str:
        return f"postgres://postgres:{password}@127.0.0.1:{self.port}/postgres"


def _env_of(service: str, values: dict[str, str]) -> dict[str, str]:
    """The service's environment from docker-compose.yml, ${VAR...} taken from ``values``."""
    env = {}
    for key, value in COMPOSE["services"][service]["environment"].items():
        env[key] = re.sub(r"\$\{(\w+)[^}]*\}", lambda m: values[m.group(1)], str(value))
    return env


def _command(service: str, port: int, var_dir: Path) -> list[str]:
    spec = COMPOSE["services"][service]
    # web has no command: the image's CMD (the Dockerfile's gunicorn line).
    command = spec.get("command") or json.loads(
        re.search(r"^CMD (\[.*?\])", (ROOT / "Dockerfile").read_text().replace("\\\n", ""),
                  re.M | re.S).group(1)
    )  # fmt: skip
    command = [c.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for c in command]
    # The image's /app/var/ is the test's own folder (beat writes its schedule there).
    command = [c.replace("/app/var/", f"{var_dir}/") for c in command]
    binary = {"python": sys.executable}.get(command[0])
    return [binary or str(Path(sys.executable).with_name(command[0])), *command[1:]]


def _healthcheck(service: str, env: dict[str, str], port: int) -> int:
    test = COMPOSE["services"][service]["healthcheck"]["test"]
    kind, args = test[0], test[1:]
    args = [a.replace("localhost:8000", f"127.0.0.1:{port}") for a in args]
    if kind == "CMD-SHELL":
        shell = args[0].replace("$$HOSTNAME", os.uname().nodename)
        shell = re.sub(r"^celery ", f"{Path(sys.executable).with_name('celery')} ", shell)
        shell = re.sub(r"^python ", f"{sys.executable} ", shell)
        return subprocess.run(shell, shell=True, env=env, cwd=ROOT, capture_output=True).returncode
    if args[0] == "python":
        args[0] = sys.executable
    elif args[0] == "redis-cli":
        args += ["-p", env["_REDIS_PORT"]]
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True).returncode


def _http(url: str, body: Any = None, token: str = "") -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def test_compose_services_run_natively_pass_their_healthchecks_and_survive_a_pg_restart(
    tmp_path, sandbox_org
):
    if not PG_BIN:
        pytest.fail("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin")
    sandbox_org.reset()
    # Not under tmp_path: pytest makes it private to root, and initdb runs as postgres.
    cluster = PrivateCluster(Path(tempfile.mkdtemp(prefix="portal-faults-pg-")))
    cluster.ctl("start")
    redis = PrivateRedis(tmp_path)
    redis.start()
    port = free_port()
    values = {
        "POSTGRES_PASSWORD": "unused-trust-auth",
        "PORTAL_OWNER_PASSWORD": "unused-trust-auth",
        "PORTAL_APP_PASSWORD": "unused-trust-auth",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    dotenv = {  # what the operator's .env holds (docker-compose.yml's header)
        "SECRET_KEY": "topology-test-secret-key-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{port}",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "OKTA_ORG_URL": sandbox_org.url,
        "OKTA_API_TOKEN": SANDBOX_TOKEN,
        "OKTA_AWS_APP_ID": "0oasandboxawsfed01",
        "OKTA_PORTAL_ACTORS": "portal-service@example.com",
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "GRANT_SWEEP_GRACE_SECONDS": "5",
        "AUDIT_CHECKPOINT_KEY": "topology-test-checkpoint-key-" + "y" * 32,
        "AUDIT_CHECKPOINT_DIR": str(tmp_path / "var" / "audit-checkpoints"),
        # Plain http on loopback here; in production the TLS proxy is in front.
        "SECURE_SSL_REDIRECT": "false",
        # The documented single-approver mode: this test has one approver.
        "REQUIRE_FAILOVER_CONFIRMATION": "false",
    }
    loopback = {
        "DATABASE_URL": cluster.url(values["POSTGRES_PASSWORD"]),
        # One role on the private cluster: owner and runtime are the same (no grants).
        "DATABASE_OWNER_URL": cluster.url(values["POSTGRES_PASSWORD"]),
        "REDIS_URL": redis.url,
        "CELERY_BROKER_URL": redis.url,
    }
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "REDIS", "CELERY"))
    }
    envs = {
        name: {
            **base,
            **dotenv,
            **_env_of(name, values),
            **loopback,
            "_REDIS_PORT": str(redis.port),
        }
        for name in ("migrate", "web", "worker", "beat")
    }
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    started: list[subprocess.Popen] = []
    try:
        migrate = subprocess.run(_command("migrate", port, var_dir), env=envs["migrate"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=300)  # fmt: skip
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        # The demo plan and people (a setup step, outside production mode).
        seed_env = {**envs["migrate"], "PORTAL_ENV": "demo"}
        seeded = subprocess.run(
            [sys.executable, "manage.py", "seed_demo", "--password", "x-demo-1234"],
            env=seed_env, cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        assert seeded.returncode == 0, seeded.stdout[-1500:] + seeded.stderr[-2500:]
        for name in ("web", "worker", "beat"):
            log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
            proc = subprocess.Popen(_command(name, port, var_dir), env=envs[name], cwd=ROOT,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
            proc.log_file = log  # type: ignore[attr-defined]
            started.append(proc)
        for name in ("web", "worker", "beat"):
            wait_for(lambda n=name: _healthcheck(n, envs[n], port) == 0, timeout=120,
                     interval=2, what=f"the {name} healthcheck")  # fmt: skip
        assert _healthcheck("redis", envs["web"], port) == 0
        status, body = _http(f"http://127.0.0.1:{port}/readyz")
        assert json.loads(body)["components"]["worker"]["ok"], body

        # One grant: web -> worker -> Okta.
        def token(user: str) -> str:
            out = subprocess.run([sys.executable, "manage.py", "create_api_token", user],
                                 env=seed_env, cwd=ROOT, check=True, capture_output=True,
                                 text=True)  # fmt: skip
            return out.stdout.strip().splitlines()[-1]

        api = f"http://127.0.0.1:{port}/api/v1"
        approver = token("approver1")
        status, body = _http(f"{api}/failover", {"reason": "IdC down", "drill": False}, approver)
        assert status in (200, 201), body
        engineer = token("engineer")
        roles = json.loads(_http(f"{api}/roles", token=engineer)[1])
        ro = next(r for r in roles if r["approvals_required"] == 1)
        filed: list[dict[str, Any]] = []

        def file_request() -> bool:
            status, body = _http(f"{api}/requests", {"role": ro["id"], "justification":
                                 "Identity Center is down and payments fail.",
                                 "ticket": "INC-1", "duration_minutes": 30}, engineer)  # fmt: skip
            if status == 201:
                filed.append(json.loads(body))
            return status == 201

        wait_for(file_request, timeout=60, interval=2, what="the request to be filed")
        request_id = filed[0]["id"]
        status, body = _http(f"{api}/requests/{request_id}/approve", {}, approver)
        assert status == 200, body

        def grant_status() -> str:
            return json.loads(_http(f"{api}/requests/{request_id}", token=engineer)[1])["status"]

        wait_for(lambda: grant_status() == "active", timeout=60, interval=1, what="active")
        assert "engineer@example.com" in sandbox_org.member_logins(ro["okta_group"])

        # PostgreSQL restarted under it: a clear 503, then everything recovers.
        cluster.ctl("stop")
        status, body = _http(f"{api}/requests", token=engineer)
        assert status == 503 and "cannot reach its database" in body, (status, body[:300])
        status, body = _http(f"http://127.0.0.1:{port}/healthz")
        assert status == 503 and body == "database unreachable"
        cluster.ctl("start")
        wait_for(lambda: _http(f"{api}/requests", token=engineer)[0] == 200, timeout=30,
                 what="the web to answer again")  # fmt: skip
        before = json.loads(_http(f"http://127.0.0.1:{port}/readyz")[1])["components"]
        wait_for(
            lambda: json.loads(_http(f"http://127.0.0.1:{port}/readyz")[1])["components"]
            ["worker"]["age_seconds"] < 10 and _healthcheck("beat", envs["beat"], port) == 0,
            timeout=60, interval=2, what="the worker and beat to report again",
        )  # fmt: skip
        assert before
        for proc in started:
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
    finally:
        for proc in started:
            stop_process(proc)
        redis.kill()
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.ctl("stop")
        shutil.rmtree(cluster.dir, ignore_errors=True)
