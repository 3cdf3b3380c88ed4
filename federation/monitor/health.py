"""IAM Identity Center health: samples from every configured source, and one derived state.

Sources (each sample records ok / failed / unavailable, latency and error):

* ``aws-health``: AWS Health ``describe_events`` -- open *issues* for Identity
  Center's service code in its home Region. Needs a Business support plan or
  higher; without one AWS answers ``SubscriptionRequiredException`` and the
  source is "unavailable", never "healthy".
* ``sso-admin``: ``ListInstances`` in the home Region (the control plane answers).
* ``identitystore``: ``ListUsers(MaxResults=1)`` on the instance's identity store.
* ``access-portal``: an HTTPS GET of the AWS access portal URL (what people use).

The rule (:data:`RULE`, also shown on the dashboard) turns the recent samples
into HEALTHY / DEGRADED / DISRUPTED / UNKNOWN. Health only *suggests*: declaring
a disruption never waits for it, and the return to normal checks it first.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from federation.aws import clients as aws_clients
from federation.evidence_models import HealthSample, HealthSource, HealthStateChange, LogCursor
from federation.monitor import messages
from portal import audit

log = logging.getLogger(__name__)

HEALTHY, DEGRADED, DISRUPTED, UNKNOWN = "HEALTHY", "DEGRADED", "DISRUPTED", "UNKNOWN"
PROBES = (HealthSource.SSO_ADMIN, HealthSource.IDENTITY_STORE, HealthSource.ACCESS_PORTAL)
# A source whose newest sample is older than this many poll intervals is not heard from.
FRESH_INTERVALS = 3
_MONITOR_LOCK = "health-monitor"


def rule_text() -> str:
    n = settings.HEALTH_FAILURES_FOR_DISRUPTED
    poll = settings.HEALTH_POLL_SECONDS
    return (
        f"Every {poll} s each configured source is sampled. "
        f"DISRUPTED: an active probe (sso-admin, identitystore, access portal) failed its last "
        f"{n} samples in a row, or AWS Health reports an open Identity Center issue while a "
        f"probe is failing. DEGRADED: any failure among the last {n} samples of a source, or an "
        f"open AWS Health issue. HEALTHY: every source heard from in the last "
        f"{FRESH_INTERVALS * poll} s passes. UNKNOWN: no source configured, or none heard from "
        f"(an unavailable source, e.g. AWS Health without a Business support plan, never counts "
        f"as healthy)."
    )


@dataclass(frozen=True)
class HealthState:
    state: str  # HEALTHY | DEGRADED | DISRUPTED | UNKNOWN
    since: dt.datetime | None
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class ProbeResult:
    source: str
    ok: bool | None
    latency_ms: int | None
    error: str = ""
    detail: dict[str, Any] | None = None


# --- Probes --------------------------------------------------------------------------------

# Errors that mean "we cannot tell" (configuration, credentials), not "it is down".
_CONFIG_ERRORS = (NoCredentialsError, PartialCredentialsError, NoRegionError)


def _classify_aws_error(exc: Exception) -> tuple[bool | None, str]:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        message = f"{code}: {error.get('Message', '')}".strip(": ")
        if code in aws_clients.NOT_AUTHORISED or 400 <= status < 500:
            return None, f"source unavailable ({message})"
        return False, message
    if isinstance(exc, _CONFIG_ERRORS):
        return None, f"source unavailable ({exc})"
    return False, f"{type(exc).__name__}: {exc}"


def _timed(source: str, call: Callable[[], tuple[bool | None, str, dict[str, Any]]]) -> ProbeResult:
    started = time.perf_counter()
    try:
        ok, error, detail = call()
    except (BotoCoreError, ClientError) as exc:
        ok, error = _classify_aws_error(exc)
        detail = {}
    latency = round((time.perf_counter() - started) * 1000)
    return ProbeResult(source, ok, latency, error[:2000], detail)


def probe_aws_health() -> ProbeResult:
    def call() -> tuple[bool | None, str, dict[str, Any]]:
        # The Health API's endpoint is global, in us-east-1.
        response = aws_clients.client("health", "us-east-1").describe_events(
            filter={
                "services": list(settings.AWS_HEALTH_SERVICE_CODES),
                "regions": [settings.IDENTITY_CENTER_REGION],
                "eventTypeCategories": ["issue"],
                "eventStatusCodes": ["open"],
            },
            maxResults=10,
        )
        issues = [
            {
                "arn": e.get("arn", ""),
                "type": e.get("eventTypeCode", ""),
                "region": e.get("region", ""),
                "start": e["startTime"].isoformat() if e.get("startTime") else "",
            }
            for e in response.get("events", [])
        ]
        if issues:
            return False, f"{len(issues)} open issue(s): {issues[0]['type']}", {"issues": issues}
        return True, "", {"issues": []}

    result = _timed(HealthSource.AWS_HEALTH, call)
    if result.ok is False and not (result.detail or {}).get("issues"):
        # The Health API itself failing says nothing about Identity Center.
        return ProbeResult(result.source, None, result.latency_ms, result.error, result.detail)
    return result


def probe_sso_admin() -> ProbeResult:
    def call() -> tuple[bool | None, str, dict[str, Any]]:
        instances = aws_clients.client("sso-admin").list_instances().get("Instances", [])
        if not instances:
            return None, "source unavailable (no Identity Center instance in the Region)", {}
        first = instances[0]
        return (
            True,
            "",
            {
                "instance_arn": first.get("InstanceArn", ""),
                "identity_store_id": first.get("IdentityStoreId", ""),
                "status": first.get("Status", ""),
            },
        )

    return _timed(HealthSource.SSO_ADMIN, call)


def _identity_store_id(sso_admin: ProbeResult | None) -> str:
    if settings.IDENTITY_STORE_ID:
        return settings.IDENTITY_STORE_ID
    if sso_admin is not None and sso_admin.ok:
        found: str = (sso_admin.detail or {}).get("identity_store_id", "")
        return found
    known = (
        HealthSample.objects.filter(source=HealthSource.SSO_ADMIN, ok=True)
        .values_list("detail", flat=True)
        .first()
    )
    stored: str = (known or {}).get("identity_store_id", "")
    return stored


def probe_identity_store(store_id: str) -> ProbeResult:
    if not store_id:
        return ProbeResult(
            HealthSource.IDENTITY_STORE,
            None,
            None,
            "source unavailable (no identity store id yet: set IDENTITY_STORE_ID)",
        )

    def call() -> tuple[bool | None, str, dict[str, Any]]:
        aws_clients.client("identitystore").list_users(IdentityStoreId=store_id, MaxResults=1)
        return True, "", {"identity_store_id": store_id}

    return _timed(HealthSource.IDENTITY_STORE, call)


def probe_access_portal() -> ProbeResult:
    url = settings.AWS_ACCESS_PORTAL_URL
    started = time.perf_counter()
    ok: bool | None
    detail: dict[str, Any] = {"url": url}
    try:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"AWS_ACCESS_PORTAL_URL must be an https URL, not {url!r}")
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
            url, headers={"User-Agent": "emergency-access-portal"}
        )
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=settings.HEALTH_PROBE_TIMEOUT_SECONDS
        ) as response:
            ok, error, detail["status"] = True, "", response.status
    except urllib.error.HTTPError as exc:
        detail["status"] = exc.code
        # 5xx: the portal is failing. 4xx: most likely a wrong URL -- cannot tell.
        ok = False if exc.code >= 500 else None
        error = f"HTTP {exc.code}" + ("" if ok is False else " (check AWS_ACCESS_PORTAL_URL)")
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        ok, error = False, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    latency = round((time.perf_counter() - started) * 1000)
    return ProbeResult(HealthSource.ACCESS_PORTAL, ok, latency, error[:2000], detail)


def _safely(source: str, probe: Callable[[], ProbeResult]) -> ProbeResult:
    """One broken probe (a bug, an odd configuration) must not silence the others."""
    try:
        return probe()
    except Exception as exc:
        log.exception("Health probe %s crashed", source)
        return ProbeResult(source, None, None, f"probe crashed: {type(exc).__name__}: {exc}")


def configured_sources() -> list[str]:
    sources: list[str] = []
    if settings.IDENTITY_CENTER_REGION:
        sources += [HealthSource.AWS_HEALTH, HealthSource.SSO_ADMIN, HealthSource.IDENTITY_STORE]
    if settings.AWS_ACCESS_PORTAL_URL:
        sources.append(HealthSource.ACCESS_PORTAL)
    return sources


def collect(*, now: dt.datetime | None = None) -> list[HealthSample]:
    """Sample every configured source once and store the samples."""
    now = now or timezone.now()
    sources = configured_sources()
    results: list[ProbeResult] = []
    sso_admin = None
    if HealthSource.AWS_HEALTH in sources:
        results.append(_safely(HealthSource.AWS_HEALTH, probe_aws_health))
    if HealthSource.SSO_ADMIN in sources:
        sso_admin = _safely(HealthSource.SSO_ADMIN, probe_sso_admin)
        results.append(sso_admin)
    if HealthSource.IDENTITY_STORE in sources:
        store_id = _identity_store_id(sso_admin)
        results.append(_safely(HealthSource.IDENTITY_STORE, lambda: probe_identity_store(store_id)))
    if HealthSource.ACCESS_PORTAL in sources:
        results.append(_safely(HealthSource.ACCESS_PORTAL, probe_access_portal))
    return HealthSample.objects.bulk_create(
        HealthSample(
            source=r.source,
            ok=r.ok,
            latency_ms=r.latency_ms,
            error=r.error,
            recorded_at=now,
            detail=r.detail or {},
        )
        for r in results
    )


# --- The rule ------------------------------------------------------------------------------


def _label(source: str) -> str:
    return HealthSource(source).label


def derive(
    samples: Iterable[HealthSample],
    *,
    now: dt.datetime,
    sources: Iterable[str],
    failures: int,
    poll_seconds: int,
) -> tuple[str, tuple[str, ...]]:
    """The derived state and the evidence behind it, from recorded samples (pure)."""
    sources = list(sources)
    if not sources:
        return UNKNOWN, (
            "No source configured: set IDENTITY_CENTER_REGION and/or AWS_ACCESS_PORTAL_URL.",
        )
    fresh_after = now - dt.timedelta(seconds=FRESH_INTERVALS * poll_seconds)
    # Only samples recent enough to be "in a row": a gap in monitoring breaks the run.
    window_after = now - dt.timedelta(seconds=(failures + 1) * poll_seconds)
    by_source: dict[str, list[HealthSample]] = {s: [] for s in sources}
    for sample in sorted(samples, key=lambda s: s.recorded_at, reverse=True):
        if sample.source in by_source and sample.recorded_at >= window_after:
            by_source[sample.source].append(sample)
    evidence: list[str] = []
    heard = False
    disrupted = degraded = health_issue = probe_failing = False
    for source in sources:
        recent = by_source[source]
        label = _label(source)
        if not recent or recent[0].recorded_at < fresh_after:
            quiet = FRESH_INTERVALS * poll_seconds
            evidence.append(f"{label}: not heard from in the last {quiet} s")
            continue
        latest = recent[0]
        if latest.ok is None:
            evidence.append(f"{label}: {latest.error or 'source unavailable'}")
            continue
        heard = True
        took = f", {latest.latency_ms} ms" if latest.latency_ms is not None else ""
        if source == HealthSource.AWS_HEALTH:
            if latest.ok is False:
                health_issue = True
                evidence.append(f"{label}: {latest.error}")
            else:
                evidence.append(f"{label}: no open issue{took}")
            continue
        in_a_row = 0
        for sample in recent:
            if sample.ok is not False:
                break
            in_a_row += 1
        failed = sum(1 for s in recent[:failures] if s.ok is False)
        if in_a_row >= failures:
            disrupted = True
            evidence.append(f"{label}: failed {in_a_row} times in a row ({latest.error}{took})")
        elif latest.ok is False:
            probe_failing = degraded = True
            evidence.append(f"{label}: failing ({latest.error}{took}), {in_a_row} in a row")
        elif failed:
            degraded = True
            evidence.append(f"{label}: ok{took}, but {failed} of the last {failures} failed")
        else:
            evidence.append(f"{label}: ok{took}")
    if not heard:
        return UNKNOWN, tuple(evidence)
    if disrupted or (health_issue and probe_failing):
        return DISRUPTED, tuple(evidence)
    if degraded or health_issue:
        return DEGRADED, tuple(evidence)
    return HEALTHY, tuple(evidence)


def _recent_samples(now: dt.datetime) -> list[HealthSample]:
    horizon = (
        max(settings.HEALTH_FAILURES_FOR_DISRUPTED + 1, FRESH_INTERVALS)
        * settings.HEALTH_POLL_SECONDS
    )
    return list(
        HealthSample.objects.filter(
            recorded_at__gte=now - dt.timedelta(seconds=horizon), recorded_at__lte=now
        )
    )


def _derive_now(now: dt.datetime) -> tuple[str, tuple[str, ...], list[HealthSample]]:
    samples = _recent_samples(now)
    state, evidence = derive(
        samples,
        now=now,
        sources=configured_sources(),
        failures=settings.HEALTH_FAILURES_FOR_DISRUPTED,
        poll_seconds=settings.HEALTH_POLL_SECONDS,
    )
    return state, evidence, samples


def current_state(*, now: dt.datetime | None = None) -> HealthState:
    """Identity Center's derived health now, since when, and the evidence behind it."""
    now = now or timezone.now()
    state, evidence, _ = _derive_now(now)
    last = HealthStateChange.objects.first()
    since = now
    if last is not None and last.state == state:
        since = last.at
    elif state == UNKNOWN:
        # The monitor went quiet: unknown since its newest sample went stale.
        newest = (
            HealthSample.objects.filter(recorded_at__lte=now)
            .values_list("recorded_at", flat=True)
            .first()
        )
        if newest is not None:
            quiet = dt.timedelta(seconds=FRESH_INTERVALS * settings.HEALTH_POLL_SECONDS)
            since = min(now, newest + quiet)
    return HealthState(state, since, evidence)


