"""Bad input gets a 400 with field errors, never a 500 (finding 4 of issue 10).

Every API text field refuses NUL and the other control characters (newlines are fine
where text may span lines); ids, counts and the page offset are bounded; a date-time
must carry its time zone.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import request_body

pytestmark = pytest.mark.django_db

HUGE = 99999999999999999999999
# portal.core.schemas.CONTROL_CHARACTERS_REFUSED, spelled out: the message is the contract.
CONTROL_CHARACTERS_REFUSED = "Control characters (such as NUL) are not allowed."


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("justification", "Identity Center down\x00; payments failing"),
        ("justification", "bell \x07 in the text"),
        ("ticket", "INC-1\x00"),
        ("ticket", "INC-1\nINC-2"),  # a ticket is one line
        ("justification", "escape \x1b[31m red"),
    ],
)
def test_control_characters_in_a_request(
    as_engineer, ro_role, fake_idp, open_failover, snapshot, field, value
):
    before = snapshot()
    response = as_engineer.post("/requests", request_body(ro_role, **{field: value}))
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {field: [CONTROL_CHARACTERS_REFUSED]}
    before.assert_nothing_written()


def test_newlines_are_fine_in_multi_line_text(as_engineer, ro_role, fake_idp, open_failover):
    body = request_body(ro_role, justification="Identity Center is down.\r\n\tPayments fail.")
    assert as_engineer.post("/requests", body).status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/requests/{id}/approve", {"comment": "ok\x00"}),
        ("/requests/{id}/deny", {"reason": "no\x00"}),
        ("/requests/{id}/cancel", {"reason": "\x00"}),
        ("/requests/{id}/extend", {"minutes": 30, "justification": "more\x00"}),
    ],
)
def test_control_characters_in_every_text_field(
    as_approver, as_engineer, ro_role, file_as, snapshot, path, body
):
    filed = file_as(as_engineer, ro_role)
    before = snapshot()
    response = as_approver.post(path.format(id=filed["id"]), body)
    assert response.status_code == 400, response.content
    assert CONTROL_CHARACTERS_REFUSED in str(response.json()["errors"])
    before.assert_nothing_written()


def test_failover_reason(as_approver, plan, snapshot):
    before = snapshot()
    response = as_approver.post("/failover", {"reason": "IdC down\x00"})
    assert response.status_code == 400
    before.assert_nothing_written()


@pytest.mark.parametrize(
    "params",
    [{"offset": HUGE}, {"offset": -1}, {"limit": HUGE}, {"limit": 0}, {"offset": "x"}],
)
def test_pagination_is_bounded(as_engineer, params):
    response = as_engineer.get("/requests", **params)
    assert response.status_code == 400, response.content


def test_the_deepest_offset_still_answers(as_engineer):
    response = as_engineer.get("/requests", offset=1_000_000)
    assert response.status_code == 200
    assert response.json()["items"] == []


@pytest.mark.parametrize(
    "path",
    [
        f"/requests/{HUGE}",
        f"/requests/{2**63}",
        f"/requests/{HUGE}/extensions/1/approve",
        f"/failovers/{HUGE}/report",
    ],
)
def test_ids_beyond_the_database_are_refused(as_approver, path):
    method = "POST" if path.endswith("approve") else "GET"
    response = as_approver.call(method, path, {})
    assert response.status_code in {400, 404}, response.content


@pytest.mark.parametrize(
    "body",
    [
        {"role": HUGE},
        {"role": 2**63},
        {"duration_minutes": HUGE},
        {"duration_minutes": -HUGE},
    ],
)
def test_numbers_beyond_any_column(as_engineer, ro_role, fake_idp, open_failover, snapshot, body):
    before = snapshot()
    response = as_engineer.post("/requests", request_body(ro_role, **body))
    assert response.status_code == 400, response.content
    before.assert_nothing_written()


def test_batch_role_ids_are_bounded(as_engineer, ro_role, fake_idp, open_failover):
    body = {**request_body(ro_role), "roles": [ro_role.pk, HUGE]}
    del body["role"]
    assert as_engineer.post("/requests/batch", body).status_code == 400


def test_deactivate_at_needs_a_time_zone(as_approver, open_failover, snapshot):
    before = snapshot()
    response = as_approver.post(
        "/failover/close", {"reason": "back to normal", "deactivate_at": "2030-01-01T18:00:00"}
    )
    assert response.status_code == 400, response.content
    assert "deactivate_at" in response.json()["errors"]
    before.assert_nothing_written()
