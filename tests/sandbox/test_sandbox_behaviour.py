"""How the sandbox org behaves: paging, idempotency, rate limits, auth, the System Log
cursor, fault injection, the control plane and the CLI. Plain HTTP, no Django, no SDK."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from federation.sandbox import SandboxOrg, SandboxServer
from federation.sandbox.filters import FilterError, compile_filter

from .conftest import BEARER, RO_GROUP, TOKEN, call

ROOT = Path(__file__).resolve().parents[2]


def next_after(links: list[str]) -> str | None:
    for link in links:
        if link.endswith('rel="next"'):
            return parse_qs(urlsplit(link.split(";")[0].strip("<>")).query)["after"][0]
    return None


# --- pagination --------------------------------------------------------------------------


def test_pages_link_self_before_next_and_walk_every_item(sandbox: SandboxServer) -> None:
    logins, after, pages = [], None, 0
    while True:
        query = {"limit": "2", **({"after": after} if after else {})}
        reply = call(sandbox.url, "GET", "/api/v1/users", query=query)
        pages += 1
        assert reply.links[0].endswith('rel="self"')
        if len(reply.links) == 2:
            assert reply.links[1].endswith('rel="next"')
        logins += [user["profile"]["login"] for user in reply.json]
        after = next_after(reply.links)
        if after is None:
            break
    assert pages == 3
    assert len(logins) == len(set(logins)) == 6


def test_next_link_keeps_the_query_and_points_at_this_server(sandbox: SandboxServer) -> None:
    reply = call(sandbox.url, "GET", "/api/v1/groups", query={"q": "a", "limit": "1"})

    url = urlsplit(reply.links[1].split(";")[0].strip("<>"))
    assert f"{url.scheme}://{url.netloc}" == sandbox.url
    assert parse_qs(url.query)["q"] == ["a"] and parse_qs(url.query)["limit"] == ["1"]


def test_a_bad_cursor_is_refused(sandbox: SandboxServer) -> None:
    reply = call(sandbox.url, "GET", "/api/v1/users", query={"after": "not-a-cursor"})
    assert reply.status == 400
    assert reply.json["errorCode"] == "E0000001"


def test_group_search_is_exact_but_case_insensitive_like_okta(sandbox: SandboxServer) -> None:
    def names(search: str) -> list[str]:
        reply = call(sandbox.url, "GET", "/api/v1/groups", query={"search": search})
        return [g["profile"]["name"] for g in reply.json]

    assert names(f'profile.name eq "{RO_GROUP}"') == [RO_GROUP]
    assert names(f'profile.name eq "{RO_GROUP.upper()}"') == [RO_GROUP]
    assert names('profile.name eq "aws#111111111111"') == []
    assert names('profile.name sw "aws#" and type eq "OKTA_GROUP"') == [RO_GROUP]


# --- idempotency ---------------------------------------------------------------------------


def test_membership_put_and_delete_are_idempotent_and_log_once(
    sandbox: SandboxServer, ids: dict[str, str]
) -> None:
    path = f"/api/v1/groups/{ids['ro']}/users/{ids['oncall']}"

    assert [call(sandbox.url, "PUT", path).status for _ in range(2)] == [204, 204]
    assert sandbox.member_logins(RO_GROUP) == ["engineer@example.com", "oncall@example.com"]
    assert [call(sandbox.url, "DELETE", path).status for _ in range(2)] == [204, 204]
    assert sandbox.member_logins(RO_GROUP) == ["engineer@example.com"]

    types = [e["eventType"] for e in sandbox.events()]
    assert types == ["group.user_membership.add", "group.user_membership.remove"]


def test_app_lifecycle_is_idempotent(sandbox: SandboxServer, ids: dict[str, str]) -> None:
    for _ in range(2):
        reply = call(sandbox.url, "POST", f"/api/v1/apps/{ids['app']}/lifecycle/activate")
        assert (reply.status, reply.json) == (200, {})
    assert sandbox.app_status(ids["app"]) == "ACTIVE"
    call(sandbox.url, "POST", f"/api/v1/apps/{ids['app']}/lifecycle/deactivate")

    assert sandbox.app_status(ids["app"]) == "INACTIVE"
    assert [e["eventType"] for e in sandbox.events()] == [
        "application.lifecycle.activate",
        "application.lifecycle.deactivate",
    ]


def test_group_create_refuses_a_duplicate_name(sandbox: SandboxServer) -> None:
    body = {"profile": {"name": "aws#9#RO"}}
    assert call(sandbox.url, "POST", "/api/v1/groups", body=body).status == 200

    reply = call(sandbox.url, "POST", "/api/v1/groups", body={"profile": {"name": "AWS#9#ro"}})

    assert reply.status == 400
    assert "already exists" in reply.json["errorCauses"][0]["errorSummary"]


# --- rate limits --------------------------------------------------------------------------


def test_rate_limit_headers_count_down_per_bucket(sandbox: SandboxServer) -> None:
    sandbox.add_faults(rate_limits={"groups": 3})
    first = call(sandbox.url, "GET", "/api/v1/groups")
    second = call(sandbox.url, "GET", "/api/v1/groups")
    users = call(sandbox.url, "GET", "/api/v1/users")

    assert first.headers["X-Rate-Limit-Limit"] == "3"
    assert [first.headers["X-Rate-Limit-Remaining"], second.headers["X-Rate-Limit-Remaining"]] == [
        "2",
        "1",
    ]
    assert users.headers["X-Rate-Limit-Limit"] != "3"  # another bucket
    reset = int(first.headers["X-Rate-Limit-Reset"])
    assert time.time() < reset <= time.time() + 61


def test_an_exhausted_bucket_answers_429_until_its_window_resets() -> None:
    clock = [1_800_000_000.0]
    org = SandboxOrg(token=TOKEN, rate_limits={"logs": 2}, clock=lambda: clock[0])
    with SandboxServer(org).start() as server:
        statuses = [call(server.url, "GET", "/api/v1/logs").status for _ in range(3)]
        limited = call(server.url, "GET", "/api/v1/logs")
        clock[0] += 60
        after_reset = call(server.url, "GET", "/api/v1/logs")

    assert statuses == [200, 200, 429]
    assert limited.json["errorCode"] == "E0000047"
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"
    assert limited.headers["X-Rate-Limit-Reset"] == str(1_800_000_060)
    assert limited.headers["Date"]
    assert after_reset.status == 200


# --- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (f"SSWS {TOKEN}", 200),
        (f"SSWS{TOKEN}", 200),  # what the okta SDK sends
        (f"Bearer {BEARER}", 200),
        ("SSWS wrong", 401),
        (f"SSWS {TOKEN}x", 401),
        (f"Bearer {TOKEN}", 401),
        ("Basic dXNlcjpwYXNz", 401),
        (None, 401),
    ],
)
def test_authorization_forms(
    sandbox: SandboxServer, authorization: str | None, status: int
) -> None:
    reply = call(
        sandbox.url, "GET", "/api/v1/users/oncall@example.com", authorization=authorization
    )
    assert reply.status == status
    if status == 401:
        assert reply.json["errorCode"] == "E0000011"


def _assertion(client_id: str, aud: str, exp_in: int = 300) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"iss": client_id, "sub": client_id, "aud": aud, "exp": time.time() + exp_in}
    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature"


def _token(sandbox: SandboxServer, scope: str, assertion: str) -> tuple[int, dict]:
    import urllib.parse
    import urllib.request

    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
    ).encode()
    request = urllib.request.Request(f"{sandbox.url}/oauth2/v1/token", data=form, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_oauth_service_app_gets_a_scoped_bearer_token(sandbox: SandboxServer) -> None:
    aud = f"{sandbox.url}/oauth2/v1/token"
    status, token = _token(sandbox, "okta.groups.read okta.logs.read", _assertion("0oaportal", aud))
    assert status == 200 and token["token_type"] == "Bearer"
    bearer = f"Bearer {token['access_token']}"

    assert call(sandbox.url, "GET", "/api/v1/groups", authorization=bearer).status == 200
    denied = call(sandbox.url, "GET", "/api/v1/users", authorization=bearer)
    assert denied.status == 403 and denied.json["errorCode"] == "E0000006"
    assert "insufficient_scope" in denied.headers["WWW-Authenticate"]


def test_oauth_token_endpoint_refuses_bad_assertions_and_scopes(sandbox: SandboxServer) -> None:
    aud = f"{sandbox.url}/oauth2/v1/token"
    assert _token(sandbox, "okta.logs.read", _assertion("0oa1", aud, exp_in=-10))[0] == 401
    assert _token(sandbox, "okta.logs.read", _assertion("0oa1", "https://elsewhere"))[0] == 401
    status, body = _token(sandbox, "okta.everything.manage", _assertion("0oa1", aud))
    assert (status, body["error"]) == (400, "invalid_scope")


def test_a_manage_scope_implies_read(sandbox: SandboxServer) -> None:
    aud = f"{sandbox.url}/oauth2/v1/token"
    _, token = _token(sandbox, "okta.groups.manage", _assertion("0oaportal", aud))

    reply = call(
        sandbox.url, "GET", "/api/v1/groups", authorization=f"Bearer {token['access_token']}"
    )

    assert reply.status == 200


# --- System Log ---------------------------------------------------------------------------


def test_polling_always_has_a_next_link_and_a_stable_cursor(
    sandbox: SandboxServer, ids: dict[str, str]
) -> None:
    empty = call(sandbox.url, "GET", "/api/v1/logs")
    cursor = next_after(empty.links)
    assert empty.json == [] and cursor

    again = call(sandbox.url, "GET", "/api/v1/logs", query={"after": cursor})
    assert again.json == [] and next_after(again.links) == cursor

    call(sandbox.url, "PUT", f"/api/v1/groups/{ids['ro']}/users/{ids['oncall']}")
    sandbox.inject_event("user.session.end", "oncall@example.com")
    fresh = call(sandbox.url, "GET", "/api/v1/logs", query={"after": cursor})
    assert [e["eventType"] for e in fresh.json] == [
        "group.user_membership.add",
        "user.session.end",
    ]
    later = next_after(fresh.links)
    assert later != cursor
    assert call(sandbox.url, "GET", "/api/v1/logs", query={"after": later}).json == []


def test_polling_pages_by_limit_without_losing_events(sandbox: SandboxServer) -> None:
    for _ in range(5):
        sandbox.inject_event("user.authentication.sso", "engineer@example.com")
    seen, after = [], None
    for _ in range(4):
        query = {"limit": "2", **({"after": after} if after else {})}
        reply = call(sandbox.url, "GET", "/api/v1/logs", query=query)
        seen += [e["uuid"] for e in reply.json]
        after = next_after(reply.links)
        assert after
    assert len(seen) == len(set(seen)) == 5


def test_bounded_query_ends_without_next(sandbox: SandboxServer) -> None:
    sandbox.inject_event("user.session.start", "engineer@example.com")
    query = {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}

    reply = call(sandbox.url, "GET", "/api/v1/logs", query=query)

    assert len(reply.json) == 1
    assert next_after(reply.links) is None


def test_filter_since_and_sort_order(sandbox: SandboxServer) -> None:
    sandbox.inject_event(
        "user.session.start", "engineer@example.com", published="2020-01-01T00:00:00Z"
    )
    sandbox.inject_event("user.authentication.sso", "engineer@example.com")
    sandbox.inject_event("user.session.end", "engineer@example.com")

    def types(**query: str) -> list[str]:
        return [e["eventType"] for e in call(sandbox.url, "GET", "/api/v1/logs", query=query).json]

    assert types() == ["user.authentication.sso", "user.session.end"]  # default: 7 days
    assert types(since="2019-01-01T00:00:00Z")[0] == "user.session.start"
    assert types(
        since="2019-01-01T00:00:00Z",
        filter='eventType eq "user.session.start" or eventType eq "user.session.end"',
    ) == ["user.session.start", "user.session.end"]
    assert types(since="2019-01-01T00:00:00Z", sortOrder="DESCENDING")[0] == "user.session.end"
    assert types(filter='actor.alternateId eq "oncall@example.com"') == []


def test_injected_events_correlate_by_okta_session(sandbox: SandboxServer, ids: dict) -> None:
    start = sandbox.inject_event("user.session.start", "engineer@example.com")
    sso = sandbox.inject_event("user.authentication.sso", "engineer@example.com")
    end = sandbox.inject_event("user.session.end", "engineer@example.com")
    other = sandbox.inject_event("user.session.start", "engineer@example.com")

    session = start["authenticationContext"]["externalSessionId"]
    assert sso["authenticationContext"]["externalSessionId"] == session
    assert end["authenticationContext"]["externalSessionId"] == session
    assert other["authenticationContext"]["externalSessionId"] != session
    assert sso["target"][0] == {
        "id": ids["app"],
        "type": "AppInstance",
        "alternateId": "AWS Account Federation",
        "displayName": "AWS Account Federation",
    }
    assert sso["actor"]["alternateId"] == "engineer@example.com"


def test_session_revocation_is_logged(sandbox: SandboxServer, ids: dict[str, str]) -> None:
    sandbox.inject_event("user.session.start", "engineer@example.com")

    assert call(sandbox.url, "DELETE", f"/api/v1/users/{ids['engineer']}/sessions").status == 204

    event = sandbox.events()[-1]
    assert event["eventType"] == "user.session.clear"
    assert event["target"][0]["alternateId"] == "engineer@example.com"
    assert event["actor"]["alternateId"] == "portal-service@example.com"
    state = sandbox.snapshot()["users"][0]
    assert (state["sessions_cleared"], state["okta_session"]) == (1, None)


# --- faults -------------------------------------------------------------------------------


def test_fail_next_matches_method_and_path_prefix_and_counts_down(
    sandbox: SandboxServer, ids: dict[str, str]
) -> None:
    sandbox.fail_next("PUT", "/api/v1/groups/", status=503, count=2)
    path = f"/api/v1/groups/{ids['ro']}/users/{ids['oncall']}"

    assert call(sandbox.url, "GET", f"/api/v1/groups/{ids['ro']}").status == 200
    assert [call(sandbox.url, "PUT", path).status for _ in range(3)] == [503, 503, 204]
    assert sandbox.faults()["rules"] == []


def test_a_429_fault_has_a_near_reset(sandbox: SandboxServer) -> None:
    sandbox.fail_next("GET", "/api/v1/apps", status=429, reset_in=2)

    reply = call(sandbox.url, "GET", "/api/v1/apps/0oasandboxawsfed01")

    assert reply.status == 429 and reply.json["errorCode"] == "E0000047"
    assert reply.headers["X-Rate-Limit-Remaining"] == "0"
    assert 0 < int(reply.headers["X-Rate-Limit-Reset"]) - time.time() <= 2


def test_a_fault_can_drop_the_headers_the_sdk_needs(sandbox: SandboxServer) -> None:
    sandbox.fail_next("GET", "/api/v1/apps", status=429, rate_headers=False)

    reply = call(sandbox.url, "GET", "/api/v1/apps/0oasandboxawsfed01")

    assert reply.status == 429
    assert reply.headers.get("Date") is None
    assert reply.headers.get("X-Rate-Limit-Reset") is None


def test_latency_and_clearing_faults_over_the_control_plane(sandbox: SandboxServer) -> None:
    control = f"{sandbox.url}/__sandbox__/faults"
    reply = call(control, "POST", "", body={"latency_ms": 300}, authorization=None)
    assert reply.json["latency_ms"] == 300
    started = time.monotonic()
    call(sandbox.url, "GET", "/api/v1/users/oncall@example.com")
    assert time.monotonic() - started >= 0.3

    call(control, "POST", "", body={"method": "GET", "path": "/api/v1/users", "status": 500})
    assert len(call(control, "GET", "", authorization=None).json["rules"]) == 1
    assert call(control, "DELETE", "", authorization=None).json == {
        "latency_ms": 0,
        "rules": [],
        "rate_limits": sandbox.snapshot()["faults"]["rate_limits"],
        "windows": {},  # clearing the faults opens fresh rate-limit windows too
    }
    assert call(sandbox.url, "GET", "/api/v1/users/oncall@example.com").status == 200


def test_the_call_log_times_every_api_call_and_its_answer(sandbox: SandboxServer) -> None:
    """Benchmarks time grants at Okta and count 429s per family from this log."""
    control = f"{sandbox.url}/__sandbox__"
    call(f"{control}/faults", "POST", "", body={"latency_ms": 50, "rate_limits": {"users": 1}})
    before = time.time()
    assert call(sandbox.url, "GET", "/api/v1/users/oncall@example.com").status == 200
    assert call(sandbox.url, "GET", "/api/v1/users/engineer@example.com").status == 429
    # Only this test's calls: the module's other tests share the org.
    calls = call(f"{control}/calls", "GET", "", body={"since": before}, authorization=None)
    calls = calls.json["calls"]
    assert [(method, path, status) for _, _, method, path, status in calls] == [
        ("GET", "/api/v1/users/oncall@example.com", 200),
        ("GET", "/api/v1/users/engineer@example.com", 429),
    ]
    for received, answered, *_ in calls:
        assert before <= received and answered - received >= 0.05
    later = call(f"{control}/calls", "GET", "", body={"since": time.time()}, authorization=None)
    assert later.json["calls"] == []
    call(f"{control}/reset", "POST", "", authorization=None)
    assert call(f"{control}/calls", "GET", "", authorization=None).json["calls"] == []


def test_a_call_is_in_the_log_before_its_answer_reaches_the_client(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log was written after the answer: a client that read it at once could miss the
    call it had just been answered (a flaky CI run of the test above)."""
    log = sandbox.org.call_log
    record = log.record

    def slow_record(*args: Any) -> None:
        time.sleep(0.3)  # the answering thread is slow to log
        record(*args)

    monkeypatch.setattr(log, "record", slow_record)
    before = time.time()
    assert call(sandbox.url, "GET", "/api/v1/users/oncall@example.com").status == 200
    calls = call(f"{sandbox.url}/__sandbox__/calls", "GET", "", body={"since": before},
                 authorization=None).json["calls"]  # fmt: skip
    assert [(method, path) for _, _, method, path, _ in calls] == [
        ("GET", "/api/v1/users/oncall@example.com")
    ]


