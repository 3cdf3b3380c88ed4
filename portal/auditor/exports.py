"""Streamed exports for auditors: CSV and JSON Lines, one database cursor, bounded memory.

Rows are produced from ``QuerySet.iterator(chunk_size)`` inside one transaction
(one snapshot, no WITH HOLD cursor) and written out as they come, so a 100,000-row
export never sits in memory. Audit-log exports carry every field of the
canonical form plus ``hash``: ``tools/verify_export.py`` re-verifies them offline.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import CharField, OuterRef, QuerySet, Subquery, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, RowNumber
from django.http import StreamingHttpResponse
from django.utils import timezone

from federation.models import EmergencyRole, Failover, Level, WorkloadAccount
from portal.audit import CHAIN_COLUMNS, row_fields
from portal.models import AuditEvent
from requests_app.models import AccessRequest, Approval

CHUNK = 2000
# Spreadsheets run cells that start with these as formulas (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _iso(value: dt.datetime | None) -> str | None:
    """UTC, RFC 3339, the fraction of a second only when there is one and without its
    trailing zeros: PostgreSQL's JSON form of a timestamp, which the exports' SQL writes."""
    if not value:
        return None
    text = value.astimezone(dt.UTC).isoformat()
    if not value.microsecond:
        return text
    moment, _, fraction = text[:-6].partition(".")
    return f"{moment}.{fraction.rstrip('0')}{text[-6:]}"


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


# The columns the export reads, one flat row per request: no model instances, no query
# per row. Roles (a small table) are looked up in a dict; approvals and the chain anchor's
# hash and action come with one query per chunk of rows.
_REQUEST_VALUES = (
    "pk",
    "created_at",
    "requester__username",
    "requester__email",
    "okta_login",
    "role_id",
    "status",
    "failover_id",
    "failover__is_drill",
    "ticket",
    "justification",
    "duration_minutes",
    "decided_at",
    "decided_by__username",
    "decision_comment",
    "activated_at",
    "expires_at",
    "ended_at",
    "ended_by__username",
    "end_reason",
    "membership_removed_at",
    "last_event_seq",
)


def _last_event_seq() -> Subquery:
    """The request's newest audit event (an index-only scan of (target_type, target_id, seq))."""
    events = AuditEvent.objects.filter(
        target_type=AccessRequest._meta.model_name,
        target_id=Cast(OuterRef("pk"), output_field=CharField()),
    ).order_by("-seq")
    return Subquery(events.values("seq")[:1])


def _roles() -> dict[int, tuple[str, str, str, str, str]]:
    roles = EmergencyRole.objects.values_list(
        "pk",
        "workload_account__name",
        "workload_account__account_id",
        "level__name",
        "role_name",
        "okta_group_name",
    )
    return {pk: rest for pk, *rest in roles}  # type: ignore[misc]


