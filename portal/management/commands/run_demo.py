"""``manage.py run_demo``: the whole portal on this machine, from nothing, in one command.

Migrates the database (SQLite under PORTAL_VAR_DIR unless DATABASE_URL says
otherwise), starts the web server, the sandbox Okta org and the sandbox PagerDuty
(https, on call: the demo's Omar Oncall), seeds the demo, then
runs a real Celery worker and Celery beat, each a child process whose output is
shown with its name in front; the banner says when all of it is up. Ctrl-C (or
SIGTERM) stops them all; if one of them dies, the others are stopped too and the
command fails.

Every child gets this process's environment, so with REDIS_URL / DATABASE_URL
set the same command runs on Redis and PostgreSQL. Only the Okta and PagerDuty settings
are pinned, to the sandboxes this command starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from federation.aws import demo_world
from federation.sandbox import oidc
from federation.sandbox import pagerduty as sandbox_pagerduty
from federation.sandbox.seed import DEFAULT_APP_ID, DEFAULT_TOKEN
from portal.management.commands.seed_demo import DEFAULT_PASSWORD, DEMO_USERS

STOP_TIMEOUT = 15.0
START_TIMEOUT = 60.0
# How often a set-up step's exit and a service's port are checked: each check is cheap,
# and every step waits on the one before.
POLL_INTERVAL = 0.05
_COLORS = {
    "migrate": 36, "okta": 35, "pagerduty": 31, "seed": 36, "worker": 33, "beat": 34, "web": 32,
}  # fmt: skip
# The okta SDK adapter reads these; the demo's children must use the sandbox instead.
_OKTA_CREDENTIALS = ("OKTA_CLIENT_ID", "OKTA_PRIVATE_KEY", "OKTA_KEY_ID")


class DemoFailed(Exception):
    """A step or a child process failed: stop everything and say why."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# Who is on call in the sandbox PagerDuty's approvers' schedule when the demo starts: Omar
# (level 1: his Ops requests get one approval from the on-call rule), then approver1.
DEMO_ONCALL = ("oncall@example.com:1", "approver1@example.com:2")


