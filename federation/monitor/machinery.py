"""Is the portal's own machinery working? The database, the broker (Redis), a worker, beat
and Okta, each with the age of its last sign of life: what /readyz, `manage.py doctor`,
the compose healthchecks and the approvers' red banner read (docs/reliability.md)."""

from __future__ import annotations

import datetime as dt
import logging
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from federation.idp import guard
from federation.monitor import messages
from portal.models import Heartbeat

log = logging.getLogger(__name__)

# The pieces whose silence stops grants from being processed.
PROCESSES = ("worker", "beat")


@dataclass
class Component:
    name: str
    ok: bool
    detail: str
    age_seconds: float | None = None
    warning: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _age(seen: dt.datetime | None, now: dt.datetime) -> float | None:
    return None if seen is None else round((now - seen).total_seconds(), 1)


def check_database() -> Component:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return Component("database", False, f"unreachable: {exc}".strip()[:200])
    return Component("database", True, "answers")


def check_broker() -> Component:
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return Component("broker", True, f"{url.split(':', 1)[0]} broker (not checked)")
    try:
        client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
        client.ping()
        persistence = client.info("persistence")
        memory = client.info("memory")
    except redis.RedisError as exc:
        return Component("broker", False, f"Redis unreachable: {exc}"[:200])
    warnings = []
    if not persistence.get("aof_enabled"):
        warnings.append("append-only file is off: queued work is lost when Redis restarts")
    if memory.get("maxmemory_policy") != "noeviction":
        warnings.append(
            f"maxmemory-policy is {memory.get('maxmemory_policy')}, not noeviction: "
            "queued tasks may be evicted"
        )
    return Component("broker", True, "Redis answers", warning="; ".join(warnings))


def check_heartbeats(now: dt.datetime | None = None) -> list[Component]:
    now = now or timezone.now()
    seen = {h.name: h for h in Heartbeat.objects.filter(name__in=PROCESSES)}
    out = []
    for name in PROCESSES:
        beat = seen.get(name)
        age = _age(beat.seen_at if beat else None, now)
        if beat is None or age is None:
            out.append(Component(name, False, f"no {name} has ever reported"))
        elif age > settings.HEARTBEAT_STALE_SECONDS:
            out.append(Component(name, False, f"silent for {age:.0f} s", age))
        else:
            detail = f"seen {age:.0f} s ago" + (f" ({beat.detail})" if beat.detail else "")
            out.append(Component(name, True, detail, age))
    return out


def okta_unreachable(now: dt.datetime | None = None) -> str:
    """ "Okta unreachable since <time>" while Okta's circuit is open (shared by every
    process, federation/idp/guard.py), else ""."""
    circuit = guard.circuit_state(now.timestamp() if now else None)
    if not circuit.is_open:
        return ""
    since = circuit.since or circuit.opened_at
    when = f" since {since:%Y-%m-%d %H:%M:%S} UTC" if since else ""
    return (
        f"Okta unreachable{when} (circuit {circuit.state} after {circuit.failures} failed "
        "calls): grants and removals are paused and resume by themselves when Okta answers"
    )


def check_okta(now: dt.datetime | None = None) -> Component:
    """Okta's circuit (closed, or open since when) and whether Okta answers HTTP at all
    (any status below 500 counts: the API token is not used)."""
    now = now or timezone.now()
    unreachable = okta_unreachable(now)
    if unreachable:
        circuit = guard.circuit_state(now.timestamp())
        return Component(
            "okta",
            False,
            unreachable,
            _age(circuit.since or circuit.opened_at, now),
            warning=f"last error: {circuit.last_error}"[:300] if circuit.last_error else "",
        )
    url = settings.OKTA_ORG_URL.rstrip("/") + "/.well-known/okta-organization"
    try:
        # OKTA_ORG_URL is https (or loopback http): settings refuse anything else.
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return Component("okta", False, f"unreachable: {exc}"[:200])
    if status >= 500:
        return Component("okta", False, f"answers {status}")
    return Component("okta", True, "reachable; circuit closed")


def components(*, okta: bool = True) -> list[Component]:
    database = check_database()
    out = [database, check_broker()]
    if database.ok:
        out += check_heartbeats()
    if okta:
        out.append(check_okta())
    return out


def silent_processes(now: dt.datetime | None = None) -> list[Component]:
    return [c for c in check_heartbeats(now) if not c.ok]


def banner(now: dt.datetime | None = None) -> str:
    """The approvers' red banner text, or "" while the worker, beat and Okta work."""
    silent = silent_processes(now)
    parts = []
    if silent:
        what = "; ".join(f"the {c.name} is {c.detail}" for c in silent)
        parts.append(f"Grants are not being processed: {what}.")
    unreachable = okta_unreachable(now)
    if unreachable:
        parts.append(unreachable[0].upper() + unreachable[1:] + ".")
    return " ".join(parts)


def check_and_alert(now: dt.datetime | None = None) -> list[str]:
    """Alert approvers once per episode when the worker or beat goes silent (and say when
    it is back). Safe to call from any process, as often as wanted; returns who alerted."""
    now = now or timezone.now()
    alerted: list[str] = []
    for component in check_heartbeats(now):
        with transaction.atomic():
            row = Heartbeat.objects.select_for_update().filter(name=component.name).first()
            if row is None:
                continue  # never started: nothing to compare with (readiness says so)
            if not component.ok and row.alerted_at is None:
                row.alerted_at = now
                row.save(update_fields=["alerted_at"])
                messages.machinery_silent(component.name, component.detail, since=row.seen_at)
                alerted.append(component.name)
            elif component.ok and row.alerted_at is not None:
                row.alerted_at = None
                row.save(update_fields=["alerted_at"])
                messages.machinery_back(component.name)
    return alerted
