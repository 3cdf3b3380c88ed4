"""A long export is not cut off by the web server (issue 13, "pages at scale").

gunicorn's ``--timeout`` kills a *sync* worker that has not reported to the arbiter for
that long, and a sync worker reports only between requests: an export that streams for
longer (a large history, or an auditor on a slow link) was killed mid-stream and the
auditor got a truncated file. The Dockerfile's CMD runs gthread workers, whose main loop
keeps reporting while a thread streams. Here the image's own gunicorn command runs with
``--timeout 5`` and a client that reads slowly (a small receive buffer), so the export
outlives the timeout whatever the machine's speed; every row must arrive.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from federation.models import Failover, FailoverStatus
from portal.core.access import AUDITORS
from requests_app.models import AccessRequest, Status
from tests.conftest import build_plan, make_user
from tests.faults.conftest import free_port
from tests.harness import ROOT, _require_real_services, stop_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ROWS = 4000
# ~3 KB a row: ~12 MB, well over the kernel's socket buffers (4 MB send, the small receive).
JUSTIFICATION = "Payments are failing in prod and Identity Center is down. " * 50
# gunicorn --timeout, seconds: a worker's main loop reports every second, so not less.
TIMEOUT = 5
# At most ~0.8 MB/s: a sync worker waits on the socket for ~10 s, twice TIMEOUT.
READ_BYTES, READ_PAUSE = 8 * 1024, 0.01


def dockerfile_web_command(port: int) -> list[str]:
    """The image's CMD, on a loopback port, with this test's gunicorn --timeout."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", "")
    command = json.loads(re.search(r"^CMD (\[.*?\])", text, re.M | re.S).group(1))
    assert command[0] == "gunicorn"
    command = [c.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for c in command]
    return [sys.executable, "-m", "gunicorn", *command[1:], "--timeout", str(TIMEOUT)]


def slow_get(port: int, path: str, session_key: str) -> tuple[bytes, bytes, float]:
    """HTTP/1.0 GET read slowly through a small receive buffer: (headers, body, seconds).
    HTTP/1.0: no chunking, the body ends when the server closes the connection."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.settimeout(180)  # a loaded machine: the stream pauses, it must not be given up
    sock.connect(("127.0.0.1", port))
    started = time.monotonic()
    request = f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nCookie: sessionid={session_key}\r\n"
    sock.sendall(f"{request}\r\n".encode())
    received = bytearray()
    try:
        while chunk := sock.recv(READ_BYTES):
            received += chunk
            time.sleep(READ_PAUSE)
    except ConnectionResetError:
        pass  # the worker was killed: what arrived is all there is
    finally:
        sock.close()
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    return head, body, time.monotonic() - started


@pytest.fixture
def many_requests(transactional_db):
    plan = build_plan()
    requester = make_user("requester", "requester@example.com")
    auditor = make_user("auditor", "auditor@example.com", AUDITORS)
    failover = Failover.objects.create(
        opened_by=auditor, reason="IdC down", status=FailoverStatus.CLOSED
    )
    role = next(iter(plan.roles.values()))
    fields = {
        "requester": requester, "role": role, "failover": failover,
        "justification": JUSTIFICATION, "duration_minutes": 60, "status": Status.EXPIRED,
        "okta_login": requester.email,
    }  # fmt: skip
    AccessRequest.objects.bulk_create(
        [AccessRequest(ticket=f"INC-{n}", **fields) for n in range(ROWS)]
    )
    session = SessionStore()
    session[SESSION_KEY] = str(auditor.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = auditor.get_session_auth_hash()
    session.create()
    return session.session_key


def test_a_long_export_arrives_whole(many_requests, tmp_path):
    db_url, broker = _require_real_services()
    port = free_port()
    env = {
        **os.environ, "DATABASE_URL": db_url, "REDIS_URL": broker, "CELERY_BROKER_URL": broker,
        "PORTAL_VAR_DIR": str(tmp_path), "ALLOWED_HOSTS": "127.0.0.1",
    }  # fmt: skip
    log = tmp_path / "web.log"
    with open(log, "w") as out:
        web = subprocess.Popen(
            dockerfile_web_command(port), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: _answers(port) or web.poll() is not None, timeout=120, what="gunicorn")
        assert web.poll() is None, Path(log).read_text()[-3000:]
        head, body, seconds = slow_get(port, "/auditor/requests.csv", many_requests)
    finally:
        stop_process(web)
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    killed = "WORKER TIMEOUT" in Path(log).read_text()
    assert seconds > TIMEOUT, f"the export took {seconds:.1f} s: too fast to test the timeout"
    assert len(rows) == ROWS, f"{len(rows)} of {ROWS} rows arrived in {seconds:.1f} s"
    assert not killed, Path(log).read_text()[-3000:]
    assert rows[-1]["justification"] == JUSTIFICATION


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