def pagerduty_cert_dir() -> Path:
    return Path(settings.VAR_DIR) / "pagerduty"


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    """True when ``url`` answers 200 (proxies from the environment are not used)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            status: int = response.status
            return status == 200
    except OSError:
        return False


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[str]
    pump: threading.Thread
    service: bool  # a long-running process whose exit ends the demo


@dataclass
class Supervisor:
    """Child processes with prefixed output, each in its own process group."""

    write: Callable[[str], None]
    env: dict[str, str]
    cwd: Path
    color: bool
    children: list[Child] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def say(self, name: str, line: str) -> None:
        prefix = f"{name:<7}|"
        if self.color:
            prefix = f"\x1b[{_COLORS.get(name, 37)}m{prefix}\x1b[0m"
        with self.lock:
            self.write(f"{prefix} {line}")

    def start(self, name: str, args: list[str], *, service: bool = True) -> Child:
        # args are the demo's own commands (sys.executable, manage.py, celery), never input.
        proc = subprocess.Popen(  # noqa: S603
            args,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            # Its own group: the terminal's Ctrl-C reaches only us, and we stop the
            # child with everything it started (Celery's pool, runserver's threads).
            process_group=0,
        )
        pump = threading.Thread(target=self._pump, args=(name, proc), daemon=True)
        child = Child(name, proc, pump, service)
        self.children.append(child)
        pump.start()
        self.say(name, f"started (pid {proc.pid}): {' '.join(args[1:])}")
        return child

    def _pump(self, name: str, proc: subprocess.Popen[str]) -> None:
        if proc.stdout is None:  # started with stdout=PIPE, so never
            return
        for line in proc.stdout:
            self.say(name, line.rstrip("\n"))

    def dead_service(self) -> Child | None:
        return next(
            (c for c in self.children if c.service and c.proc.poll() is not None),
            None,
        )

    def stop(self, child: Child, timeout: float = STOP_TIMEOUT) -> None:
        if child.proc.poll() is None:
            self.say(child.name, "stopping")
            child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.say(child.name, f"did not stop within {timeout:.0f}s: killing it")
        self.kill_group(child)
        child.proc.wait()
        child.pump.join(timeout=2)

    @staticmethod
    def kill_group(child: Child) -> None:
        # Whatever is left in the child's process group (e.g. an orphaned pool process).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            self.stop(child)

    def kill_all(self) -> None:
        for child in self.children:
            self.kill_group(child)


class Command(BaseCommand):
    help = (
        "Run the demo: migrate, the sandbox Okta org, seed_demo, a Celery worker and beat, "
        "and the web server. Ctrl-C stops everything."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="web port (default 8000)")
        parser.add_argument(
            "--okta-port", type=int, default=8100, help="sandbox Okta org port (default 8100)"
        )
        parser.add_argument(
            "--password", default=DEFAULT_PASSWORD, help="password of the demo users"
        )
        parser.add_argument(
            "--aws-port",
            type=int,
            default=0,
            help="a moto server on this port holds the demo plan's AWS set-up, so the "
            "readiness checks pass (make demo: 8200; default 0: no AWS)",
        )
        parser.add_argument(
            "--pagerduty-port",
            type=int,
            default=0,
            help="the sandbox PagerDuty's https port (make demo: 8300; default 0: a free one)",
        )

    def handle(self, *args: Any, port: int, okta_port: int, password: str, **opts: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("run_demo is the demo launcher; it does not run in production.")
        self._check_ports(port, okta_port)
        self.aws_port = opts.get("aws_port") or 0
        if self.aws_port:
            if self.aws_port in {port, okta_port}:
                raise CommandError("--aws-port must differ from --port and --okta-port")
            if not port_is_free(self.aws_port):
                raise CommandError(f"127.0.0.1:{self.aws_port} is already in use: pass --aws-port")
        self.pagerduty_port = opts.get("pagerduty_port") or 0
        if self.pagerduty_port:
            if self.pagerduty_port in {port, okta_port, self.aws_port}:
                raise CommandError("--pagerduty-port must differ from the other ports")
            if not port_is_free(self.pagerduty_port):
                raise CommandError(
                    f"127.0.0.1:{self.pagerduty_port} is already in use: pass --pagerduty-port"
                )
        else:
            self.pagerduty_port = free_port()
        self._make_var_dirs()
        self.stop_requested = threading.Event()
        self.supervisor = Supervisor(
            write=self.stdout.write,
            env=self._child_env(port, okta_port, self.aws_port, self.pagerduty_port),
            cwd=Path(settings.BASE_DIR),
            color=self.stdout.isatty() and "NO_COLOR" not in os.environ,
        )
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        failure = None
        try:
            if self._start(port, okta_port, password):
                self._watch()
        except DemoFailed as exc:
            failure = str(exc)
            self.stderr.write(f"run_demo: {failure}; stopping everything")
        finally:
            self.supervisor.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if failure:
            raise CommandError(failure)
        self.stdout.write("run_demo: stopped")

    # --- set-up ------------------------------------------------------------------

    @staticmethod
    def _check_ports(port: int, okta_port: int) -> None:
        if port == okta_port:
            raise CommandError("--port and --okta-port must differ")
        for number, option in ((port, "--port"), (okta_port, "--okta-port")):
            if not 0 < number < 65536:
                raise CommandError(f"{option} {number} is not a TCP port")
            if not port_is_free(number):
                raise CommandError(
                    f"127.0.0.1:{number} is already in use (another demo still running?); "
                    f"stop it or pass {option} with a free port"
                )

    @staticmethod
    def _make_var_dirs() -> None:
        Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
        # runserver --insecure serves static files from the apps; whitenoise only
        # needs its (possibly empty) collectstatic folder to exist.
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent.mkdir(parents=True, exist_ok=True)
        options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        for key in ("data_folder_in", "data_folder_out"):  # the filesystem broker's queue
            if options.get(key):
                Path(options[key]).mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _child_env(
        port: int, okta_port: int, aws_port: int = 0, pagerduty_port: int = 0
    ) -> dict[str, str]:
        env = dict(os.environ)
        for name in _OKTA_CREDENTIALS:
            env.pop(name, None)
        env.update(
            PYTHONUNBUFFERED="1",
            DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "portal.settings"),
            PORTAL_VAR_DIR=str(settings.VAR_DIR),
            IDENTITY_PROVIDER="federation.idp.okta.OktaIdentityProvider",
            OKTA_ORG_URL=f"http://127.0.0.1:{okta_port}",
            OKTA_API_TOKEN=DEFAULT_TOKEN,
            OKTA_AWS_APP_ID=DEFAULT_APP_ID,
            # "Sign in with Okta" through the sandbox org's OpenID Connect endpoints.
            OKTA_OIDC_ISSUER=f"http://127.0.0.1:{okta_port}",
            OKTA_OIDC_CLIENT_ID=oidc.CLIENT_ID,
            OKTA_OIDC_CLIENT_SECRET=oidc.CLIENT_SECRET,
        )
        env.setdefault("SITE_URL", f"http://127.0.0.1:{port}")
        # The health monitor watches the sandbox's simulated Identity Center (the demo
        # controls flip it); an engineer's "AWS access portal" link goes there too.
        env.setdefault(
            "AWS_ACCESS_PORTAL_URL",
            f"http://127.0.0.1:{okta_port}/__sandbox__/identity-center/start",
        )
        env.setdefault("HEALTH_POLL_SECONDS", "10")
        env.setdefault("HEALTH_FAILURES_FOR_DISRUPTED", "2")
        if pagerduty_port:
            # PagerDuty is the sandbox this command starts (https, its own certificate).
            pd_url = f"https://127.0.0.1:{pagerduty_port}"
            env.update(
                PAGERDUTY_API_URL=pd_url,
                PAGERDUTY_EVENTS_URL=pd_url,
                PAGERDUTY_API_TOKEN=sandbox_pagerduty.DEFAULT_TOKEN,
                PAGERDUTY_ROUTING_KEY=sandbox_pagerduty.DEFAULT_ROUTING_KEY,
                PAGERDUTY_CA_BUNDLE=str(pagerduty_cert_dir() / "pagerduty-cert.pem"),
            )
            # A request waiting one minute pages the approvers (checked every 15 s).
            env.setdefault("PAGERDUTY_PAGE_AFTER_MINUTES", "1")
            env.setdefault("PAGERDUTY_CHECK_SECONDS", "15")
        if aws_port:
            # Every AWS call of the portal (readiness) goes to the demo's moto server.
            env.update(
                AWS_ENDPOINT_URL=f"http://127.0.0.1:{aws_port}",
                AWS_ACCESS_KEY_ID="testing",
                # moto's fixed demo credentials, not secrets
                AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106
                AWS_SESSION_TOKEN="testing",  # noqa: S106
                AWS_DEFAULT_REGION="us-east-1",
                AWS_AUDIT_ROLE_NAME=demo_world.AUDIT_ROLE_NAME,
                # AWS managed policies (ReadOnlyAccess, ...) exist in moto only with this.
                MOTO_IAM_LOAD_MANAGED_POLICIES="true",
            )
            env.pop("AWS_PROFILE", None)
        return env

    def _start(self, port: int, okta_port: int, password: str) -> bool:
        """Bring everything up in order; False if a stop was requested meanwhile."""
        python, manage = sys.executable, str(Path(settings.BASE_DIR) / "manage.py")
        sup = self.supervisor
        if not self._step("migrate", [python, manage, "migrate", "--noinput"]):
            return False
        # The web server needs only the migrated database: it boots while the sandbox
        # org starts and seed_demo runs (the banner still waits for both).
        web = sup.start(
            "web", [python, manage, "runserver", "--noreload", "--insecure", f"127.0.0.1:{port}"]
        )
        okta = sup.start(
            "okta",
            [python, "-m", "federation.sandbox", "--host", "127.0.0.1", "--port", str(okta_port),
             "--token", DEFAULT_TOKEN],
        )  # fmt: skip
        if not self._wait(lambda: port_answers(okta_port), okta, "the sandbox Okta org"):
            return False
        oncall = [arg for entry in DEMO_ONCALL for arg in ("--oncall", entry)]
        pager = sup.start(
            "pagerduty",
            [python, "-m", "federation.sandbox.pagerduty", "--host", "127.0.0.1",
             "--port", str(self.pagerduty_port), "--cert-dir", str(pagerduty_cert_dir()),
             *oncall],
        )  # fmt: skip
        if not self._wait(
            lambda: port_answers(self.pagerduty_port), pager, "the sandbox PagerDuty"
        ):
            return False
        if not self._step("seed", [python, manage, "seed_demo", "--password", password]):
            return False
        if self.aws_port:
            aws = sup.start(
                "aws", [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.aws_port)]
            )
            if not self._wait(lambda: port_answers(self.aws_port), aws, "the moto server"):
                return False
            endpoint = f"http://127.0.0.1:{self.aws_port}"
            seed_aws = [python, manage, "seed_demo_aws", "--endpoint", endpoint]
            if not self._step("aws-seed", seed_aws):
                return False
        # The worker and beat start once the demo data is there (their tasks read it).
        celery = [python, "-m", "celery", "-A", "portal"]
        sup.start("worker", [*celery, "worker", "-l", "info", "--concurrency", "2"])
        sup.start(
            "beat",
            [*celery, "beat", "-l", "info", "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME],
        )
        url = f"http://127.0.0.1:{port}"
        if not self._wait(lambda: http_ok(f"{url}/healthz"), web, "the web server"):
            return False
        self._banner(url, okta_port, password)
        return True

    def _step(self, name: str, args: list[str]) -> bool:
        """Run one set-up command to its end."""
        child = self.supervisor.start(name, args, service=False)
        while child.proc.poll() is None:
            if self.stop_requested.wait(POLL_INTERVAL):
                return False
        child.pump.join(timeout=5)
        # Done: forget it, so its (reusable) pid is never signalled at shutdown.
        self.supervisor.children.remove(child)
        if child.proc.returncode != 0:
            raise DemoFailed(f"{name} failed (exit code {child.proc.returncode})")
        return True

    def _wait(self, ready: Callable[[], bool], child: Child, what: str) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while not self.stop_requested.is_set():
            if ready():
                return True
            if child.proc.poll() is not None:
                raise DemoFailed(
                    f"{child.name} exited with code {child.proc.returncode} before {what} answered"
                )
            if time.monotonic() > deadline:
                raise DemoFailed(f"{what} did not answer within {START_TIMEOUT:.0f}s")
            self.stop_requested.wait(POLL_INTERVAL)
        return False

    def _banner(self, url: str, okta_port: int, password: str) -> None:
        users = " / ".join(user.username for user in DEMO_USERS)
        lines = [
            "",
            "The Emergency Access Portal demo is running:",
            f"  portal    {url}/   (Django admin: {url}/admin/ as admin)",
            f"  okta      http://127.0.0.1:{okta_port}   (sandbox org, in memory)",
            f"  pagerduty https://127.0.0.1:{self.pagerduty_port}/   (sandbox PagerDuty: pages, "
            "who is on call; its own certificate)",
            *(
                [f"  aws       http://127.0.0.1:{self.aws_port}   (moto, the demo plan's roles)"]
                if self.aws_port
                else []
            ),
            '  sign in   press "Sign in with Okta" and pick a person (the sandbox says MFA done)',
            f"  or local  {users}, password {password!r},",
            "            then the code of: python manage.py demo_totp USERNAME",
            "  Ctrl-C stops everything.",
            "",
        ]
        with self.supervisor.lock:
            for line in lines:
                self.stdout.write(self.style.SUCCESS(line) if line else line)

    # --- running ---------------------------------------------------------------------

    def _watch(self) -> None:
        while not self.stop_requested.wait(0.5):
            dead = self.supervisor.dead_service()
            if dead is not None:
                raise DemoFailed(
                    f"{dead.name} exited unexpectedly (exit code {dead.proc.returncode})"
                )

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_requested.is_set():
            # Asked twice: no more waiting for a clean shutdown.
            self.stderr.write("run_demo: killing everything now")
            self.supervisor.kill_all()
            return
        self.stdout.write(f"run_demo: {signal.Signals(signum).name} received, stopping everything")
        self.stop_requested.set()
