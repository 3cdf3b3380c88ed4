"""The sandbox's real HTTP responses, validated against Okta's OpenAPI document.

Every endpoint, success and error, goes through openapi-core's response
validator (status must be documented for the operation, JSON body must match
its schema; unknown properties are refused where the schema does not allow
them). Statuses the document does not list for an operation (401, 500) are
validated against ``#/components/schemas/Error`` with openapi-schema-validator.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_core.validation.response.exceptions import InvalidData, MissingData
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
        return yaml.load(handle, Loader=loader)  # noqa: S506 -- a SafeLoader, C or Python


@pytest.fixture(scope="module")
def openapi(spec_dict: dict[str, Any]) -> OpenAPI:
    # Validating the whole document itself is slow and not what we test. (Okta's schemas
    # compose with allOf, so openapi-core's "forbid" policy would reject valid bodies;
    # unknown top-level properties are checked by assert_declared instead.)
    return OpenAPI.from_dict(spec_dict, config=Config(spec_validator_cls=None))


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


def _declared(spec: dict[str, Any], schema: dict[str, Any], seen: set[str]) -> set[str]:
    """Property names a schema declares, through $ref, allOf/anyOf/oneOf and discriminators."""
    ref = schema.get("$ref")
    if ref:
        if ref in seen:
            return set()
        seen.add(ref)
        schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    if schema.get("type") == "array":
        return _declared(spec, schema["items"], seen)
    names = set(schema.get("properties", {}))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            names |= _declared(spec, sub, seen)
    for target in schema.get("discriminator", {}).get("mapping", {}).values():
        names |= _declared(spec, {"$ref": target}, seen)
    return names


def assert_declared(
    openapi: OpenAPI, spec: dict[str, Any], method: str, path: str, reply: Response
) -> None:
    """No invented top-level properties: each one is declared by the response schema."""
    found = APICallPathFinder(openapi.spec).find(method.lower(), SPEC_HOST + path)
    operation = spec["paths"][found.path_result.pattern][method.lower()]
    content = operation["responses"][str(reply.status)].get("content") or {}
    schema = content.get("application/json", {}).get("schema")
    if schema is None or not reply.body:
        return
    declared = _declared(spec, schema, set())
    for item in reply.json if isinstance(reply.json, list) else [reply.json]:
        assert set(item) <= declared, f"undeclared: {set(item) - declared}"


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


def _admin_changes(sandbox: SandboxServer, ids: dict[str, str]) -> None:
    """What an Okta admin does in the console, behind the portal's back."""
    sandbox.org.add_member_behind_the_back(RO_GROUP, "oncall@example.com")
    sandbox.org.remove_member_behind_the_back(RO_GROUP, "engineer@example.com")
    sandbox.org.set_app_status_behind_the_back(ids["app"], active=True)
    sandbox.org.set_app_status_behind_the_back(ids["app"], active=False)


Setup = Callable[[SandboxServer, dict[str, str]], None] | None
NOPE_USER, NOPE_GROUP, NOPE_APP = "00unope", "00gnope", "0oanope"
LOG_FILTER = 'eventType eq "user.session.start" or eventType eq "group.user_membership.add"'


def case(
    name: str,
    request: str,
    status: int,
    code: str = "",
    *,
    query: dict[str, str] | None = None,
    body: Any = None,
    setup: Setup = None,
) -> Any:
    """One request: "METHOD path" (formatted with the ``ids`` fixture) and its answer."""
    method, template = request.split(" ", 1)
    return pytest.param(method, template, query, body, status, code, setup, id=name)