def evaluate(*, now: dt.datetime | None = None) -> HealthState:
    """Derive the state; on a change record it, and tell approvers once per episode:
    when it turns DISRUPTED, and when it is HEALTHY again after that."""
    now = now or timezone.now()
    LogCursor.objects.get_or_create(name=_MONITOR_LOCK)
    with transaction.atomic():
        # Serialise evaluations (two overlapping polls must not record a change twice).
        audit.lock_chain()  # the lock order: the audit chain, then rows
        LogCursor.objects.select_for_update().get(name=_MONITOR_LOCK)
        state, evidence, _ = _derive_now(now)
        last = HealthStateChange.objects.first()
        if last is not None and last.state == state:
            return HealthState(state, last.at, evidence)
        change = HealthStateChange.objects.create(state=state, at=now, evidence=list(evidence))
        audit.record(
            "health.changed",
            change,
            system="health-monitor",
            payload={"from": last.state if last else None, "to": state, "evidence": evidence},
        )
        told = HealthStateChange.objects.exclude(notified="").exclude(pk=change.pk).first()
        told_disrupted = told is not None and told.notified == "disrupted"
        notice = ""
        if state == DISRUPTED and not told_disrupted:
            notice = "disrupted"
        elif state == HEALTHY and told_disrupted:
            notice = "healthy"
        if notice:
            change.notified = notice
            change.save(update_fields=["notified"])
            messages.health_changed(HealthState(state, now, tuple(evidence)))
    return HealthState(state, now, evidence)