# --- control plane ------------------------------------------------------------------------


def test_control_plane_users_members_logs_state_and_reset(sandbox: SandboxServer) -> None:
    base = f"{sandbox.url}/__sandbox__"

    created = call(base, "POST", "/users", body={"login": "new@example.com"}, authorization=None)
    assert created.status == 201 and created.json["profile"]["login"] == "new@example.com"
    added = call(base, "POST", f"/groups/{RO_GROUP.replace('#', '%23')}/users/new@example.com")
    assert added.json == {"changed": True, "members": ["engineer@example.com", "new@example.com"]}
    injected = call(
        base,
        "POST",
        "/logs",
        body={"eventType": "user.session.end", "user": "new@example.com"},
        authorization=None,
    )
    assert injected.status == 201

    state = call(base, "GET", "/state", authorization=None).json
    assert "new@example.com" in [u["login"] for u in state["users"]]
    assert state["log_events"] == 2
    admin_add = sandbox.events()[0]
    assert admin_add["actor"]["alternateId"] == "okta-admin@example.com"
    assert state["apps"][0]["status"] == "INACTIVE"

    assert call(base, "POST", "/reset", authorization=None).json == {"reset": True}
    state = call(base, "GET", "/state", authorization=None).json
    assert "new@example.com" not in [u["login"] for u in state["users"]]
    assert state["log_events"] == 0
    assert call(base, "GET", "/nothing-here", authorization=None).status == 404