CASES = [
    case("getUser-id", "GET /api/v1/users/{engineer}", 200),
    case("getUser-login", "GET /api/v1/users/engineer@example.com", 200),
    case("getUser-404", "GET /api/v1/users/nobody@example.com", 404, "E0000007"),
    case(
        "listUsers-search",
        "GET /api/v1/users",
        200,
        query={"search": 'profile.login eq "engineer@example.com"'},
    ),
    case("listUsers-q", "GET /api/v1/users", 200, query={"q": "appro", "limit": "1"}),
    case("listUsers-all", "GET /api/v1/users", 200),
    case("revokeUserSessions", "DELETE /api/v1/users/{engineer}/sessions", 204),
    case("revokeUserSessions-404", f"DELETE /api/v1/users/{NOPE_USER}/sessions", 404, "E0000007"),
    case("listGroups", "GET /api/v1/groups", 200),
    case(
        "listGroups-search",
        "GET /api/v1/groups",
        200,
        query={"search": f'profile.name eq "{RO_GROUP}"'},
    ),
    case("listGroups-q-paged", "GET /api/v1/groups", 200, query={"q": "A", "limit": "1"}),
    case(
        "addGroup",
        "POST /api/v1/groups",
        200,
        body={"profile": {"name": "aws#222222222222#Ops", "description": "ops"}},
    ),
    case(
        "addGroup-duplicate",
        "POST /api/v1/groups",
        400,
        "E0000001",
        body={"profile": {"name": RO_GROUP}},
    ),
    case("addGroup-blank", "POST /api/v1/groups", 400, "E0000001", body={"profile": {}}),
    case("getGroup", "GET /api/v1/groups/{ro}", 200),
    case("getGroup-404", f"GET /api/v1/groups/{NOPE_GROUP}", 404, "E0000007"),
    case("listGroupUsers", "GET /api/v1/groups/{ro}/users", 200),
    case("listGroupUsers-404", f"GET /api/v1/groups/{NOPE_GROUP}/users", 404, "E0000007"),
    case("assignUserToGroup", "PUT /api/v1/groups/{ro}/users/{oncall}", 204),
    case("assignUserToGroup-present", "PUT /api/v1/groups/{ro}/users/{engineer}", 204),
    case(
        "assignUserToGroup-app-group",
        "PUT /api/v1/groups/{app_group}/users/{oncall}",
        403,
        "E0000006",
    ),
    case(
        "assignUserToGroup-built-in",
        "PUT /api/v1/groups/{everyone}/users/{oncall}",
        403,
        "E0000006",
    ),
    case(
        "assignUserToGroup-no-group",
        f"PUT /api/v1/groups/{NOPE_GROUP}/users/{{oncall}}",
        404,
        "E0000007",
    ),
    case(
        "assignUserToGroup-no-user",
        f"PUT /api/v1/groups/{{ro}}/users/{NOPE_USER}",
        404,
        "E0000007",
    ),
    case("unassignUserFromGroup", "DELETE /api/v1/groups/{ro}/users/{engineer}", 204),
    case("unassignUserFromGroup-absent", "DELETE /api/v1/groups/{ro}/users/{oncall}", 204),
    case(
        "unassignUserFromGroup-app-group",
        "DELETE /api/v1/groups/{app_group}/users/{oncall}",
        403,
        "E0000006",
    ),
    case(
        "unassignUserFromGroup-404",
        f"DELETE /api/v1/groups/{NOPE_GROUP}/users/{{oncall}}",
        404,
        "E0000007",
    ),
    case("getApplication", "GET /api/v1/apps/{app}", 200),
    case("getApplication-404", f"GET /api/v1/apps/{NOPE_APP}", 404, "E0000007"),
    case("activateApplication", "POST /api/v1/apps/{app}/lifecycle/activate", 200),
    case("deactivateApplication", "POST /api/v1/apps/{app}/lifecycle/deactivate", 200),
    case(
        "activateApplication-404",
        f"POST /api/v1/apps/{NOPE_APP}/lifecycle/activate",
        404,
        "E0000007",
    ),
    case(
        "deactivateApplication-404",
        f"POST /api/v1/apps/{NOPE_APP}/lifecycle/deactivate",
        404,
        "E0000007",
    ),
    case("listApplicationGroupAssignments", "GET /api/v1/apps/{app}/groups", 200),
    case(
        "listApplicationGroupAssignments-404",
        f"GET /api/v1/apps/{NOPE_APP}/groups",
        404,
        "E0000007",
    ),
    case("assignGroupToApplication", "PUT /api/v1/apps/{app}/groups/{app_group}", 200),
    case(
        "assignGroupToApplication-no-group",
        f"PUT /api/v1/apps/{{app}}/groups/{NOPE_GROUP}",
        404,
        "E0000007",
    ),
    case("getApplicationGroupAssignment", "GET /api/v1/apps/{app}/groups/{ro}", 200),
    case(
        "getApplicationGroupAssignment-404",
        "GET /api/v1/apps/{app}/groups/{everyone}",
        404,
        "E0000007",
    ),
    case("unassignApplicationFromGroup", "DELETE /api/v1/apps/{app}/groups/{ro}", 204),
    case(
        "unassignApplicationFromGroup-404",
        "DELETE /api/v1/apps/{app}/groups/{everyone}",
        404,
        "E0000007",
    ),
    case("listLogEvents", "GET /api/v1/logs", 200, setup=_inject_events),
    case(
        "listLogEvents-filtered",
        "GET /api/v1/logs",
        200,
        query={
            "since": "2000-01-01T00:00:00.000Z",
            "filter": LOG_FILTER,
            "limit": "1",
            "sortOrder": "ASCENDING",
        },
        setup=_inject_events,
    ),
    case("listLogEvents-admin-changes", "GET /api/v1/logs", 200, setup=_admin_changes),
    case(
        "listLogEvents-bad-filter",
        "GET /api/v1/logs",
        400,
        "E0000031",
        query={"filter": "eventType is x"},
    ),
    case(
        "listLogEvents-bad-since",
        "GET /api/v1/logs",
        400,
        "E0000001",
        query={"since": "yesterday"},
    ),
]


