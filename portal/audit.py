"""Append to and verify the hash-chained audit log.

``record`` must run inside the transaction of the state change it describes, so
the change and its evidence commit or roll back together.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, models
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from portal.models import AuditEvent

GENESIS_HASH = "0" * 64
# Any constant: the advisory lock that serialises appends on PostgreSQL.
_CHAIN_LOCK_KEY = 0x45415041  # "EAPA"

client_ip_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "audit_client_ip", default=None
)


def actor_label(actor: AbstractBaseUser | None, system: str = "system") -> str:
    if actor is None:
        return system
    return actor.get_username()


def target_of(target: models.Model | tuple[str, Any]) -> tuple[str, str]:
    if isinstance(target, tuple):
        return target[0], str(target[1])
    return target._meta.model_name or type(target).__name__.lower(), str(target.pk)


def record(
    action: str,
    target: models.Model | tuple[str, Any],
    *,
    actor: AbstractBaseUser | None = None,
    system: str = "system",
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain in the current transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record must run inside the state change's transaction")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
    last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    target_type, target_id = target_of(target)
    event = AuditEvent(
        seq=(last["seq"] + 1) if last else 1,
        created_at=timezone.now(),
        actor=actor if actor is not None and actor.pk else None,
        actor_label=actor_label(actor, system),
        action=action,
        target_type=target_type,
        target_id=target_id,
        payload=payload or {},
        client_ip=client_ip_var.get(),
        prev_hash=last["hash"] if last else GENESIS_HASH,
    )
    # Hash what the database will give back (JSON round trip, microsecond time).
    event.payload = AuditEvent._meta.get_field("payload").to_python(
        AuditEvent._meta.get_field("payload").get_prep_value(event.payload)
    )
    event.hash = event.compute_hash()
    event.save(force_insert=True)
    return event


def events_for(target: models.Model | tuple[str, Any]) -> models.QuerySet[AuditEvent]:
    target_type, target_id = target_of(target)
    return AuditEvent.objects.filter(target_type=target_type, target_id=target_id).select_related(
        "actor"
    )


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def iter_chain_breaks(events: Iterator[AuditEvent] | None = None) -> Iterator[ChainBreak]:
    """Yield every place the chain does not hold, in order."""
    expected_seq, expected_prev = 1, GENESIS_HASH
    source = events if events is not None else AuditEvent.objects.order_by("seq").iterator(2000)
    for event in source:
        if event.seq != expected_seq:
            yield ChainBreak(event.seq, f"expected sequence {expected_seq}, found {event.seq}")
        if event.prev_hash != expected_prev:
            yield ChainBreak(event.seq, "previous-hash link does not match the event before")
        if event.compute_hash() != event.hash:
            yield ChainBreak(event.seq, "content does not match its hash (event altered)")
        expected_seq, expected_prev = event.seq + 1, event.hash


def verify_chain() -> ChainBreak | None:
    """The first break in the chain, or None when it is intact."""
    return next(iter_chain_breaks(), None)


class AuditContextMiddleware:
    """Remember the client address of the request for the events it causes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = client_ip_var.set(request.META.get("REMOTE_ADDR"))
        try:
            return self.get_response(request)
        finally:
            client_ip_var.reset(token)
