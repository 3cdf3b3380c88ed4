"""The demo's side of the sandbox org's control plane (``/__sandbox__/``): what the demo
controls panel plays -- an engineer signing in to AWS, Okta going down, Identity Center
disrupted. Only for the sandbox org (a real Okta org has no such endpoints)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from django.conf import settings

TIMEOUT = 5


class SandboxUnavailable(Exception):
    """The sandbox org did not answer (not running, or not the configured Okta org)."""


def _call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    url = settings.OKTA_ORG_URL.rstrip("/") + "/__sandbox__/" + path
    if not url.startswith("http://127.0.0.1:") and not url.startswith("http://localhost:"):
        raise SandboxUnavailable("the demo controls only talk to a sandbox org on this machine")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback http only, checked above
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        if exc.code == 503 and path.startswith("identity-center"):
            return json.loads(exc.read() or b"null")
        raise SandboxUnavailable(f"the sandbox org answered {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise SandboxUnavailable(f"the sandbox org does not answer ({exc})") from exc


def identity_center_healthy() -> bool:
    return bool(_call("GET", "identity-center")["healthy"])


def set_identity_center(*, healthy: bool) -> None:
    _call("POST", "identity-center", {"healthy": healthy})


def sign_in_to_aws(login: str) -> dict[str, Any]:
    """What Okta logs when someone opens the AWS Account Federation tile."""
    answer: dict[str, Any] = _call(
        "POST", "logs", {"eventType": "user.authentication.sso", "user": login}
    )
    return answer


def okta_down(*, requests: int = 1000) -> None:
    """The next ``requests`` Okta API calls answer 503 (until okta_up)."""
    _call("POST", "faults", {"status": 503, "count": requests})


def okta_up() -> None:
    _call("DELETE", "faults")


def okta_is_down() -> bool:
    return any(rule.get("count", 0) > 0 for rule in _call("GET", "faults").get("rules", []))