@pytest.mark.parametrize(("method", "template", "query", "body", "status", "code", "setup"), CASES)
def test_endpoint_matches_okta_spec(
    openapi: OpenAPI,
    spec_dict: dict[str, Any],
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
    assert_declared(openapi, spec_dict, method, path, reply)
    if code:
        assert set(reply.json) >= ERROR_KEYS
        assert reply.json["errorCode"] == code
    elif isinstance(reply.json, list):
        assert reply.links[0].endswith('rel="self"')


def test_a_list_page_is_not_empty_where_the_spec_checks_items(
    openapi: OpenAPI, spec_dict: dict[str, Any], sandbox: SandboxServer, ids: dict[str, str]
) -> None:
    """The parametrized cases must exercise real items, or a bad item schema would pass."""
    _inject_events(sandbox, ids)
    for path in ("/api/v1/users", "/api/v1/groups", f"/api/v1/groups/{ids['ro']}/users",
                 f"/api/v1/apps/{ids['app']}/groups", "/api/v1/logs"):  # fmt: skip
        reply = call(sandbox.url, "GET", path)
        assert reply.json, path
        validate(openapi, "GET", path, None, reply)
        assert_declared(openapi, spec_dict, "GET", path, reply)


def test_validation_really_fails_on_a_bad_body(
    openapi: OpenAPI, spec_dict: dict[str, Any], sandbox: SandboxServer
) -> None:
    reply = call(sandbox.url, "GET", "/api/v1/groups")
    group = reply.json[0]
    for broken in (
        {**group, "type": "SOMETHING_ELSE"},
        {**group, "lastUpdated": "last tuesday"},
        {**group, "profile": "not an object"},
    ):
        reply.body = json.dumps([broken]).encode()
        with pytest.raises(InvalidData):
            validate(openapi, "GET", "/api/v1/groups", None, reply)
    reply.body = json.dumps([{**group, "inventedProperty": 1}]).encode()
    with pytest.raises(AssertionError, match="inventedProperty"):
        assert_declared(openapi, spec_dict, "GET", "/api/v1/groups", reply)


def test_validation_fails_on_an_undocumented_status(
    openapi: OpenAPI, sandbox: SandboxServer
) -> None:
    reply = call(sandbox.url, "GET", "/api/v1/users/engineer@example.com")
    reply.status = 418
    with pytest.raises(ResponseNotFound):
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
    assert set(reply.json) >= ERROR_KEYS
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


def test_log_events_are_shaped_like_okta_events(
    sandbox: SandboxServer, ids: dict[str, str]
) -> None:
    _inject_events(sandbox, ids)

    events = call(sandbox.url, "GET", "/api/v1/logs").json

    add = next(e for e in events if e["eventType"] == "group.user_membership.add")
    assert add["actor"]["type"] == "User" and add["actor"]["alternateId"]
    assert [t["type"] for t in add["target"]] == ["User", "UserGroup"]
    assert add["outcome"]["result"] == "SUCCESS"
    assert add["authenticationContext"]["externalSessionId"]
    published = dt.datetime.fromisoformat(add["published"].replace("Z", "+00:00"))
    assert abs(dt.datetime.now(dt.UTC) - published) < dt.timedelta(minutes=1)
