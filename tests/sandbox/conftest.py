"""A sandbox org on a free loopback port and a plain HTTP client for it (no Django, no SDK)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from federation.sandbox import SandboxServer, merge_seed, serve

TOKEN = "contract-test-token"
BEARER = "static-bearer-token"
RO_GROUP = "aws#111111111111#RO"
# The default seed plus groups of every type, one of them assigned to the app.
SEED = merge_seed(
    {
        "groups": [
            {"name": "Everyone", "type": "BUILT_IN"},
            {"name": "AD Domain Admins", "type": "APP_GROUP"},
            {"name": RO_GROUP, "description": "read-only", "members": ["engineer@example.com"]},
        ],
    }
)
SEED["apps"][0]["groups"] = [RO_GROUP]

# Loopback only: never through a proxy from the environment.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def links(self) -> list[str]:
        return self.headers.get_all("Link") or []


def call(
    base: str,
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    body: Any = None,
    authorization: str | None = f"SSWS {TOKEN}",
) -> Response:
    """One request; HTTP errors come back as responses, not exceptions."""
    url = base + path + ("?" + urlencode(query, quote_via=quote) if query else "")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with _opener.open(request, timeout=15) as reply:
            return Response(reply.status, reply.headers, reply.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.headers, error.read())


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = serve(port=0, token=TOKEN, seed=SEED, bearer_tokens=(BEARER,))
    yield server
    server.shutdown()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The session's sandbox, back to its seed for this test."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def ids(sandbox: SandboxServer) -> dict[str, str]:
    """Ids of the seeded objects, for path templates."""
    org = sandbox.org
    group = {g["profile"]["name"]: g["id"] for g in org.groups.values()}
    return {
        "engineer": org.user("engineer@example.com")["id"],
        "oncall": org.user("oncall@example.com")["id"],
        "ro": group[RO_GROUP],
        "app_group": group["AD Domain Admins"],
        "everyone": group["Everyone"],
        "app": next(iter(org.apps)),
    }
