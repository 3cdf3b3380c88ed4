"""manage.py run_demo: the one demo command, started for real in a subprocess.

Each run gets its own PORTAL_VAR_DIR (SQLite database, Celery queue, beat
schedule) and free ports, and none of the test run's DATABASE_URL / REDIS_URL:
the demo needs no services.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from portal.management.commands.run_demo import Command as RunDemo

ROOT = Path(settings.BASE_DIR)
SANDBOX_TOKEN = "sandbox-api-token"
SANDBOX_APP = "0oasandboxawsfed01"
_NOT_PASSED = ("DATABASE_", "REDIS_", "CELERY_", "OKTA_")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=2) as resp:
            return resp.status, resp.read()
    except OSError:
        return 0, b""


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) for every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        table[int(entry.name)] = (int(ppid), state)
    return table


def descendants(pid: int) -> set[int]:
    table = process_table()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, (parent, _) in table.items() if parent in frontier}
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    table = process_table()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


@dataclass
class Demo:
    proc: subprocess.Popen
    port: int
    okta_port: int
    pagerduty_port: int
    var_dir: Path
    log: Path
    seen: set[int] = field(default_factory=set)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 45) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.seen |= descendants(self.proc.pid)
            if self.proc.poll() is not None:
                pytest.fail(f"run_demo exited ({self.proc.returncode}) before {what}:\n"
                            f"{self.output()[-6000:]}")  # fmt: skip
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.output()[-6000:]}")
            time.sleep(0.25)
        self.seen |= descendants(self.proc.pid)

    def wait_until_up(self) -> None:
        self.wait_for(
            lambda: get(f"http://127.0.0.1:{self.port}/healthz") == (200, b"ok"),
            "the portal's /healthz",
        )
        self.wait_for(lambda: "ready." in self.output(), "the Celery worker")
        self.wait_for(lambda: "beat: Starting..." in self.output(), "Celery beat")
        # run_demo prints its banner once it saw /healthz answer itself.
        self.wait_for(lambda: "demo is running" in self.output(), "the demo's banner")

    def child_pid(self, name: str) -> int:
        match = re.search(rf"^{name}\s*\| started \(pid (\d+)\)", self.output(), re.MULTILINE)
        assert match, f"no {name} in the output"
        return int(match.group(1))


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_PASSED)}
    for name in ("IDENTITY_PROVIDER", "PORTAL_ENV", "SITE_URL", "DEBUG"):
        env.pop(name, None)
    env.update(PORTAL_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="portal.settings")
    return env


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    env = demo_env(tmp_path)
    port, okta_port, pagerduty_port = free_port(), free_port(), free_port()
    log = tmp_path / "run_demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_demo", "--port", str(port),
             "--okta-port", str(okta_port), "--pagerduty-port", str(pagerduty_port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    running = Demo(proc, port, okta_port, pagerduty_port, tmp_path / "var", log)
    try:
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in alive(running.seen | descendants(proc.pid)):  # never leave strays behind
            os.kill(pid, signal.SIGKILL)


@pytest.mark.integration
def test_run_demo_brings_everything_up_and_sigterm_stops_it_all(demo: Demo):
    demo.wait_until_up()

    # The sandbox org answers, and seed_demo filled it over HTTP through the okta SDK.
    auth = {"Authorization": f"SSWS {SANDBOX_TOKEN}", "Accept": "application/json"}
    status, body = get(f"http://127.0.0.1:{demo.okta_port}/api/v1/apps/{SANDBOX_APP}/groups", auth)
    assert status == 200
    assert len(json.loads(body)) == 4
    # Its own database and queue, under PORTAL_VAR_DIR.
    assert (demo.var_dir / "portal.sqlite3").is_file()
    assert (demo.var_dir / "celery-queue").is_dir()
    # kombu's filesystem-broker tables too, never a control/ folder in the checkout.
    assert (demo.var_dir / "celery-queue" / "control" / "celery.exchange").is_file()
    assert not (ROOT / "control").exists()
    # The sandbox PagerDuty answers over https with its own certificate, Omar on call.
    tls = ssl.create_default_context(cafile=demo.var_dir / "pagerduty" / "pagerduty-cert.pem")
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=tls)
    )
    with opener.open(
        urllib.request.Request(
            f"https://127.0.0.1:{demo.pagerduty_port}/oncalls?include[]=users",
            headers={"Authorization": "Token token=sandbox-pagerduty-token"},
        ),
        timeout=5,
    ) as response:
        oncalls = json.loads(response.read())["oncalls"]
    assert [(o["user"]["email"], o["escalation_level"]) for o in oncalls] == [
        ("oncall@example.com", 1),
        ("approver1@example.com", 2),
    ]
    output = demo.output()
    assert f"pagerduty https://127.0.0.1:{demo.pagerduty_port}/" in output
    for name in ("migrate", "okta", "pagerduty", "seed", "worker", "beat", "web"):
        assert re.search(rf"^{name}\s*\| started \(pid \d+\)", output, re.MULTILINE), name
    assert "The Emergency Access Portal demo is running" in output
    children = descendants(demo.proc.pid)
    assert len(children) >= 6  # okta, pagerduty, worker (+ its pool), beat, web

    demo.proc.send_signal(signal.SIGTERM)

    assert demo.proc.wait(timeout=30) == 0, demo.output()[-4000:]
    assert "run_demo: stopped" in demo.output()
    deadline = time.monotonic() + 5
    while alive(children | demo.seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(children | demo.seen) == set()
    assert get(f"http://127.0.0.1:{demo.port}/healthz")[0] == 0


@pytest.mark.integration
def test_run_demo_stops_everything_when_a_child_dies(demo: Demo):
    demo.wait_until_up()
    children = descendants(demo.proc.pid)

    os.kill(demo.child_pid("beat"), signal.SIGKILL)

    assert demo.proc.wait(timeout=30) == 1
    output = demo.output()
    assert "beat exited unexpectedly (exit code -9)" in output
    assert "CommandError: beat exited unexpectedly" in output
    deadline = time.monotonic() + 5
    while alive(children | demo.seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(children | demo.seen) == set()


@pytest.mark.integration
def test_run_demo_fails_when_a_set_up_step_fails(tmp_path: Path):
    env = demo_env(tmp_path)
    env["DATABASE_URL"] = f"postgres://nobody@127.0.0.1:{free_port()}/nothing"  # nobody listens

    result = subprocess.run(
        [sys.executable, "manage.py", "run_demo", "--port", str(free_port()),
         "--okta-port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode == 1
    assert "CommandError: migrate failed (exit code 1)" in result.stderr
    assert "okta" not in result.stdout  # nothing after the failed step was started


def test_run_demo_refuses_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        with pytest.raises(CommandError, match=rf"127\.0\.0\.1:{port} is already in use"):
            call_command("run_demo", "--port", str(free_port()), "--okta-port", str(port))


def test_run_demo_refuses_a_busy_pagerduty_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        with pytest.raises(CommandError, match=rf"127\.0\.0\.1:{port} is already in use"):
            call_command(
                "run_demo", "--port", str(free_port()), "--okta-port", str(free_port()),
                "--pagerduty-port", str(port),
            )  # fmt: skip


def test_the_children_talk_to_the_sandbox_pagerduty():
    env = RunDemo._child_env(8711, 8712, 0, 8714)
    assert env["PAGERDUTY_API_URL"] == env["PAGERDUTY_EVENTS_URL"] == "https://127.0.0.1:8714"
    assert env["PAGERDUTY_CA_BUNDLE"].endswith("pagerduty/pagerduty-cert.pem")
    assert env["PAGERDUTY_ROUTING_KEY"] and env["PAGERDUTY_API_TOKEN"]


def test_run_demo_refuses_the_same_port_twice():
    port = free_port()

    with pytest.raises(CommandError, match="must differ"):
        call_command("run_demo", "--port", str(port), "--okta-port", str(port))


def test_run_demo_refuses_production(settings):
    settings.PRODUCTION = True

    with pytest.raises(CommandError, match="does not run in production"):
        call_command("run_demo", "--port", str(free_port()), "--okta-port", str(free_port()))
