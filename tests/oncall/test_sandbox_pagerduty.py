"""The sandbox PagerDuty speaks PagerDuty's protocol: https only, the REST API's token,
classic pagination, the on-call filters, and the Events API's validation and dedup."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import urllib.error
import urllib.request

import pytest

from federation.sandbox import pagerduty as sandbox

TOKEN = {"Authorization": f"Token token={sandbox.DEFAULT_TOKEN}"}


@pytest.fixture
def pd(sandbox_pagerduty):
    sandbox_pagerduty.state.reset()
    yield sandbox_pagerduty
    sandbox_pagerduty.state.reset()


def call(pd, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
    tls = ssl.create_default_context(cafile=pd.ca_path)
    request = urllib.request.Request(
        pd.url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, context=tls, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_it_serves_https_only_with_its_own_certificate(pd):
    assert pd.url.startswith("https://127.0.0.1:")
    with pytest.raises(urllib.error.URLError):  # not trusted without its certificate
        urllib.request.urlopen(pd.url + "/users", timeout=5)


def test_the_rest_api_needs_the_token(pd):
    assert call(pd, "GET", "/users")[0] == 401
    assert call(pd, "GET", "/users", headers={"Authorization": "Token token=wrong"})[0] == 401
    assert call(pd, "GET", "/users", headers=TOKEN)[0] == 200


def test_oncalls_filter_by_schedule_policy_and_time_and_include_users(pd):
    now = dt.datetime.now(dt.UTC)
    pd.state.set_oncall(
        [
            {"email": "a@example.com"},
            {"email": "b@example.com", "escalation_level": 2},
            {"email": "c@example.com", "schedule": "POTHER1", "escalation_policy": "POTHER"},
            {"email": "d@example.com", "end": (now - dt.timedelta(hours=1)).isoformat()},
            {"email": "e@example.com", "start": (now + dt.timedelta(hours=1)).isoformat()},
        ]
    )
    status, body = call(pd, "GET", "/oncalls?schedule_ids[]=PSCHED1&include[]=users", headers=TOKEN)
    assert status == 200
    assert [(o["user"]["email"], o["escalation_level"]) for o in body["oncalls"]] == [
        ("a@example.com", 1),
        ("b@example.com", 2),
    ]
    assert body["oncalls"][0]["schedule"]["id"] == "PSCHED1"
    assert body["oncalls"][0]["escalation_policy"]["type"] == "escalation_policy_reference"
    _, body = call(pd, "GET", "/oncalls?escalation_policy_ids[]=POTHER", headers=TOKEN)
    (entry,) = body["oncalls"]
    assert entry["user"]["type"] == "user_reference" and "email" not in entry["user"]


def test_classic_pagination(pd):
    pd.state.set_oncall([{"email": f"u{n}@example.com"} for n in range(5)])
    _, first = call(pd, "GET", "/users?limit=2&offset=0&total=true", headers=TOKEN)
    _, last = call(pd, "GET", "/users?limit=2&offset=4", headers=TOKEN)
    assert (len(first["users"]), first["more"], first["total"]) == (2, True, 5)
    assert (len(last["users"]), last["more"]) == (1, False)


def test_events_are_validated(pd):
    status, body = call(pd, "POST", "/v2/enqueue", {"routing_key": "wrong"})
    assert status == 400 and body["status"] == "invalid event"
    assert "'routing_key' is invalid" in body["errors"]
    status, body = call(
        pd,
        "POST",
        "/v2/enqueue",
        {"routing_key": sandbox.DEFAULT_ROUTING_KEY, "event_action": "trigger", "payload": {}},
    )
    assert status == 400 and "'payload.summary' is missing or blank" in body["errors"]
    assert pd.state.events_for() == []


def test_one_incident_per_dedup_key_until_resolved(pd):
    def send(action: str) -> int:
        event = {"routing_key": sandbox.DEFAULT_ROUTING_KEY, "event_action": action,
                 "dedup_key": "k", "payload": {"summary": "s", "source": "p",
                                               "severity": "critical"}}  # fmt: skip
        status, body = call(pd, "POST", "/v2/enqueue", event)
        assert body["dedup_key"] == "k"
        return status

    assert send("trigger") == send("trigger") == 202
    assert [(i["number"], i["triggers"]) for i in pd.state.incidents.values()] == [(1, 2)]
    send("resolve")
    assert pd.state.incidents["k"]["status"] == "resolved"
    send("trigger")  # after a resolve: a new incident
    assert (pd.state.incidents["k"]["number"], pd.state.incidents["k"]["status"]) == (
        2,
        "triggered",
    )
    assert len(pd.state.events_for("k")) == 4