def poll(*, now: dt.datetime | None = None) -> HealthState:
    """One monitor run (the beat task): sample, derive, record changes, prune."""
    now = now or timezone.now()
    collect(now=now)
    state = evaluate(now=now)
    HealthSample.objects.filter(
        recorded_at__lt=now - dt.timedelta(days=settings.HEALTH_KEEP_DAYS)
    ).delete()
    return state


# --- The last 24 hours, for the dashboard ----------------------------------------------------

STATE_CLASS = {HEALTHY: "ok", DEGRADED: "warn", DISRUPTED: "bad", UNKNOWN: "none"}


def history(
    *, now: dt.datetime | None = None, hours: int = 24, buckets: int = 96
) -> dict[str, Any]:
    """What the server-side SVG draws: the derived state over time, and per source one
    cell per bucket (ok / some failed / all failed / unavailable / no sample)."""
    now = now or timezone.now()
    start = now - dt.timedelta(hours=hours)
    span = (now - start).total_seconds()
    width = 100.0 / buckets
    sources = configured_sources()
    cells: dict[str, list[list[int]]] = {s: [[0, 0, 0] for _ in range(buckets)] for s in sources}
    latency: dict[str, list[list[int]]] = {s: [[0, 0] for _ in range(buckets)] for s in sources}
    for source, ok, took, at in HealthSample.objects.filter(
        recorded_at__gte=start, recorded_at__lte=now, source__in=sources
    ).values_list("source", "ok", "latency_ms", "recorded_at"):
        index = min(buckets - 1, int((at - start).total_seconds() / span * buckets))
        cells[source][index][{True: 0, False: 1, None: 2}[ok]] += 1
        if took is not None and ok:
            latency[source][index][0] += took
            latency[source][index][1] += 1
    rows: list[dict[str, Any]] = []
    for source in sources:
        row = []
        for index, (good, bad, unavailable) in enumerate(cells[source]):
            if good + bad == 0:
                css = "unavail" if unavailable else "none"
            elif bad == 0:
                css = "ok"
            else:
                css = "bad" if good == 0 else "warn"
            total, count = latency[source][index]
            avg = f", {round(total / count)} ms" if count else ""
            row.append(
                {
                    "x": round(index * width, 3),
                    "w": round(width, 3),
                    "css": css,
                    "title": f"{good} ok, {bad} failed, {unavailable} unavailable{avg}",
                }
            )
        y = 5 + 3 * len(rows)
        rows.append({"source": source, "label": _label(source), "cells": row, "y": y})
    # Derived state segments, from the recorded changes.
    changes = list(HealthStateChange.objects.filter(at__gte=start, at__lte=now).order_by("at"))
    before = HealthStateChange.objects.filter(at__lt=start).first()
    points = [(start, before.state if before else UNKNOWN)] + [(c.at, c.state) for c in changes]
    segments = []
    for (at, state), (until, _) in zip(points, [*points[1:], (now, "")], strict=True):
        x = (at - start).total_seconds() / span * 100
        w = max((until - at).total_seconds() / span * 100, 0.2)
        segments.append(
            {
                "x": round(x, 3),
                "w": round(w, 3),
                "css": STATE_CLASS.get(state, "none"),
                "title": f"{state} from {timezone.localtime(at):%H:%M}",
            }
        )
    return {
        "rows": rows,
        "segments": segments,
        "start": start,
        "end": now,
        "hours": hours,
        "height": 5 + 3 * len(rows),
    }
