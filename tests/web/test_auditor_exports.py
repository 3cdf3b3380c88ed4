"""Exports: exactly the filtered rows, streamed, with the chain anchors; CSV safe to open."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.db import transaction
from django.http import StreamingHttpResponse
from django.urls import reverse

from portal import audit
from portal.auditor import exports, history
from portal.models import AuditEvent
from requests_app.models import AccessRequest, Approval


def body(response) -> str:
    assert response.status_code == 200, response.content
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def export(client, fmt: str, **params):
    return client.get(reverse("auditor-history-export", args=[fmt]), params)


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


class TestRequestExports:
    def test_jsonl_is_exactly_the_filtered_rows(self, as_auditor, archive):
        a = archive
        rows = jsonl(body(export(as_auditor, "jsonl", kind="drill", sort="filed")))
        assert [r["id"] for r in rows] == [a.r3.pk, a.r4.pk, a.r5.pk]
        r4 = rows[1]
        assert r4["requester"] == "alice" and r4["account"] == "prod-payments"
        assert r4["level"] == "Ops" and r4["drill"] is True and r4["status"] == "expired"
        assert [x["approver"] for x in r4["approvals"]] == ["approver1", "approver2"]
        assert r4["activated_at"] == "2025-06-11T09:05:00+00:00"
        assert r4["held_until"] == "2025-06-11T11:05:10+00:00" and r4["held_minutes"] == 120
        assert rows[0]["decided_by"] == "approver2"

    def test_each_row_is_anchored_in_the_chain(self, as_auditor, archive):
        rows = {r["id"]: r for r in jsonl(body(export(as_auditor, "jsonl")))}
        events = AuditEvent.objects.filter(target_type="accessrequest")
        last = events.filter(target_id=str(archive.r1.pk)).order_by("-seq").first()
        anchor = rows[archive.r1.pk]
        assert (anchor["last_event_seq"], anchor["last_event_hash"]) == (last.seq, last.hash)
        assert anchor["last_event_action"] == "request.approved"
        assert rows[archive.r5.pk]["last_event_seq"] is None

    def test_csv_has_the_same_rows_and_a_header(self, as_auditor, archive):
        response = export(as_auditor, "csv", person="engineer")
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"].startswith('attachment; filename="access-requests-')
        rows = list(csv.DictReader(io.StringIO(body(response))))
        assert [int(r["id"]) for r in rows] == [archive.r3.pk, archive.r1.pk]
        assert list(rows[0]) == exports.REQUEST_CSV_COLUMNS
        assert rows[1]["approvals"].startswith("approver1 20") and rows[1]["approvals"].endswith(
            "(ok)"
        )

    def test_csv_cells_cannot_run_as_formulas(self, as_auditor, archive):
        rows = list(csv.DictReader(io.StringIO(body(export(as_auditor, "csv", status="lapsed")))))
        assert rows[0]["ticket"] == "'=1+2"

    def test_bad_filters_are_400(self, as_auditor, archive):
        assert export(as_auditor, "csv", date_from="nope").status_code == 400

    @pytest.mark.parametrize("fast", [True, False])
    def test_streamed_from_an_iterator(self, as_auditor, archive, monkeypatch, fast):
        """Rows come from one COPY (PostgreSQL) or QuerySet.iterator in chunks (elsewhere),
        read only while the response is sent, never a list of every row."""
        seen = []
        spied = "_copy" if fast else "request_rows"
        original = getattr(exports, spied)

        def spy(*args):
            seen.append(args)
            return original(*args)

        monkeypatch.setattr(exports, spied, spy)
        monkeypatch.setattr(exports, "_fast", lambda: fast)
        monkeypatch.setattr(exports, "CHUNK", 2)
        response = export(as_auditor, "jsonl")
        assert seen == []  # nothing read before the response is consumed
        assert len(jsonl(body(response))) == 5
        assert len(seen) == 1

    def test_flat_rows_say_what_the_model_says(self, archive):
        """The fast path (flat rows, lookups per chunk) gives request_row's answer."""
        requests = AccessRequest.objects.order_by("pk")
        anchors = ("last_event_seq", "last_event_action", "last_event_hash")
        fast = [
            {k: v for k, v in row.items() if k not in anchors}
            for row in exports.request_rows(requests)
        ]
        slow = [
            {k: v for k, v in exports.request_row(r).items() if k not in anchors} for r in requests
        ]
        assert fast == slow and len(fast) == 5

    @pytest.mark.parametrize("sort", ["filed", "-person", "-granted", "ended"])
    def test_the_database_writes_what_python_would(self, archive, sort):
        """On PostgreSQL COPY writes the lines: the same rows, cells and order as the
        Python reference (which SQLite uses)."""
        with transaction.atomic():
            audit.record("request.note", archive.r2, system="=cmd", payload={"a": "é"})
        # Fractions of a second with trailing zeros, and the smallest one.
        AccessRequest.objects.filter(pk=archive.r1.pk).update(
            activated_at=dt.datetime(2025, 3, 1, 10, 5, 0, 120000, tzinfo=dt.UTC),
            ended_at=dt.datetime(2025, 3, 1, 11, 5, 0, 1, tzinfo=dt.UTC),
        )
        Approval.objects.filter(request=archive.r2).update(
            created_at=dt.datetime(2025, 3, 1, 12, 5, 0, 500000, tzinfo=dt.UTC)
        )
        requests = history.filtered({"sort": sort})
        python_json = jsonl("".join(exports.jsonl_lines(exports.request_rows(requests))))
        python_csv = "".join(
            exports.csv_lines(
                exports.REQUEST_CSV_COLUMNS, exports.request_rows(requests), exports.request_csv_row
            )
        )
        assert exports._fast()
        sql_json = jsonl(b"".join(exports.request_lines(requests, "jsonl")).decode())
        sql_csv = b"".join(exports.request_lines(requests, "csv")).decode()
        assert sql_json == python_json and len(sql_json) == 5
        assert list(csv.reader(io.StringIO(sql_csv))) == list(csv.reader(io.StringIO(python_csv)))

    @pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r", "é", ""])
    def test_the_database_guards_cells_as_python_does(self, archive, start):
        """The SQL formula guard (the first character's code point) marks exactly the
        cells _safe_cell marks: each formula character, a non-ASCII one, an empty cell."""
        AccessRequest.objects.filter(pk=archive.r3.pk).update(
            decision_comment=f"{start}x", end_reason=start, ticket=f"{start}T-1"
        )
        requests = history.filtered({})
        python_csv = "".join(
            exports.csv_lines(
                exports.REQUEST_CSV_COLUMNS, exports.request_rows(requests), exports.request_csv_row
            )
        )
        assert exports._fast()
        sql_csv = b"".join(exports.request_lines(requests, "csv")).decode()
        assert list(csv.reader(io.StringIO(sql_csv))) == list(csv.reader(io.StringIO(python_csv)))
        python_json = jsonl("".join(exports.jsonl_lines(exports.request_rows(requests))))
        assert jsonl(b"".join(exports.request_lines(requests, "jsonl")).decode()) == python_json

    def test_queries_do_not_grow_with_the_rows(
        self, as_auditor, archive, monkeypatch, django_assert_max_num_queries
    ):
        """A few queries per chunk of rows, none per row (the 100,000-row export: ~150)."""
        monkeypatch.setattr(exports, "CHUNK", 2)
        monkeypatch.setattr(exports, "_fast", lambda: False)
        # 5 rows in 3 chunks: the cursor's fetches, and approvals + anchors per chunk.
        with django_assert_max_num_queries(16):
            assert len(jsonl(body(export(as_auditor, "jsonl")))) == 5

    def test_engineers_cannot_export(self, as_engineer, archive):
        assert export(as_engineer, "csv").status_code == 403


