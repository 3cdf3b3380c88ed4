"""Incremental verification (issue 13): ``verify_audit`` starts at the head the last intact
verification reached; ``--full`` walks from genesis. Tampering after that point is caught
by the incremental run; an edit before it by ``--full``; a re-hashed history by the
anchor's hash."""

from __future__ import annotations

import hashlib

import pytest
from django.core.management import call_command
from django.db import transaction

from portal import audit
from portal.audit import integrity
from portal.models import AuditEvent, ChainVerification, canonical_json
from tests.tampering import triggers_disabled

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_checkpoints(settings, tmp_path):
    # No signed checkpoints: what is caught here is caught by the walk and its anchor.
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    settings.AUDIT_CHECKPOINT_S3_BUCKET = ""


def append(n: int) -> None:
    for i in range(n):
        with transaction.atomic():
            audit.record("test.later", ("thing", i), system="test", payload={"i": i})


def verify(*args: str) -> tuple[int, str]:
    """(exit status, output) of ``manage.py verify_audit``."""
    try:
        call_command("verify_audit", *args)
    except SystemExit as exit_:
        return int(exit_.code or 0), ""
    return 0, ""


def head() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_the_first_run_is_full_and_the_next_reads_only_newer_events(history, capsys):
    verify()
    first = ChainVerification.objects.order_by("-id").first()
    assert first.outcome == "intact" and first.events_checked == head()
    assert first.trigger == "manage.py verify_audit"
    anchor = head()
    append(5)
    assert verify() == (0, "")
    out = capsys.readouterr().out
    assert f"incremental: from #{anchor}" in out
    run = ChainVerification.objects.order_by("-id").first()
    # The anchor event itself and the five newer ones.
    assert run.events_checked == 6 and run.head_seq == head()
    assert run.trigger == f"manage.py verify_audit (incremental from #{anchor})"
    assert integrity.badge().state == "intact"


def test_tampering_after_the_last_verification_is_caught_incrementally(history, capsys):
    verify()
    anchor = head()
    append(4)
    with triggers_disabled():
        AuditEvent.objects.filter(seq=anchor + 2).update(payload={"i": 99})
    status, _ = verify()
    assert status == 1
    err = capsys.readouterr().err
    assert f"BROKEN at #{anchor + 2}: content does not match its hash" in err
    assert "incremental" in err
    assert integrity.badge().state == "broken"


def test_an_edit_before_the_last_verification_is_caught_by_full(history, capsys):
    verify()
    append(3)
    with triggers_disabled():
        AuditEvent.objects.filter(seq=3).update(payload={"forged": True})
    # The incremental walk starts after #3: it does not read it again (its known limit).
    assert verify() == (0, "")
    capsys.readouterr()
    status, _ = verify("--full")
    assert status == 1
    assert "BROKEN at #3: content does not match its hash" in capsys.readouterr().err
    # Once a run found the record broken, no incremental run turns the badge green again.
    status, _ = verify()
    assert status == 1
    assert ChainVerification.objects.order_by("-id").first().events_checked == head()
    assert integrity.badge().state == "broken"


def test_a_rehashed_history_before_the_anchor_is_caught_incrementally(history, capsys):
    """A careful attacker re-hashes every event from the edit on: the chain holds, but the
    event the last verification ended at no longer has the hash it saw."""
    verify()
    anchor = head()
    append(2)
    events = list(AuditEvent.objects.filter(seq__gte=5).order_by("seq"))
    prev = AuditEvent.objects.get(seq=4).hash
    for event in events:
        if event.seq == 5:
            event.payload = {"forged": True}
        event.prev_hash = prev
        event.hash = hashlib.sha256(canonical_json(event.canonical_fields())).hexdigest()
        prev = event.hash
    with triggers_disabled(), transaction.atomic():
        for event in events:
            AuditEvent.objects.filter(pk=event.pk).update(hash=f"tmp{event.pk}")
        for event in events:
            AuditEvent.objects.filter(pk=event.pk).update(
                payload=event.payload, prev_hash=event.prev_hash, hash=event.hash
            )
    assert list(audit.iter_chain_breaks()) == []  # the chain alone holds
    status, _ = verify()
    assert status == 1
    err = capsys.readouterr().err
    assert f"BROKEN at #{anchor}: hash differs from the last verification's" in err


def test_a_truncated_log_is_caught_incrementally(history, capsys):
    verify()
    anchor = head()
    with triggers_disabled():
        AuditEvent.objects.filter(seq__gte=anchor - 1).delete()
    status, _ = verify()
    assert status == 1
    err = capsys.readouterr().err
    assert f"BROKEN at #{anchor}: the event the last verification ended at is missing" in err
