"""AWS stand-ins for the health, evidence and session tests: a moto server (sso-admin,
identitystore, IAM) and a tiny HTTP stand-in for the AWS access portal. (botocore's
Stubber covers what moto lacks: Health, CloudTrail.) Imported by those tests' conftests."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server, settings, monkeypatch) -> str:
    """Settings pointing every boto3 client at a fresh moto server."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"))
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.AWS_ENDPOINT_URL = moto_server
    settings.IDENTITY_CENTER_REGION = "eu-west-1"
    settings.IDENTITY_STORE_ID = ""
    return moto_server


class _Portal(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.end_headers()
        self.wfile.write(b"<html>AWS access portal</html>")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def access_portal(settings) -> Iterator[Any]:
    """A local stand-in for the access portal; set ``.status`` to make it fail."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Portal)
    server.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    settings.AWS_ACCESS_PORTAL_URL = f"http://127.0.0.1:{server.server_address[1]}/start"
    yield server
    server.shutdown()
    server.server_close()