class TestAuditLogExport:
    def url(self, fmt="jsonl"):
        return reverse("auditor-audit-export", args=[fmt])

    def test_every_event_in_its_canonical_form(self, as_auditor, archive):
        response = as_auditor.get(self.url())
        assert response["X-Audit-Selection"] == "contiguous"
        rows = jsonl(body(response))
        events = list(AuditEvent.objects.order_by("seq"))
        assert [r["seq"] for r in rows] == [e.seq for e in events]
        for row, event in zip(rows, events, strict=True):
            assert row == {**event.canonical_fields(), "hash": event.hash}

    def test_odd_values_come_out_canonical(self, as_auditor, archive):
        """Addresses, microseconds, non-ASCII and nested payloads as the hash covers them."""
        token = audit.client_ip_var.set("2001:DB8::1")
        try:
            with transaction.atomic():
                audit.record(
                    "test.odd", ("thing", "x:1"), system="ü", payload={"b": [1.5, None], "a": "\n"}
                )
        finally:
            audit.client_ip_var.reset(token)
        rows = jsonl(body(as_auditor.get(self.url())))
        event = AuditEvent.objects.order_by("-seq").first()
        assert rows[-1] == {**event.canonical_fields(), "hash": event.hash}
        assert rows[-1]["client_ip"] == "2001:db8::1"

    def test_a_range_and_filters(self, as_auditor, archive):
        rows = jsonl(body(as_auditor.get(self.url(), {"from_seq": 2, "to_seq": 3})))
        assert [r["seq"] for r in rows] == [2, 3]
        response = as_auditor.get(self.url(), {"action": "okta."})
        assert response["X-Audit-Selection"] == "filtered"
        assert [r["action"] for r in jsonl(body(response))] == ["okta.unexpected_member_removed"]
        response = as_auditor.get(self.url(), {"target": f"accessrequest:{archive.r1.pk}"})
        assert len(jsonl(body(response))) == 2

    def test_csv(self, as_auditor, archive):
        with transaction.atomic():
            audit.record("test.csv", ("thing", 1), system="=cmd", payload={"a": "é"})
        rows = list(csv.DictReader(io.StringIO(body(as_auditor.get(self.url("csv"))))))
        assert list(rows[0]) == exports.EVENT_CSV_COLUMNS
        assert rows[-1]["actor"] == "'=cmd" and json.loads(rows[-1]["payload"]) == {"a": "é"}

    def test_bad_range_is_400(self, as_auditor, archive):
        assert as_auditor.get(self.url(), {"from_seq": "x"}).status_code == 400
        assert as_auditor.get(self.url(), {"from_seq": 0}).status_code == 400


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_links_carry_the_filters(as_auditor, archive, fmt):
    content = as_auditor.get(reverse("auditor-history"), {"q": "kafka"}).content.decode()
    assert f"{reverse('auditor-history-export', args=[fmt])}?q=kafka" in content


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (dt.datetime(2025, 3, 1, 10, 5, tzinfo=dt.UTC), "2025-03-01T10:05:00+00:00"),
        (dt.datetime(2025, 3, 1, 10, 5, 0, 120000, tzinfo=dt.UTC), "2025-03-01T10:05:00.12+00:00"),
        (dt.datetime(2025, 3, 1, 10, 5, 0, 1, tzinfo=dt.UTC), "2025-03-01T10:05:00.000001+00:00"),
        (
            dt.datetime(2025, 3, 1, 12, 5, 0, 654321, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2025-03-01T10:05:00.654321+00:00",
        ),
        (None, None),
    ],
)
def test_an_exported_timestamp_is_utc_rfc_3339_as_postgresql_writes_it(moment, written):
    assert exports._iso(moment) == written
