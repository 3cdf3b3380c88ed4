"""The sandbox's real HTTP responses, validated against Okta's OpenAPI document.

Every endpoint, success and error, goes through openapi-core's response
validator (status must be documented for the operation, JSON body must match
its schema; unknown properties are refused where the schema does not allow
them). Statuses the document does not list for an operation (401, 500) are
validated against ``#/components/schemas/Error`` with openapi-schema-validator.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import MissingData
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from federation.sandbox import SandboxServer

from .conftest import RO_GROUP, Response, call

SPEC_PATH = Path(__file__).resolve().parents[1] / "okta" / "api.yaml"
# Requests are matched against the document's server template, not the sandbox's URL.
SPEC_HOST = "https://sandbox.okta.com"
ERROR_KEYS = {"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}


@pytest.fixture(scope="module")
def spec_dict() -> dict[str, Any]:
    # The document is 3 MB: load it once per module (libyaml's loader when available).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=loader)  # noqa: S506 - a safe loader


@pytest.fixture(scope="module")
def openapi(spec_dict: dict[str, Any]) -> OpenAPI:
    # Validating the whole document itself is slow and not what we test.
    config = Config(spec_validator_cls=None, additional_properties_default_policy="forbid")
    return OpenAPI.from_dict(spec_dict, config=config)


@pytest.fixture(scope="module")
def error_schema(spec_dict: dict[str, Any]) -> OAS30Validator:
    registry = Registry().with_resource(
        "urn:okta", Resource.from_contents(spec_dict, default_specification=DRAFT4)
    )
    return OAS30Validator({"$ref": "urn:okta#/components/schemas/Error"}, registry=registry)


def validate(openapi: OpenAPI, method: str, path: str, query: dict | None, reply: Response) -> None:
    """Raise if ``reply`` is not a documented response of the operation."""
    request = MockRequest(SPEC_HOST, method.lower(), path, args=query or {})
    response = MockResponse(
        reply.body,
        status_code=reply.status,
        headers=dict(reply.headers.items()),
        content_type=reply.headers.get("Content-Type") or "application/json",
    )
    try:
        openapi.validate_response(request, response)
    except MissingData:
        # Okta's document gives 204s an empty "content" map, which openapi-core reads as
        # "a body is required". Reaching this means the 204 itself is documented.
        if reply.status != 204 or reply.body:
            raise


def assert_okta_headers(reply: Response) -> None:
    for name in (
        "X-Rate-Limit-Limit",
        "X-Rate-Limit-Remaining",
        "X-Rate-Limit-Reset",
        "X-Okta-Request-Id",
        "Date",
    ):
        assert reply.headers.get(name), f"missing {name}"
    assert int(reply.headers["X-Rate-Limit-Reset"]) > 1_600_000_000
    if reply.status != 204:
        assert reply.headers["Content-Type"].startswith("application/json")


def _inject_events(sandbox: SandboxServer, ids: dict[str, str]) -> None:
    sandbox.org.inject_event("user.session.start", "engineer@example.com")
    sandbox.org.inject_event("user.authentication.sso", "engineer@example.com")
    call(sandbox.url, "PUT", f"/api/v1/groups/{ids['ro']}/users/{ids['oncall']}")


Setup = Callable[[SandboxServer, dict[str, str]], None] | None
# id, method, path (formatted with ids), query, body, status, errorCode, setup
CASES: list[tuple[str, str, str, dict | None, Any, int, str, Setup]] = [
    ("getUser-id", "GET", "/api/v1/users/{engineer}", None, None, 200, "", None),
    ("getUser-login", "GET", "/api/v1/users/engineer@example.com", None, None, 200, "", None),
    ("getUser-404", "GET", "/api/v1/users/nobody@example.com", None, None, 404, "E0000007", None),
    (
        "listUsers-search",
        "GET",
        "/api/v1/users",
        {"search": 'profile.login eq "engineer@example.com"'},
        None,
        200,
        "",
        None,
    ),
    ("listUsers-q", "GET", "/api/v1/users", {"q": "appro", "limit": "1"}, None, 200, "", None),
    ("listUsers-all", "GET", "/api/v1/users", None, None, 200, "", None),
    ("revokeUserSessions", "DELETE", "/api/v1/users/{engineer}/sessions", None, None, 204, "", None),
    ("revokeUserSessions-404", "DELETE", "/api/v1/users/00unope/sessions", None, None, 404, "E0000007", None),
    ("listGroups", "GET", "/api/v1/groups", None, None, 200, "", None),
    (
        "listGroups-search",
        "GET",
        "/api/v1/groups",
        {"search": f'profile.name eq "{RO_GROUP}"'},
        None,
        200,
        "",
        None,
    ),
    ("listGroups-q-paged", "GET", "/api/v1/groups", {"q": "A", "limit": "1"}, None, 200, "", None),
    (
        "addGroup",
        "POST",
        "/api/v1/groups",
        None,
        {"profile": {"name": "aws#222222222222#Ops", "description": "ops"}},
        200,
        "",
        None,
    ),
    ("addGroup-duplicate", "POST", "/api/v1/groups", None, {"profile": {"name": RO_GROUP}}, 400, "E0000001", None),
    ("addGroup-blank", "POST", "/api/v1/groups", None, {"profile": {}}, 400, "E0000001", None),
    ("getGroup", "GET", "/api/v1/groups/{ro}", None, None, 200, "", None),
    ("getGroup-404", "GET", "/api/v1/groups/00gnope", None, None, 404, "E0000007", None),
    ("listGroupUsers", "GET", "/api/v1/groups/{ro}/users", None, None, 200, "", None),
    ("listGroupUsers-404", "GET", "/api/v1/groups/00gnope/users", None, None, 404, "E0000007", None),
    ("assignUserToGroup", "PUT", "/api/v1/groups/{ro}/users/{oncall}", None, None, 204, "", None),
    ("assignUserToGroup-present", "PUT", "/api/v1/groups/{ro}/users/{engineer}", None, None, 204, "", None),
    ("assignUserToGroup-app-group", "PUT", "/api/v1/groups/{app_group}/users/{oncall}", None, None, 403, "E0000006", None),
    ("assignUserToGroup-built-in", "PUT", "/api/v1/groups/{everyone}/users/{oncall}", None, None, 403, "E0000006", None),
    ("assignUserToGroup-no-group", "PUT", "/api/v1/groups/00gnope/users/{oncall}", None, None, 404, "E0000007", None),
    ("assignUserToGroup-no-user", "PUT", "/api/v1/groups/{ro}/users/00unope", None, None, 404, "E0000007", None),
    ("unassignUserFromGroup", "DELETE", "/api/v1/groups/{ro}/users/{engineer}", None, None, 204, "", None),
    ("unassignUserFromGroup-absent", "DELETE", "/api/v1/groups/{ro}/users/{oncall}", None, None, 204, "", None),
    ("unassignUserFromGroup-app-group", "DELETE", "/api/v1/groups/{app_group}/users/{oncall}", None, None, 403, "E0000006", None),
    ("unassignUserFromGroup-404", "DELETE", "/api/v1/groups/00gnope/users/{oncall}", None, None, 404, "E0000007", None),
    ("getApplication", "GET", "/api/v1/apps/{app}", None, None, 200, "", None),
    ("getApplication-404", "GET", "/api/v1/apps/0oanope", None, None, 404, "E0000007", None),
    ("activateApplication", "POST", "/api/v1/apps/{app}/lifecycle/activate", None, None, 200, "", None),
    ("deactivateApplication", "POST", "/api/v1/apps/{app}/lifecycle/deactivate", None, None, 200, "", None),
    ("activateApplication-404", "POST", "/api/v1/apps/0oanope/lifecycle/activate", None, None, 404, "E0000007", None),
    ("deactivateApplication-404", "POST", "/api/v1/apps/0oanope/lifecycle/deactivate", None, None, 404, "E0000007", None),
    ("listApplicationGroupAssignments", "GET", "/api/v1/apps/{app}/groups", None, None, 200, "", None),
    ("listApplicationGroupAssignments-404", "GET", "/api/v1/apps/0oanope/groups", None, None, 404, "E0000007", None),
    ("assignGroupToApplication", "PUT", "/api/v1/apps/{app}/groups/{app_group}", None, None, 200, "", None),
    ("assignGroupToApplication-no-group", "PUT", "/api/v1/apps/{app}/groups/00gnope", None, None, 404, "E0000007", None),
    ("getApplicationGroupAssignment", "GET", "/api/v1/apps/{app}/groups/{ro}", None, None, 200, "", None),
    ("getApplicationGroupAssignment-404", "GET", "/api/v1/apps/{app}/groups/{everyone}", None, None, 404, "E0000007", None),
    ("unassignApplicationFromGroup", "DELETE", "/api/v1/apps/{app}/groups/{ro}", None, None, 204, "", None),
    ("unassignApplicationFromGroup-404", "DELETE", "/api/v1/apps/{app}/groups/{everyone}", None, None, 404, "E0000007", None),
    ("listLogEvents", "GET", "/api/v1/logs", None, None, 200, "", _inject_events),
    (
        "listLogEvents-filtered",
        "GET",
        "/api/v1/logs",
        {
            "since": "2000-01-01T00:00:00.000Z",
            "filter": 'eventType eq "user.session.start" or eventType eq "group.user_membership.add"',
            "limit": "1",
            "sortOrder": "ASCENDING",
        },
        None,
        200,
        "",
        _inject_events,
    ),
    ("listLogEvents-bad-filter", "GET", "/api/v1/logs", {"filter": "eventType is x"}, None, 400, "E0000031", None),
    ("listLogEvents-bad-since", "GET", "/api/v1/logs", {"since": "yesterday"}, None, 400, "E0000001", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "template", "query", "body", "status", "code", "setup"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_endpoint_matches_okta_spec(
    openapi: OpenAPI,
    sandbox: SandboxServer,
    ids: dict[str, str],
    method: str,
    template: str,
    query: dict | None,
    body: Any,
    status: int,
    code: str,
    setup: Setup,
) -> None:
    if setup:
        setup(sandbox, ids)
    path = template.format(**ids)

    reply = call(sandbox.url, method, path, query=query, body=body)

    assert reply.status == status, reply.body
    assert_okta_headers(reply)
    validate(openapi, method, path, query, reply)
    if code:
        assert ERROR_KEYS <= set(reply.json)
        assert reply.json["errorCode"] == code
    elif isinstance(reply.json, list):
        assert reply.links[0].endswith('rel="self"')


def test_a_list_page_is_not_empty_where_the_spec_checks_items(
    openapi: OpenAPI, sandbox: SandboxServer, ids: dict[str, str]
) -> None:
    """The parametrized cases must exercise real items, or a bad item schema would pass."""
    _inject_events(sandbox, ids)
    for path in ("/api/v1/users", "/api/v1/groups", f"/api/v1/groups/{ids['ro']}/users",
                 f"/api/v1/apps/{ids['app']}/groups", "/api/v1/logs"):  # fmt: skip
        reply = call(sandbox.url, "GET", path)
        assert reply.json, path
        validate(openapi, "GET", path, None, reply)


def test_validation_really_fails_on_a_bad_body(openapi: OpenAPI, sandbox: SandboxServer) -> None:
    reply = call(sandbox.url, "GET", "/api/v1/groups")
    group = reply.json[0]
    for broken in (
        {**group, "type": "SOMETHING_ELSE"},
        {**group, "lastUpdated": "last tuesday"},
        {**group, "unknownProperty": 1},
    ):
        reply.body = __import__("json").dumps([broken]).encode()
        with pytest.raises(Exception, match="(?i)invalid|not valid"):
            validate(openapi, "GET", "/api/v1/groups", None, reply)


def test_validation_fails_on_an_undocumented_status(openapi: OpenAPI, sandbox: SandboxServer) -> None:
    reply = call(sandbox.url, "GET", "/api/v1/users/engineer@example.com")
    reply.status = 418
    with pytest.raises(Exception, match="(?i)response|not found"):
        validate(openapi, "GET", "/api/v1/users/engineer@example.com", None, reply)


def test_rate_limited_response_matches_spec(openapi: OpenAPI, sandbox: SandboxServer) -> None:
    sandbox.add_faults(rate_limits={"groups": 1})
    assert call(sandbox.url, "GET", "/api/v1/groups").status == 200

    reply = call(sandbox.url, "GET", "/api/v1/groups")

    assert reply.status == 429
    assert reply.json["errorCode"] == "E0000047"
    assert reply.headers["X-Rate-Limit-Remaining"] == "0"
    assert_okta_headers(reply)
    validate(openapi, "GET", "/api/v1/groups", None, reply)


@pytest.mark.parametrize(
    ("authorization", "status", "code"),
    [
        (None, 401, "E0000011"),
        ("SSWS wrong-token", 401, "E0000011"),
        ("Bearer not-issued", 401, "E0000011"),
    ],
)
def test_auth_errors_match_error_schema(
    error_schema: OAS30Validator,
    sandbox: SandboxServer,
    authorization: str | None,
    status: int,
    code: str,
) -> None:
    reply = call(sandbox.url, "GET", "/api/v1/groups", authorization=authorization)

    assert reply.status == status
    assert_okta_headers(reply)
    error_schema.validate(reply.json)
    assert ERROR_KEYS <= set(reply.json)
    assert reply.json["errorCode"] == code


@pytest.mark.parametrize(("status", "code"), [(500, "E0000009"), (503, "E0000009")])
def test_server_errors_match_error_schema(
    error_schema: OAS30Validator, sandbox: SandboxServer, status: int, code: str
) -> None:
    sandbox.fail_next("GET", "/api/v1/apps/", status=status)

    reply = call(sandbox.url, "GET", "/api/v1/apps/0oasandboxawsfed01")

    assert reply.status == status
    assert_okta_headers(reply)
    error_schema.validate(reply.json)
    assert reply.json["errorCode"] == code


def test_error_schema_validator_is_real(error_schema: OAS30Validator) -> None:
    assert not error_schema.is_valid({"errorCode": 47})
    assert not error_schema.is_valid({"errorCauses": [{"errorSummary": ["x"]}]})


def test_log_events_are_shaped_like_okta_events(sandbox: SandboxServer, ids: dict[str, str]) -> None:
    _inject_events(sandbox, ids)

    events = call(sandbox.url, "GET", "/api/v1/logs").json

    add = next(e for e in events if e["eventType"] == "group.user_membership.add")
    assert add["actor"]["type"] == "User" and add["actor"]["alternateId"]
    assert [t["type"] for t in add["target"]] == ["User", "UserGroup"]
    assert add["outcome"]["result"] == "SUCCESS"
    assert add["authenticationContext"]["externalSessionId"]
    published = dt.datetime.fromisoformat(add["published"].replace("Z", "+00:00"))
    assert abs(dt.datetime.now(dt.UTC) - published) < dt.timedelta(minutes=1)
