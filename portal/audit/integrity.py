"""Verify the whole audit record and remember the outcome for the integrity badge.

``verify`` reads the checkpoints first, then walks the chain in one database
snapshot: a checkpoint written while the walk runs can never look like a
truncated tail. Every run is stored as a ``ChainVerification`` so pages show the
last result instead of re-hashing a million events per view.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from portal import audit, notify, queue
from portal.audit import checkpoints
from portal.core.access import APPROVERS, AUDITORS
from portal.models import AuditEvent, ChainVerification

log = logging.getLogger("portal.audit")

# Stored with the run; the command prints every problem.
STORED_PROBLEMS = 50


@dataclass
class Result:
    events: int = 0
    head_seq: int = 0
    head_hash: str = audit.GENESIS_HASH
    checkpoints_checked: int = 0
    latest_checkpoint: checkpoints.Checkpoint | None = None
    problems: list[audit.ChainBreak] = field(default_factory=list)
    # An incremental run: the (seq, hash) of the last intact verification it started from.
    anchor: tuple[int, str] | None = None

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first(self) -> audit.ChainBreak | None:
        return min(self.problems, key=lambda p: p.seq, default=None)


def last_verified() -> tuple[int, str] | None:
    """The head (seq, hash) the newest verification reached, if it found the record intact.

    None when there is none, or when the newest found it broken: a break once found is
    never verified away by a walk that starts after it (only a full run speaks then).
    """
    run = (
        ChainVerification.objects.filter(
            outcome__in=[ChainVerification.Outcome.INTACT, ChainVerification.Outcome.BROKEN],
            finished_at__isnull=False,
        )
        .order_by("-finished_at", "-id")
        .first()
    )
    if run is None or run.outcome != ChainVerification.Outcome.INTACT:
        return None
    return (run.head_seq, run.head_hash) if run.head_seq and run.head_hash else None


def check(*, use_checkpoints: bool = True, s3_client: Any = None, full: bool = True) -> Result:
    """The chain, then every checkpoint against it.

    ``full``: from genesis. Otherwise incremental: from the head the last intact
    verification reached (that event must still hold the same hash), through every
    newer event; every signed checkpoint is checked either way. An incremental run does
    not re-read older events: an edit there that was not re-hashed, or a deleted older
    event, is found by the next full run (the beat's, daily) -- or, if the history was
    re-hashed to hide it, by the anchor's hash and the signed checkpoints right away.
    """
    result = Result()
    loaded = checkpoints.load(s3_client=s3_client) if use_checkpoints else None
    stats: dict[str, Any] = {}
    # One snapshot for the walk (and no WITH HOLD cursor materialising the table).
    with transaction.atomic():
        result.anchor = None if full else last_verified()
        result.problems = list(audit.iter_chain_breaks(stats=stats, anchor=result.anchor))
        result.events = stats["events"]
        result.head_seq, result.head_hash = stats["head_seq"], stats["head_hash"]
        if loaded is not None:
            result.problems += loaded.problems
            result.problems += checkpoints.check(loaded.checkpoints, result.head_seq)
            result.checkpoints_checked = len(loaded.checkpoints)
            result.latest_checkpoint = checkpoints.latest(loaded.checkpoints)
    result.problems.sort(key=lambda p: p.seq)
    return result


def run(
    trigger: str,
    *,
    run_id: int | None = None,
    use_checkpoints: bool = True,
    s3_client: Any = None,
    full: bool = True,
) -> Result:
    """Verify and store the outcome (``trigger`` says who asked: beat, command, page).

    ``run_id`` is the row ``request_verification`` created when "verify now" was pressed.
    ``full=False`` verifies incrementally (see ``check``).
    """
    run = ChainVerification.objects.filter(pk=run_id).first() if run_id else None
    if run is None:
        run = ChainVerification.objects.create(started_at=timezone.now(), trigger=trigger[:128])
    else:
        run.started_at = timezone.now()
        run.save(update_fields=["started_at"])
    try:
        result = check(use_checkpoints=use_checkpoints, s3_client=s3_client, full=full)
    except Exception as exc:
        run.outcome = ChainVerification.Outcome.ERROR
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.finished_at = timezone.now()
        run.save(update_fields=["outcome", "error", "finished_at"])
        raise
    first = result.first
    run.outcome = (
        ChainVerification.Outcome.INTACT if result.intact else ChainVerification.Outcome.BROKEN
    )
    if result.anchor is not None:
        run.trigger = f"{run.trigger} (incremental from #{result.anchor[0]})"[:128]
    run.finished_at = timezone.now()
    run.events_checked = result.events
    run.head_seq = result.head_seq
    run.head_hash = result.head_hash
    run.checkpoints_checked = result.checkpoints_checked
    run.latest_checkpoint_seq = result.latest_checkpoint.seq if result.latest_checkpoint else None
    run.first_bad_seq = first.seq if first else None
    run.problems = [{"seq": p.seq, "reason": p.reason} for p in result.problems[:STORED_PROBLEMS]]
    run.save(
        update_fields=[
            "trigger",
            "outcome",
            "finished_at",
            "events_checked",
            "head_seq",
            "head_hash",
            "checkpoints_checked",
            "latest_checkpoint_seq",
            "first_bad_seq",
            "problems",
        ]
    )
    if first is None:
        log.info(
            "audit chain intact: %d events, head #%d %s, %d checkpoints",
            result.events,
            result.head_seq,
            result.head_hash,
            result.checkpoints_checked,
        )
    else:
        log.error(
            "AUDIT CHAIN BROKEN at #%d: %s (%d problems)",
            first.seq,
            first.reason,
            len(result.problems),
        )
    return result


# --- The badge ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Badge:
    """What the integrity badge says: intact, broken, error, stale (too old) or unknown."""

    state: str
    last: ChainVerification | None
    running: ChainVerification | None
    events_since: int

    @property
    def ok(self) -> bool:
        return self.state == "intact"


def badge() -> Badge:
    finished = (
        ChainVerification.objects.exclude(outcome=ChainVerification.Outcome.RUNNING)
        .order_by("-finished_at", "-id")
        .first()
    )
    running = (
        ChainVerification.objects.filter(
            outcome=ChainVerification.Outcome.RUNNING,
            started_at__gte=timezone.now() - dt.timedelta(seconds=settings.AUDIT_VERIFY_TIMEOUT),
        )
        .order_by("-started_at")
        .first()
    )
    head_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    since = head_seq - (finished.head_seq or 0) if finished else head_seq
    if finished is None:
        state = "unknown"
    elif finished.outcome == ChainVerification.Outcome.BROKEN:
        state = "broken"
    elif finished.outcome == ChainVerification.Outcome.ERROR:
        state = "error"
    elif finished.finished_at is None or finished.finished_at < timezone.now() - dt.timedelta(
        hours=settings.AUDIT_VERIFY_STALE_HOURS
    ):
        state = "stale"
    else:
        state = "intact"
    return Badge(state=state, last=finished, running=running, events_since=max(0, since))


def request_verification(trigger: str) -> ChainVerification | None:
    """Queue a verification unless one is waiting or running; the new run, or None."""
    if badge().running is not None:
        return None
    run = ChainVerification.objects.create(started_at=timezone.now(), trigger=trigger[:128])
    queue.verify_audit_chain(run.trigger, run.pk, on_failure=lambda exc: _not_queued(run, exc))
    return run


def _not_queued(run: ChainVerification, exc: Exception) -> None:
    # The broker is down: say so on the badge, not with a 500.
    run.outcome = ChainVerification.Outcome.ERROR
    run.error = f"could not queue the verification: {exc}"[:2000]
    run.finished_at = timezone.now()
    run.save(update_fields=["outcome", "error", "finished_at"])


def alert(result: Result) -> None:
    """Tell auditors, approvers and administrators that the record no longer holds."""
    first = result.first
    if first is None:
        return
    people = get_user_model().objects.filter(
        Q(groups__name__in=[AUDITORS, APPROVERS]) | Q(is_superuser=True), is_active=True
    )
    text = (
        f"The audit log no longer verifies: first problem at #{first.seq}: {first.reason}. "
        f"{len(result.problems)} problem(s) in all; run `manage.py verify_audit --all`. "
        "Events from there on cannot be trusted until security has looked."
    )
    link = settings.SITE_URL.rstrip("/") + reverse("auditor-history")
    with transaction.atomic():
        notify.notify(
            "audit.chain_broken",
            f"AUDIT LOG BROKEN at #{first.seq}",
            text,
            link,
            {user.email for user in people if user.email},
        )