def test_changes_behind_the_portals_back_are_logged_as_okta_logs_them(
    sandbox: SandboxServer, ids: dict[str, str]
) -> None:
    """An admin's membership and app changes in the console: the System Log events the
    portal's reconciler follows (Okta's event types and target shapes)."""
    base = f"{sandbox.url}/__sandbox__"
    group = RO_GROUP.replace("#", "%23")
    call(base, "POST", f"/groups/{group}/users/oncall@example.com", authorization=None)
    call(base, "DELETE", f"/groups/{group}/users/oncall@example.com", authorization=None)
    on = call(base, "POST", f"/apps/{ids['app']}/lifecycle/activate", authorization=None)
    assert on.json == {"changed": True, "status": "ACTIVE"}
    again = call(base, "POST", f"/apps/{ids['app']}/lifecycle/activate", authorization=None)
    assert again.json == {"changed": False, "status": "ACTIVE"}
    off = call(base, "POST", f"/apps/{ids['app']}/lifecycle/deactivate", authorization=None)
    assert off.json == {"changed": True, "status": "INACTIVE"}
    assert call(base, "POST", f"/apps/{ids['app']}/lifecycle/delete").status == 404

    events = sandbox.events()
    assert [e["eventType"] for e in events] == [
        "group.user_membership.add",
        "group.user_membership.remove",
        "application.lifecycle.activate",
        "application.lifecycle.deactivate",
    ]
    assert {e["actor"]["alternateId"] for e in events} == {"okta-admin@example.com"}
    user, group_target = events[0]["target"]
    assert (user["type"], user["id"], user["alternateId"]) == (
        "User", ids["oncall"], "oncall@example.com",
    )  # fmt: skip
    assert (group_target["type"], group_target["id"], group_target["displayName"]) == (
        "UserGroup", ids["ro"], RO_GROUP,
    )  # fmt: skip
    (app,) = events[2]["target"]
    assert (app["type"], app["id"]) == ("AppInstance", ids["app"])
    assert events[2]["legacyEventType"] == "app.generic.config.app_activated"


