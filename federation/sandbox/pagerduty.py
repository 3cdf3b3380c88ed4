"""A sandbox PagerDuty: the subset of PagerDuty's APIs the portal uses, in memory, over https.

The sibling of the sandbox Okta org, for tests and ``make demo``: the real client
(``pagerduty.RestApiV2Client`` / ``EventsApiV2Client``) talks to it exactly as to
PagerDuty.

- REST API v2 (``Authorization: Token token=...``, 401 otherwise; classic pagination
  ``limit`` / ``offset`` / ``more``): ``GET /oncalls`` (``schedule_ids[]``,
  ``escalation_policy_ids[]``, ``user_ids[]``, ``earliest``, ``include[]=users`` to get
  the users with their emails; only entries on call now), ``GET /users`` (``query``).
- Events API v2: ``POST /v2/enqueue`` (``routing_key``, ``event_action`` trigger /
  acknowledge / resolve, ``dedup_key``; 202 with the dedup key, 400 for an invalid
  event). One incident per dedup key: a trigger while it is open joins it (PagerDuty's
  deduplication); a trigger after it was resolved opens a new one.
- The sandbox's own controls under ``/__sandbox__/``: ``GET events`` (every event
  received, for tests and the demo), ``GET incidents``, ``POST oncalls`` (who is on
  call: a list of entries), ``POST faults`` (``{"status": 503}`` or ``{"delay_ms": N}``
  for the REST API; ``{}`` clears), ``POST reset``. ``GET /`` is a page listing the
  incidents and events (the demo's "pager").

https only, as the client refuses anything else: a self-signed certificate for
127.0.0.1 / localhost is made at start and written to ``ca_path`` (the portal's
``PAGERDUTY_CA_BUNDLE``). Run it as a process: ``python -m federation.sandbox.pagerduty
--port 8300 --ca-out var/pagerduty-ca.pem``; it needs no Django settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import ipaddress
import json
import ssl
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .process import serve_until_stopped

DEFAULT_TOKEN = "sandbox-pagerduty-token"  # noqa: S105 - the sandbox's fixed demo token
DEFAULT_ROUTING_KEY = "sandbox-approvers-routing-key"
# The demo's approvers: one escalation policy, one schedule (its first tier).
APPROVERS_POLICY = "PAPPROV"
APPROVERS_SCHEDULE = "PSCHED1"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class PagerDutyState:
    """The account's users, who is on call, and what the Events API received."""

    token: str = DEFAULT_TOKEN
    routing_keys: tuple[str, ...] = (DEFAULT_ROUTING_KEY,)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, str] = field(default_factory=dict)
    schedules: dict[str, str] = field(default_factory=dict)
    oncall: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    fault: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.users.clear()
            self.oncall.clear()
            self.events.clear()
            self.incidents.clear()
            self.fault.clear()
            self.policies = {APPROVERS_POLICY: "Emergency access approvers"}
            self.schedules = {APPROVERS_SCHEDULE: "Emergency approvers (primary)"}

    # --- set-up, for tests and the demo ---------------------------------------------

    def add_user(self, email: str, name: str = "") -> str:
        with self.lock:
            for user in self.users.values():
                if user["email"].lower() == email.lower():
                    return str(user["id"])
            user_id = f"PU{len(self.users) + 1:05d}"
            self.users[user_id] = {"id": user_id, "name": name or email, "email": email}
            return user_id

    def set_oncall(self, entries: list[dict[str, Any]]) -> None:
        """Replace who is on call: entries of ``email`` (the user is created if new),
        ``escalation_policy`` (default the approvers'), ``escalation_level`` (1),
        ``schedule`` (default the approvers' schedule; ``None`` for a direct user
        target), ``start`` / ``end`` (ISO; default: from an hour ago for eight hours)."""
        now = _now()
        rows = []
        for entry in entries:
            user_id = self.add_user(str(entry["email"]), str(entry.get("name", "")))
            rows.append(
                {
                    "user": user_id,
                    "escalation_policy": entry.get("escalation_policy", APPROVERS_POLICY),
                    "escalation_level": int(entry.get("escalation_level", 1)),
                    "schedule": entry.get("schedule", APPROVERS_SCHEDULE),
                    "start": entry.get("start", _iso(now - dt.timedelta(hours=1))),
                    "end": entry.get("end", _iso(now + dt.timedelta(hours=8))),
                }
            )
        with self.lock:
            for row in rows:
                self.policies.setdefault(row["escalation_policy"], row["escalation_policy"])
                if row["schedule"]:
                    self.schedules.setdefault(row["schedule"], row["schedule"])
            self.oncall = rows

    def events_for(self, dedup_key: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if dedup_key is None or e["dedup_key"] == dedup_key]

    # --- the APIs ----------------------------------------------------------------------

    def _user_ref(self, user_id: str, include: bool) -> dict[str, Any]:
        user = self.users[user_id]
        ref = {
            "id": user_id,
            "type": "user" if include else "user_reference",
            "summary": user["name"],
            "self": f"https://api.pagerduty.com/users/{user_id}",
            "html_url": f"https://sandbox.pagerduty.com/users/{user_id}",
        }
        if include:
            ref.update(name=user["name"], email=user["email"], time_zone="Etc/UTC")
        return ref

    def list_oncalls(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        schedules = set(query.get("schedule_ids[]", []))
        policies = set(query.get("escalation_policy_ids[]", []))
        users = set(query.get("user_ids[]", []))
        include = "users" in query.get("include[]", [])
        earliest = query.get("earliest", ["false"])[-1] == "true"
        now = _now()
        found: list[dict[str, Any]] = []
        seen: set[tuple[str, str, int]] = set()
        with self.lock:
            rows = sorted(self.oncall, key=lambda r: r["start"] or "")
            for row in rows:
                start, end = _parse(row["start"]), _parse(row["end"])
                if (start and start > now) or (end and end <= now):
                    continue
                if schedules and row["schedule"] not in schedules:
                    continue
                if policies and row["escalation_policy"] not in policies:
                    continue
                if users and row["user"] not in users:
                    continue
                key = (row["user"], row["escalation_policy"], row["escalation_level"])
                if earliest and key in seen:
                    continue
                seen.add(key)
                schedule = row["schedule"]
                found.append(
                    {
                        "escalation_policy": {
                            "id": row["escalation_policy"],
                            "type": "escalation_policy_reference",
                            "summary": self.policies.get(row["escalation_policy"], ""),
                        },
                        "escalation_level": row["escalation_level"],
                        "schedule": {
                            "id": schedule,
                            "type": "schedule_reference",
                            "summary": self.schedules.get(schedule, ""),
                        }
                        if schedule
                        else None,
                        "user": self._user_ref(row["user"], include),
                        "start": row["start"] if schedule else None,
                        "end": row["end"] if schedule else None,
                    }
                )
        return found

    def list_users(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        text = query.get("query", [""])[-1].lower()
        with self.lock:
            return [
                self._user_ref(uid, True)
                for uid, u in sorted(self.users.items())
                if text in u["email"].lower() or text in u["name"].lower()
            ]

    def enqueue(self, body: Any) -> tuple[int, dict[str, Any]]:
        errors: list[str] = []
        if not isinstance(body, dict):
            return 400, {"status": "invalid event", "message": "Event object is invalid"}
        if body.get("routing_key") not in self.routing_keys:
            errors.append("'routing_key' is invalid")
        action = body.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is missing or blank")
        dedup_key = body.get("dedup_key")
        payload = body.get("payload") or {}
        if action == "trigger":
            for key in ("summary", "source", "severity"):
                if not payload.get(key):
                    errors.append(f"'payload.{key}' is missing or blank")
            dedup_key = dedup_key or uuid.uuid4().hex
        elif action in ("acknowledge", "resolve") and not dedup_key:
            errors.append("'dedup_key' is missing or blank")
        if errors:
            return 400, {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": errors,
            }
        received, dedup_key = _iso(_now()), str(dedup_key)
        with self.lock:
            self.events.append(
                {
                    "event_action": action,
                    "dedup_key": dedup_key,
                    "summary": payload.get("summary", ""),
                    "custom_details": payload.get("custom_details"),
                    "links": body.get("links", []),
                    "received_at": received,
                }
            )
            incident = self.incidents.get(dedup_key)
            if action == "trigger":
                if incident is None or incident["status"] == "resolved":
                    number = 1 + max((i["number"] for i in self.incidents.values()), default=0)
                    self.incidents[dedup_key] = incident = {
                        "number": number,
                        "dedup_key": dedup_key,
                        "summary": payload["summary"],
                        "status": "triggered",
                        "created_at": received,
                        "alerts": 0,
                        "triggers": 0,
                    }
                incident["triggers"] += 1
            elif incident is not None and incident["status"] != "resolved":
                incident["status"] = "resolved" if action == "resolve" else "acknowledged"
        return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}


# --- https ----------------------------------------------------------------------------


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost: (cert, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandbox PagerDuty")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "pagerduty-cert.pem", directory / "pagerduty-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: PagerDutyState) -> None:
        self.state = state
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    server_version = "sandbox-pagerduty"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return None

    def _handle(self, method: str) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        path, query = parts.path.rstrip("/") or "/", parse_qs(parts.query)
        body = self._body() if method == "POST" else None
        if path.startswith("/__sandbox__/"):
            self._reply(*control(state, method, path.removeprefix("/__sandbox__/"), body))
            return
        if (method, path) == ("GET", "/"):
            self._reply(200, console(state), "text/html; charset=utf-8")
            return
        if (method, path) == ("POST", "/v2/enqueue"):
            self._reply(*state.enqueue(body))
            return
        if method != "GET" or path not in ("/oncalls", "/users"):
            self._reply(404, {"error": {"message": "Not Found", "code": 2100}})
            return
        if self.headers.get("Authorization") != f"Token token={state.token}":
            self._reply(401, {"error": {"message": "Unauthorized", "code": 2006}})
            return
        fault = dict(state.fault)
        if fault.get("delay_ms"):
            time.sleep(int(fault["delay_ms"]) / 1000)
        if fault.get("status"):
            self._reply(int(fault["status"]), {"error": {"message": "Sandbox fault", "code": 2}})
            return
        name = path.strip("/")
        items = state.list_oncalls(query) if name == "oncalls" else state.list_users(query)
        limit = max(1, min(int(query.get("limit", ["25"])[-1]), 100))
        offset = max(0, int(query.get("offset", ["0"])[-1]))
        page = items[offset : offset + limit]
        self._reply(
            200,
            {
                name: page,
                "limit": limit,
                "offset": offset,
                "more": offset + limit < len(items),
                "total": len(items) if query.get("total", ["false"])[-1] == "true" else None,
            },
        )


def control(state: PagerDutyState, method: str, what: str, body: Any) -> tuple[int, Any]:
    if (method, what) == ("GET", "events"):
        return 200, state.events_for()
    if (method, what) == ("GET", "incidents"):
        with state.lock:
            return 200, list(state.incidents.values())
    if (method, what) == ("POST", "oncalls") and isinstance(body, list):
        state.set_oncall(body)
        return 200, {"oncall": len(body)}
    if (method, what) == ("POST", "faults") and isinstance(body, dict):
        with state.lock:
            state.fault = dict(body)
        return 200, state.fault
    if (method, what) == ("POST", "reset"):
        state.reset()
        return 200, {}
    return 404, {"error": f"no sandbox control {method} {what}"}


def console(state: PagerDutyState) -> str:
    """The sandbox's one page: incidents and the events that made them."""
    with state.lock:
        incidents = sorted(state.incidents.values(), key=lambda i: -int(i["number"]))
        events = list(reversed(state.events))
        oncall = [(state.users[r["user"]]["email"], r) for r in state.oncall]
    esc = html.escape
    rows = "".join(
        f"<tr><td>#{i['number']}</td><td>{esc(i['status'])}</td><td>{esc(i['summary'])}</td>"
        f"<td><code>{esc(i['dedup_key'])}</code></td><td>{i['triggers']}</td>"
        f"<td>{esc(i['created_at'])}</td></tr>"
        for i in incidents
    )
    log = "".join(
        f"<tr><td>{esc(e['received_at'])}</td><td>{esc(str(e['event_action']))}</td>"
        f"<td><code>{esc(str(e['dedup_key']))}</code></td><td>{esc(e['summary'])}</td></tr>"
        for e in events
    )
    who = "".join(
        f"<tr><td>{esc(email)}</td><td>{esc(r['escalation_policy'])}</td>"
        f"<td>{r['escalation_level']}</td><td>{esc(str(r['schedule']))}</td>"
        f"<td>{esc(str(r['start']))} to {esc(str(r['end']))}</td></tr>"
        for email, r in oncall
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5"><title>Sandbox PagerDuty</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .6em;text-align:left}}
</style></head><body><h1>Sandbox PagerDuty</h1>
<h2>Incidents</h2><table id="incidents"><tr><th>#</th><th>status</th><th>summary</th>
<th>dedup key</th><th>triggers</th><th>opened</th></tr>{rows}</table>
<h2>On call now</h2><table id="oncall"><tr><th>user</th><th>escalation policy</th>
<th>level</th><th>schedule</th><th>shift</th></tr>{who}</table>
<h2>Events received</h2><table id="events"><tr><th>received</th><th>action</th>
<th>dedup key</th><th>summary</th></tr>{log}</table></body></html>"""


# --- the demo's side of the control plane (portal/demo_views.py) -------------------------


class SandboxUnavailable(Exception):
    """The sandbox PagerDuty did not answer (or is not a sandbox on this machine)."""


def call_control(base_url: str, ca_path: str, method: str, what: str, body: Any = None) -> Any:
    """``/__sandbox__/<what>`` of the sandbox PagerDuty at ``base_url`` (https, loopback)."""
    if not base_url.startswith("https://127.0.0.1:"):
        raise SandboxUnavailable("the demo controls only talk to a sandbox PagerDuty here")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - https on loopback, checked above
        f"{base_url}/__sandbox__/{what}", data=data, method=method,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    try:
        tls = ssl.create_default_context(cafile=ca_path)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=tls)
        )
        with opener.open(request, timeout=3) as response:
            return json.loads(response.read() or b"null")
    except (OSError, ValueError) as exc:
        raise SandboxUnavailable(str(exc)) from exc


class PagerDutySandbox:
    """A running sandbox: ``.url`` (both APIs), ``.ca_path``, ``.state``, ``.shutdown()``."""

    def __init__(
        self, state: PagerDutyState, host: str, port: int, cert_dir: Path | None = None
    ) -> None:
        self.state = state
        self._tmp = None if cert_dir else tempfile.TemporaryDirectory(prefix="sandbox-pd-")
        directory = cert_dir or Path(self._tmp.name)  # type: ignore[union-attr]
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_path, key_path = make_certificate(directory)
        self._httpd = _HTTPServer((host, port), state)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self.ca_path, key_path)
        self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="sandbox-pd", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"https://{host!s}:{port}"

    def start(self) -> PagerDutySandbox:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    token: str = DEFAULT_TOKEN,
    routing_key: str = DEFAULT_ROUTING_KEY,
    cert_dir: Path | None = None,
) -> PagerDutySandbox:
    """Start a sandbox PagerDuty in a daemon thread (``port=0`` picks a free port)."""
    state = PagerDutyState(token=token, routing_keys=(routing_key,))
    state.reset()
    return PagerDutySandbox(state, host, port, cert_dir).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m federation.sandbox.pagerduty")
    parser.add_argument("--host", default="127.0.0.1", help="keep it on loopback")
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the REST API token to accept")
    parser.add_argument("--routing-key", default=DEFAULT_ROUTING_KEY)
    parser.add_argument(
        "--cert-dir", type=Path, required=True, help="where its certificate (the CA) is written"
    )
    parser.add_argument(
        "--oncall", action="append", default=[], metavar="EMAIL[:LEVEL]",
        help="on call in the approvers' schedule at LEVEL (default 1); repeatable",
    )  # fmt: skip
    args = parser.parse_args(argv)
    server = serve(
        args.host, args.port, token=args.token, routing_key=args.routing_key, cert_dir=args.cert_dir
    )
    if args.oncall:
        entries = [entry.rpartition(":") if ":" in entry else ("", "", entry)
                   for entry in args.oncall]  # fmt: skip
        server.state.set_oncall(
            [
                {"email": email or level, "escalation_level": int(level) if email else 1}
                for email, _, level in entries
            ]
        )
    serve_until_stopped(
        server, f"sandbox PagerDuty listening on {server.url} (certificate {server.ca_path})"
    )


if __name__ == "__main__":
    main()