def _approvals(ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    rows = (
        Approval.objects.filter(request_id__in=ids)
        .order_by("request_id", "created_at", "pk")
        .values_list("request_id", "approver__username", "created_at", "comment")
    )
    for request_id, approver, at, comment in rows:
        found.setdefault(request_id, []).append(
            {"approver": approver, "at": _iso(at), "comment": comment}
        )
    return found


def _anchors(seqs: list[int]) -> dict[int, tuple[str, str]]:
    events = AuditEvent.objects.filter(seq__in=seqs).values_list("seq", "hash", "action")
    return {seq: (digest, action) for seq, digest, action in events}


def _chunks(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        yield chunk


def request_rows(requests: QuerySet[AccessRequest]) -> Iterator[dict[str, Any]]:
    """Every request of ``requests`` as ``request_row`` gives it, from one server-side cursor
    over flat rows, in chunks of ``CHUNK`` (memory stays flat whatever the number of rows)."""
    roles = _roles()
    now = timezone.now()
    rows = (
        requests.annotate(last_event_seq=_last_event_seq())
        .values_list(*_REQUEST_VALUES)
        .iterator(chunk_size=CHUNK)
    )
    for chunk in _chunks(rows, CHUNK):
        approvals = _approvals([row[0] for row in chunk])
        anchors = _anchors([row[-1] for row in chunk if row[-1] is not None])
        for (
            pk, created_at, requester, requester_email, okta_login, role_id, status,
            failover_id, drill, ticket, justification, duration_minutes, decided_at,
            decided_by, decision_comment, activated_at, expires_at, ended_at, ended_by,
            end_reason, membership_removed_at, last_seq,
        ) in chunk:  # fmt: skip
            account, account_id, level, role_name, group = roles[role_id]
            held_until = (membership_removed_at or ended_at) if activated_at else None
            held_minutes = (
                max(0, round(((held_until or now) - activated_at).total_seconds() / 60))
                if activated_at
                else None
            )
            anchor_hash, anchor_action = anchors.get(last_seq, (None, None))
            yield {
                "id": pk,
                "created_at": _iso(created_at),
                "requester": requester,
                "requester_email": requester_email,
                "okta_login": okta_login,
                "account": account,
                "account_id": account_id,
                "level": level,
                "role": role_name,
                "okta_group": group,
                "status": status,
                "failover_id": failover_id,
                "drill": drill,
                "ticket": ticket,
                "justification": justification,
                "duration_minutes": duration_minutes,
                "approvals": approvals.get(pk, []),
                "decided_at": _iso(decided_at),
                "decided_by": decided_by,
                "decision_comment": decision_comment,
                "activated_at": _iso(activated_at),
                "expires_at": _iso(expires_at),
                "ended_at": _iso(ended_at),
                "ended_by": ended_by,
                "end_reason": end_reason,
                "membership_removed_at": _iso(membership_removed_at),
                "held_until": _iso(held_until),
                "held_minutes": held_minutes,
                "last_event_seq": last_seq,
                "last_event_action": anchor_action,
                "last_event_hash": anchor_hash,
            }


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


# Rows are sent in pieces of about this many characters: one write to the socket per
# piece, not per row (a write per row costs more than producing the row).
PIECE = 64 * 1024


def _safe_cell(value: Any) -> Any:
    if value is None:
        return ""
    if value.__class__ is str and value and value[0] in _FORMULA_START:
        return "'" + value
    return value


def csv_lines(
    header: list[str], rows: Iterable[dict[str, Any]], to_row: Callable[[dict[str, Any]], list[Any]]
) -> Iterator[str]:
    """The CSV text, header first, in pieces of about ``PIECE`` characters."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_safe_cell(cell) for cell in to_row(row)])
        if buffer.tell() >= PIECE:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


_json = DjangoJSONEncoder(sort_keys=True, ensure_ascii=False).encode


def jsonl_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON object per line, in pieces of about ``PIECE`` characters."""
    piece: list[str] = []
    size = 0
    for row in rows:
        line = _json(row)
        piece.append(line)
        size += len(line) + 1
        if size >= PIECE:
            piece.append("")
            yield "\n".join(piece)
            piece, size = [], 0
    if piece:
        piece.append("")
        yield "\n".join(piece)


def _in_one_snapshot(lines: Callable[[], Iterator[str | bytes]]) -> Iterator[str | bytes]:
    # A transaction gives the export one consistent snapshot, and PostgreSQL a plain
    # server-side cursor (outside one, Django declares it WITH HOLD, which copies the
    # whole result on the server before the first row comes back).
    with transaction.atomic():
        yield from lines()


def stream(
    name: str,
    fmt: str,
    lines: Callable[[], Iterator[str | bytes]],
    *,
    meta: dict[str, str] | None = None,
) -> StreamingHttpResponse:
    stamp = timezone.now().astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    response = StreamingHttpResponse(_in_one_snapshot(lines), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    for key, value in (meta or {}).items():
        response[f"X-Audit-{key}"] = value
    return response


# --- PostgreSQL: the database writes the lines ------------------------------------------------
#
# At 100,000 requests or a million events, building every row in Python (loading each
# timestamp, formatting it back, quoting each cell) is what limits an export. On PostgreSQL
# the database formats the lines itself and ``COPY ... TO STDOUT`` streams them: the
# Python paths above stay the reference (and serve SQLite); tests check both agree.

# COPY's CSV mode with separator and quote characters JSON text never holds raw (JSON
# escapes control characters): each JSON line comes out exactly as built.
_AS_IS = "FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e'"


def _iso_sql(column: str) -> str:
    """``_iso`` in SQL: the timestamp's JSON form (in the session's zone, UTC: ``_copy``)
    without its quotes. to_json formats a timestamp in half the time to_char takes."""
    return f"btrim({_json_time_sql(column)}, '\"')"


def _json_time_sql(column: str) -> str:
    """``_iso`` as a JSON string, quotes included; NULL for NULL."""
    return f"to_json({column})::text"


def _canonical_time_sql(column: str) -> str:
    """The canonical form's ``created_at``: always with microseconds."""
    return f"(to_char(({column} AT TIME ZONE 'UTC'), 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+00:00')"


def _safe_sql(expression: str) -> str:
    """``_safe_cell`` in SQL: a text cell that a spreadsheet would run gets a leading '."""
    # ascii() is the first character's code point (0 for ''): integers compared, where
    # left(x, 1) IN ('=', ...) cut a string and compared it six times per cell.
    starts = ", ".join(str(ord(c)) for c in _FORMULA_START)
    quote = "''''"
    return (
        f"(CASE WHEN ascii({expression}) IN ({starts}) "
        f"THEN {quote} || {expression} ELSE {expression} END)"
    )


def _copy(select: str, options: str, first: bytes = b"") -> Iterator[bytes]:
    """``COPY (select) TO STDOUT`` in pieces of about ``PIECE`` bytes (each COPY message
    is one whole row, so a piece never splits a character)."""
    piece = bytearray(first)
    with connection.cursor() as cursor:
        # The final sort of 100,000 rows in memory, not in temporary files.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        # Compiling these wide expressions (JIT) took longer than running them: 1.6 s of
        # the requests export's 5 s at 100,000 rows.
        cursor.execute("SET LOCAL jit = off")
        # Timestamps are written in UTC (Django's connections use it; said here, as the
        # formats depend on it).
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        copy_sql = f"COPY ({select}) TO STDOUT WITH ({options})"
        with cursor.cursor.copy(copy_sql) as copy:
            for row in copy:
                piece += row
                if len(piece) >= PIECE:
                    yield bytes(piece)
                    piece.clear()
    if piece:
        yield bytes(piece)


def _sql_of(queryset: QuerySet[Any]) -> str:
    sql, params = queryset.query.sql_with_params()
    # PostgreSQL's operations (the only caller) bind the parameters client-side.
    composed: str = connection.ops.compose_sql(sql, params)  # type: ignore[attr-defined]
    return composed


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _json_sql(key: str, expression: str, numbers: set[str]) -> str:
    """One value of the requests' JSON line: numbers as they are, text and timestamps
    through to_json (escaped text; a timestamp in RFC 3339, ``_iso``), null for NULL;
    the approvals and the role's values are JSON already."""
    if key in numbers:
        return f"COALESCE(({expression})::text, 'null')"
    if key == "drill":
        return f"(CASE WHEN {expression} THEN 'true' ELSE 'false' END)"
    if key == "approvals" or key in _ROLE_KEYS:
        return expression
    return f"COALESCE(to_json({expression})::text, 'null')"


# The role's values of a line (never NULL): the role table (a few dozen rows) writes them.
_ROLE_KEYS = frozenset({"account", "account_id", "level", "role", "okta_group"})


def _request_select(requests: QuerySet[AccessRequest], fmt: str) -> str:
    """One line (JSON) or one row of cells (CSV) per request, in the queryset's order."""
    # The filtered requests' ids, numbered in their order: the query below joins the rest.
    keys = (
        requests.order_by()
        .annotate(_n=Window(RowNumber(), order_by=list(requests.query.order_by)))  # type: ignore[arg-type]
        .values_list("pk", "_n")
    )
    user = _table(get_user_model())
    held_until = (
        "(CASE WHEN s.activated_at IS NOT NULL "
        "THEN COALESCE(s.membership_removed_at, s.ended_at) END)"
    )
    held_minutes = (
        "(CASE WHEN s.activated_at IS NOT NULL THEN GREATEST(0, round((extract(epoch FROM "
        "(COALESCE(s.membership_removed_at, s.ended_at, now()) - s.activated_at)) / 60)"
        "::float8))::bigint END)"
    )
    # Text cells as they are; timestamps (which start with a digit: never a formula) once.
    values = {c: f"s.{c}" for c in REQUEST_CSV_COLUMNS}
    times = {
        "created_at", "decided_at", "activated_at", "expires_at", "ended_at",
        "membership_removed_at",
    }  # fmt: skip
    # Timestamps stay timestamps here: each format writes its own (to_json for JSON).
    values |= {c: f"s.{c}" for c in times}
    times.add("held_until")
    numbers = {"id", "failover_id", "duration_minutes", "last_event_seq"}
    values |= {
        "held_until": held_until,
        "held_minutes": held_minutes,
        "last_event_seq": "le.seq",
        "last_event_action": "le.action",
        "last_event_hash": "le.hash",
    }
    if fmt == "csv":
        approvals = (
            f"string_agg(au.username || ' ' || {_iso_sql('a.created_at')} || CASE WHEN "
            "a.comment <> '' THEN ' (' || a.comment || ')' ELSE '' END, '; ' "
            "ORDER BY a.created_at, a.id)"
        )
        values["drill"] = "(CASE WHEN s.drill THEN 'True' ELSE 'False' END)"
        values |= {c: _iso_sql(values[c]) for c in times}
        plain = {*numbers, "held_minutes", "drill", *times}
        columns = ", ".join(
            values[c] if c in plain else _safe_sql(values[c]) for c in REQUEST_CSV_COLUMNS
        )
    else:
        # A JSON array written out, as the line is (json_agg of json_build_object cost
        # a third of the export).
        approvals = (
            "'[' || string_agg('{\"approver\":' || to_json(au.username)::text || ',\"at\":' "
            f"|| {_json_time_sql('a.created_at')} || ',\"comment\":' || to_json(a.comment)::text "
            "|| '}', ',' ORDER BY a.created_at, a.id) || ']'"
        )
        values["approvals"] = "COALESCE(s.approvals, '[]')"
        # The line by concatenation, each value as JSON by its kind: json_build_object
        # (and row_to_json) looked up the type of each of the 31 values again for every row.
        members = ", ".join(
            f"'{',' if n else '{'}\"{key}\":', "
            f"{_json_sql(key, values[key], numbers | {'held_minutes'})}"
            for n, key in enumerate(sorted(values))
        )
        columns = f"concat({members}, '}}')"

    # JSON: a role's text escaped once per role, not once per request (5 of a line's 17
    # text values).
    def cell(column: str) -> str:
        return column if fmt == "csv" else f"to_json({column})::text"

    # The filtered requests' ids numbered in their order (the queryset's own ORDER BY);
    # approvals aggregated once for all of them; the joined columns sorted as they are
    # (the sort in memory: formatted lines are three times as wide); then, in that order,
    # each request's newest audit event by the (target_type, target_id, seq) index and
    # the cells formatted as the rows stream out.
    return f"""
        WITH o (id, n) AS MATERIALIZED ({_sql_of(keys)}),
        rr AS MATERIALIZED (
            SELECT ro.id, {cell("wa.name")} AS account, {cell("wa.account_id")} AS account_id,
                {cell("lv.name")} AS level, {cell("ro.role_name")} AS role,
                {cell("ro.okta_group_name")} AS okta_group
            FROM {_table(EmergencyRole)} ro
            JOIN {_table(WorkloadAccount)} wa ON wa.id = ro.workload_account_id
            JOIN {_table(Level)} lv ON lv.id = ro.level_id
        ),
        ap AS (
            SELECT a.request_id, {approvals} AS cell
            FROM o JOIN {_table(Approval)} a ON a.request_id = o.id
            JOIN {user} au ON au.id = a.approver_id
            GROUP BY a.request_id
        )
        SELECT {columns}
        FROM (
            SELECT o.n, r.id, r.created_at, req.username AS requester,
                req.email AS requester_email, r.okta_login, rr.account, rr.account_id,
                rr.level, rr.role, rr.okta_group, r.status, r.failover_id, f.is_drill AS drill,
                r.ticket, r.justification, r.duration_minutes, ap.cell AS approvals,
                r.decided_at, db.username AS decided_by, r.decision_comment, r.activated_at,
                r.expires_at, r.ended_at, eb.username AS ended_by, r.end_reason,
                r.membership_removed_at
            FROM o
            JOIN {_table(AccessRequest)} r ON r.id = o.id
            JOIN {user} req ON req.id = r.requester_id
            JOIN rr ON rr.id = r.role_id
            JOIN {_table(Failover)} f ON f.id = r.failover_id
            LEFT JOIN {user} db ON db.id = r.decided_by_id
            LEFT JOIN {user} eb ON eb.id = r.ended_by_id
            LEFT JOIN ap ON ap.request_id = r.id
            ORDER BY o.n
        ) s
        LEFT JOIN LATERAL (
            SELECT e.seq, e.hash, e.action FROM {_table(AuditEvent)} e
            WHERE e.target_type = '{AccessRequest._meta.model_name}' AND e.target_id = s.id::text
            ORDER BY e.seq DESC LIMIT 1
        ) le ON true
        ORDER BY s.n"""  # noqa: S608 -- table names and the ORM's own SQL, no user input


def _event_select(events: QuerySet[AuditEvent], fmt: str) -> str:
    """The events of the queryset (its filters and order) as canonical JSON or CSV cells."""
    table = AuditEvent._meta.db_table
    column = {c: f'"{table}"."{c}"' for c in CHAIN_COLUMNS}
    target = f"({column['target_type']} || ':' || {column['target_id']})"
    values = {
        "seq": column["seq"],
        "created_at": _canonical_time_sql(column["created_at"]),
        "actor_id": column["actor_id"],
        "actor": column["actor_label"],
        "action": column["action"],
        "target": target,
        "payload": column["payload"],
        "client_ip": f"host({column['client_ip']})",
        "prev_hash": column["prev_hash"],
        "hash": column["hash"],
    }
    safe = {"actor", "action", "target"}
    if fmt == "csv":
        cells = {
            f"_c{n}": RawSQL(_safe_sql(values[c]) if c in safe else values[c], ())  # noqa: S611
            for n, c in enumerate(EVENT_CSV_COLUMNS)
        }
        return _sql_of(events.annotate(**cells).values_list(*cells))
    pairs = ", ".join(f"'{key}', {values[key]}" for key in sorted(values))
    line = RawSQL(f"json_build_object({pairs})::text", ())  # noqa: S611 -- column names only
    return _sql_of(events.annotate(_line=line).values_list("_line"))


def _fast() -> bool:
    return connection.vendor == "postgresql"


def _header(columns: list[str]) -> bytes:
    return (",".join(columns) + "\r\n").encode()


def request_lines(requests: QuerySet[AccessRequest], fmt: str) -> Iterator[str | bytes]:
    """The requests export, CSV (with its header) or JSON Lines, in pieces."""
    if _fast():
        if fmt == "csv":
            yield from _copy(
                _request_select(requests, fmt), "FORMAT csv", _header(REQUEST_CSV_COLUMNS)
            )
        else:
            yield from _copy(_request_select(requests, fmt), _AS_IS)
    elif fmt == "csv":
        yield from csv_lines(REQUEST_CSV_COLUMNS, request_rows(requests), request_csv_row)
    else:
        yield from jsonl_lines(request_rows(requests))


def event_lines(events: QuerySet[AuditEvent], fmt: str) -> Iterator[str | bytes]:
    """The audit-log export, CSV (with its header) or JSON Lines, in pieces."""
    if _fast():
        if fmt == "csv":
            yield from _copy(_event_select(events, fmt), "FORMAT csv", _header(EVENT_CSV_COLUMNS))
        else:
            yield from _copy(_event_select(events, fmt), _AS_IS)
    elif fmt == "csv":
        yield from csv_lines(EVENT_CSV_COLUMNS, event_rows(events), event_csv_row)
    else:
        yield from jsonl_lines(event_rows(events))
