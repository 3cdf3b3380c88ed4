"""Append to and verify the hash-chained audit log.

``record`` must run inside the transaction of the state change it describes, so
the change and its evidence commit or roll back together.
"""

from __future__ import annotations

import contextvars
import hashlib
import ipaddress
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from portal.core.types import User
from portal.models import AuditEvent, canonical_fields, canonical_json

GENESIS_HASH = "0" * 64
# Any constant: the advisory lock that serialises appends on PostgreSQL.
_CHAIN_LOCK_KEY = 0x45415041  # "EAPA"

client_ip_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "audit_client_ip", default=None
)


def actor_label(actor: User | None, system: str = "system") -> str:
    if actor is None:
        return system
    return actor.get_username()


def target_of(target: models.Model | tuple[str, Any]) -> tuple[str, str]:
    if isinstance(target, tuple):
        return target[0], str(target[1])
    return target._meta.model_name or type(target).__name__.lower(), str(target.pk)


def json_safe(payload: dict[str, Any] | None) -> dict[str, Any]:
    """The payload as the database will give it back: plain JSON values only.

    Dates, decimals and UUIDs become strings, tuples lists, keys strings. NaN and
    infinities are refused: JSON has no spelling for them. Hashing this form makes
    the hash of a fresh event equal the hash recomputed from its stored row.
    """
    text = json.dumps(payload or {}, cls=DjangoJSONEncoder, allow_nan=False)
    value = json.loads(text)
    if not isinstance(value, dict):
        raise TypeError("an audit payload is a JSON object")
    return value


_ip_field = models.GenericIPAddressField()


def clean_client_ip(value: str | None) -> str | None:
    """The address in the form PostgreSQL's ``inet`` returns (lower case, compressed)."""
    if not value:
        return None
    try:
        return _ip_field.to_python(value.strip()) or None
    except ValidationError:
        return None