def test_state_counts_requests_per_path(sandbox: SandboxServer) -> None:
    for _ in range(2):
        call(sandbox.url, "GET", "/api/v1/groups")

    assert sandbox.snapshot()["request_counts"] == {"GET /api/v1/groups": 2}


def test_seed_file_replaces_only_the_keys_it_has(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"users": [{"login": "solo@example.com"}]}))
    from federation.sandbox import serve

    with serve(port=0, seed=seed) as server:
        state = server.snapshot()

    assert [u["login"] for u in state["users"]] == ["solo@example.com"]
    assert state["apps"][0]["id"] == "0oasandboxawsfed01"
    assert state["groups"] == []


def test_default_seed_is_the_demo_org() -> None:
    state = SandboxOrg().snapshot()

    assert [u["login"] for u in state["users"]] == [
        "engineer@example.com",
        "approver1@example.com",
        "approver2@example.com",
        "auditor@example.com",
        "oncall@example.com",
        "contractor@example.com",
    ]
    assert state["groups"] == []
    assert state["apps"] == [
        {
            "id": "0oasandboxawsfed01",
            "name": "amazon_aws",
            "label": "AWS Account Federation",
            "status": "INACTIVE",
            "group_ids": [],
        }
    ]
    # Stable across restarts, so a portal database survives a sandbox restart.
    assert SandboxOrg().snapshot()["users"][0]["id"] == state["users"][0]["id"]


def test_filter_parser() -> None:
    event = {"eventType": "a", "target": [{"id": "1"}, {"id": "2"}], "n": 3}
    assert compile_filter('target.id eq "2"')(event)
    assert compile_filter('(eventType eq "b" or n gt 2) and not eventType eq "c"')(event)
    assert not compile_filter("missing pr")(event)
    with pytest.raises(FilterError):
        compile_filter('eventType eq "a" and')


# --- CLI ----------------------------------------------------------------------------------


def test_cli_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "federation.sandbox", "--port", "0", "--token", "cli-token"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        reply = call(
            url, "GET", "/api/v1/users/engineer@example.com", authorization="SSWS cli-token"
        )
        assert reply.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
