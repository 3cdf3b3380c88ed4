"""Streamed exports for auditors: CSV and JSON Lines, one database cursor, bounded memory.

Rows are produced from ``QuerySet.iterator(chunk_size)`` inside one transaction
(one snapshot, no WITH HOLD cursor) and written out as they come, so a 100,000-row
export never sits in memory. Audit-log exports carry every field of the
canonical form plus ``hash``: ``tools/verify_export.py`` re-verifies them offline.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from portal.audit import CHAIN_COLUMNS, row_fields
from portal.models import AuditEvent
from requests_app.models import AccessRequest

CHUNK = 2000
# Spreadsheets run cells that start with these as formulas (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value else None


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


# --- Requests -----------------------------------------------------------------------------


def request_row(req: AccessRequest) -> dict[str, Any]:
    """One request as auditors need it: who, what, when, who agreed and why, the chain anchor."""
    role = req.role
    return {
        "id": req.pk,
        "created_at": _iso(req.created_at),
        "requester": req.requester.get_username(),
        "requester_email": req.requester.email,
        "okta_login": req.okta_login,
        "account": role.workload_account.name,
        "account_id": role.workload_account.account_id,
        "level": role.level.name,
        "role": role.role_name,
        "okta_group": role.okta_group_name,
        "status": req.status,
        "failover_id": req.failover_id,
        "drill": req.failover.is_drill,
        "ticket": req.ticket,
        "justification": req.justification,
        "duration_minutes": req.duration_minutes,
        "approvals": [
            {
                "approver": a.approver.get_username(),
                "at": _iso(a.created_at),
                "comment": a.comment,
            }
            for a in req.approvals.all()
        ],
        "decided_at": _iso(req.decided_at),
        "decided_by": _user(req.decided_by),
        "decision_comment": req.decision_comment,
        "activated_at": _iso(req.activated_at),
        "expires_at": _iso(req.expires_at),
        "ended_at": _iso(req.ended_at),
        "ended_by": _user(req.ended_by),
        "end_reason": req.end_reason,
        "membership_removed_at": _iso(req.membership_removed_at),
        "held_until": _iso(req.held_until),
        "held_minutes": req.held_minutes(),
        "last_event_seq": getattr(req, "last_event_seq", None),
        "last_event_action": getattr(req, "last_event_action", None),
        "last_event_hash": getattr(req, "last_event_hash", None),
    }


REQUEST_CSV_COLUMNS = [
    "id",
    "created_at",
    "requester",
    "requester_email",
    "okta_login",
    "account",
    "account_id",
    "level",
    "role",
    "okta_group",
    "status",
    "failover_id",
    "drill",
    "ticket",
    "justification",
    "duration_minutes",
    "approvals",
    "decided_at",
    "decided_by",
    "decision_comment",
    "activated_at",
    "expires_at",
    "ended_at",
    "ended_by",
    "end_reason",
    "membership_removed_at",
    "held_until",
    "held_minutes",
    "last_event_seq",
    "last_event_action",
    "last_event_hash",
]


def _approvals_cell(approvals: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{a['approver']} {a['at']}" + (f" ({a['comment']})" if a["comment"] else "")
        for a in approvals
    )


def request_csv_row(row: dict[str, Any]) -> list[Any]:
    row = {**row, "approvals": _approvals_cell(row["approvals"])}
    return [row[column] for column in REQUEST_CSV_COLUMNS]


def request_rows(requests: QuerySet[AccessRequest]) -> Iterator[dict[str, Any]]:
    for req in requests.iterator(chunk_size=CHUNK):
        yield request_row(req)


# --- Audit events ---------------------------------------------------------------------------


def event_rows(events: QuerySet[AuditEvent]) -> Iterator[dict[str, Any]]:
    """Each event as its canonical fields plus ``hash``: what tools/verify_export.py reads."""
    for row in events.values_list(*CHAIN_COLUMNS).iterator(chunk_size=CHUNK):
        fields, digest = row_fields(row)
        yield {**fields, "hash": digest}


EVENT_CSV_COLUMNS = [
    "seq",
    "created_at",
    "actor_id",
    "actor",
    "action",
    "target",
    "client_ip",
    "payload",
    "prev_hash",
    "hash",
]


def event_csv_row(row: dict[str, Any]) -> list[Any]:
    payload = json.dumps(row["payload"], sort_keys=True, separators=(",", ":"))
    return [payload if c == "payload" else row[c] for c in EVENT_CSV_COLUMNS]


# --- Writing ---------------------------------------------------------------------------------


class _Line:
    """A file-like object csv.writer writes one line into, handed straight back."""

    def write(self, value: str) -> str:
        return value


def _safe_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_lines(
    header: list[str], rows: Iterable[dict[str, Any]], to_row: Callable[[dict[str, Any]], list[Any]]
) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([_safe_cell(cell) for cell in to_row(row)])


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, sort_keys=True, ensure_ascii=False, cls=DjangoJSONEncoder) + "\n"


def _in_one_snapshot(lines: Callable[[], Iterator[str]]) -> Iterator[str]:
    # A transaction gives the export one consistent snapshot, and PostgreSQL a plain
    # server-side cursor (outside one, Django declares it WITH HOLD, which copies the
    # whole result on the server before the first row comes back).
    with transaction.atomic():
        yield from lines()


def stream(
    name: str, fmt: str, lines: Callable[[], Iterator[str]], *, meta: dict[str, str] | None = None
) -> StreamingHttpResponse:
    stamp = timezone.now().astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    response = StreamingHttpResponse(_in_one_snapshot(lines), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    for key, value in (meta or {}).items():
        response[f"X-Audit-{key}"] = value
    return response