def record(
    action: str,
    target: models.Model | tuple[str, Any],
    *,
    actor: User | None = None,
    system: str = "system",
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain in the current transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record must run inside the state change's transaction")
    lock_chain()
    last_seq, last_hash = head()
    target_type, target_id = target_of(target)
    event = AuditEvent(
        seq=last_seq + 1,
        # Microseconds are what both databases keep.
        created_at=timezone.now(),
        actor=actor if actor is not None and actor.pk else None,
        actor_label=actor_label(actor, system)[:254],
        action=action,
        target_type=target_type,
        target_id=target_id,
        payload=json_safe(payload),
        client_ip=clean_client_ip(client_ip_var.get()),
        prev_hash=last_hash,
    )
    event.hash = event.compute_hash()
    event.save(force_insert=True)
    return event


def record_many(
    action: str,
    entries: Iterable[tuple[models.Model | tuple[str, Any], dict[str, Any] | None]],
    *,
    actor: User | None = None,
    system: str = "system",
) -> list[AuditEvent]:
    """Append one event per (target, payload), in order, in the current transaction: the
    same events ``record`` would append one by one (each its own seq, linked to the one
    before), written with one insert. For a decision over many rows at once (closing a
    failover revokes every grant): each row still gets its own event."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record_many must run inside the state change's transaction")
    lock_chain()
    last_seq, last_hash = head()
    label = actor_label(actor, system)[:254]
    ip = clean_client_ip(client_ip_var.get())
    events = []
    for target, payload in entries:
        target_type, target_id = target_of(target)
        event = AuditEvent(
            seq=last_seq + 1,
            created_at=timezone.now(),
            actor=actor if actor is not None and actor.pk else None,
            actor_label=label,
            action=action,
            target_type=target_type,
            target_id=target_id,
            payload=json_safe(payload),
            client_ip=ip,
            prev_hash=last_hash,
        )
        event.hash = event.compute_hash()
        last_seq, last_hash = event.seq, event.hash
        events.append(event)
    AuditEvent.objects.bulk_create(events, batch_size=500)
    return events


def events_for(target: models.Model | tuple[str, Any]) -> models.QuerySet[AuditEvent]:
    target_type, target_id = target_of(target)
    return AuditEvent.objects.filter(target_type=target_type, target_id=target_id).select_related(
        "actor"
    )


def lock_chain() -> None:
    """Hold the chain's append lock until the transaction ends.

    On PostgreSQL an advisory lock: the next writer reads our head only once we
    committed, so two writers never link to the same event (SQLite's BEGIN
    IMMEDIATE already serialises writers). Code that reads the log to decide
    whether to append ("reminded today already?") takes it first too.

    The portal's lock order (docs/reliability.md): a transaction that audits takes this
    lock before any row lock (``select_for_update``), so it is never part of a deadlock.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("lock_chain must run inside a transaction")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def head() -> tuple[int, str]:
    """The last event's (seq, hash); (0, GENESIS_HASH) for an empty log."""
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return (last[0], last[1]) if last else (0, GENESIS_HASH)


@dataclass(frozen=True)
class ChainBreak:
    """One place the record does not hold: the event (seq) and what is wrong with it."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"#{self.seq}: {self.reason}"


# The columns verification reads, in the order row_fields expects.
CHAIN_COLUMNS = (
    "seq",
    "created_at",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "payload",
    "client_ip",
    "prev_hash",
    "hash",
)


def row_fields(row: tuple[Any, ...]) -> tuple[dict[str, Any], str]:
    fields = dict(zip(CHAIN_COLUMNS[:-1], row[:-1], strict=True))
    return canonical_fields(**fields), row[-1]


def chain_rows(chunk_size: int = 5000, from_seq: int = 1) -> Iterator[tuple[Any, ...]]:
    """Every event (from ``from_seq`` on) as a tuple of CHAIN_COLUMNS, in sequence order,
    without model instances."""
    events = AuditEvent.objects.order_by("seq")
    if from_seq > 1:
        events = events.filter(seq__gte=from_seq)
    return events.values_list(*CHAIN_COLUMNS).iterator(chunk_size)


def _short(digest: str) -> str:
    return digest[:12] + "…"


ALTERED = "content does not match its hash: the event was altered after it was written"


def _altered(fields: dict[str, Any], stored_hash: str) -> bool:
    return hashlib.sha256(canonical_json(fields)).hexdigest() != stored_hash


def iter_chain_breaks(
    events: Iterable[AuditEvent] | None = None,
    *,
    stats: dict[str, Any] | None = None,
    anchor: tuple[int, str] | None = None,
) -> Iterator[ChainBreak]:
    """Yield every place the chain does not hold, in sequence order.

    ``events`` defaults to the whole log. ``stats`` (if given) receives the number
    of events read and the last one's seq and hash, for the caller's report.

    ``anchor`` (seq, hash): an event an earlier verification found intact. The walk then
    starts there instead of at genesis: the anchor must still be in the log with that
    hash (a history rewritten and re-hashed up to or past it shows there), and every
    event after it must link and hash. What lies before it is not read again (a full
    walk covers that).
    """
    rows: Iterable[tuple[dict[str, Any], str]]
    anchor_seq, anchor_hash = anchor if anchor and anchor[0] > 0 else (0, GENESIS_HASH)
    if events is None:
        rows = (row_fields(row) for row in chain_rows(from_seq=max(anchor_seq, 1)))
    else:
        rows = ((event.canonical_fields(), event.hash) for event in events)
    expected_seq, expected_prev = 1, GENESIS_HASH
    count = 0
    if anchor_seq:
        rows = iter(rows)
        first = next(rows, None)
        if first is None or first[0]["seq"] != anchor_seq:
            yield ChainBreak(
                anchor_seq,
                f"the event the last verification ended at is missing (deleted, or the log "
                f"was truncated): expected #{anchor_seq} with hash {_short(anchor_hash)}",
            )
            if first is not None:
                rows = itertools.chain([first], rows)
                expected_seq = first[0]["seq"]
                expected_prev = first[0]["prev_hash"]
        else:
            count += 1
            fields, stored_hash = first
            if stored_hash != anchor_hash:
                yield ChainBreak(
                    anchor_seq,
                    f"hash differs from the last verification's ({_short(anchor_hash)}): the "
                    "log was rewritten at or before this event",
                )
            if _altered(fields, stored_hash):
                yield ChainBreak(anchor_seq, ALTERED)
            expected_seq, expected_prev = anchor_seq + 1, stored_hash
    for fields, stored_hash in rows:
        count += 1
        seq = fields["seq"]
        if seq > expected_seq:
            gap = seq - expected_seq
            missing = f"#{expected_seq}" if gap == 1 else f"#{expected_seq} to #{seq - 1}"
            where = (
                f"the log starts at #{seq}"
                if expected_seq == 1
                else f"the sequence jumps from #{expected_seq - 1} to #{seq}"
            )
            yield ChainBreak(
                expected_seq,
                f"{gap} event{'s' if gap > 1 else ''} missing ({missing}): {where} (deleted rows)",
            )
        elif fields["prev_hash"] != expected_prev:
            yield ChainBreak(
                seq,
                f"does not link to the event before it: prev_hash {_short(fields['prev_hash'])}"
                f" but #{seq - 1} has hash {_short(expected_prev)} (reordered, inserted or "
                "rewritten)",
            )
        if _altered(fields, stored_hash):
            yield ChainBreak(seq, ALTERED)
        expected_seq, expected_prev = seq + 1, stored_hash
    if stats is not None:
        stats.update(events=count, head_seq=expected_seq - 1, head_hash=expected_prev)


def verify_chain() -> ChainBreak | None:
    """The first break in the chain, or None when it is intact (no checkpoints: see
    portal.audit.integrity.verify for the full check)."""
    return next(iter_chain_breaks(), None)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the TCP peer, or behind ``TRUSTED_PROXY_COUNT`` proxies the
    X-Forwarded-For entry the outermost of them added (entries left of it are whatever
    the client sent, so never trusted). Only a well-formed address is returned."""
    hops = settings.TRUSTED_PROXY_COUNT
    candidate = request.META.get("REMOTE_ADDR")
    if hops:
        forwarded = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [h for h in forwarded if h]
        if len(forwarded) >= hops:
            candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate or ""))
    except ValueError:
        return None


class AuditContextMiddleware:
    """Remember the client address of the request for the events it causes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = client_ip_var.set(client_ip(request))
        try:
            return self.get_response(request)
        finally:
            client_ip_var.reset(token)
