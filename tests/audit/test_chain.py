"""The hash chain: what it covers, and every way of tampering with it is detected and named."""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from portal import audit
from portal.audit import GENESIS_HASH, integrity, iter_chain_breaks, verify_chain
from portal.models import AuditEvent
from tests.tampering import has_guard, triggers_disabled, truncate_guard_enabled

pytestmark = pytest.mark.django_db


def breaks() -> list[audit.ChainBreak]:
    return list(iter_chain_breaks())


def test_a_realistic_history_verifies(history):
    events = list(AuditEvent.objects.order_by("seq"))
    assert len(events) > 20
    kinds = {"request.filed", "request.approved", "request.active", "request.expired"}
    kinds |= {"request.revoked", "request.denied", "request.cancelled", "role.granted"}
    kinds |= {"failover.opened", "okta.unexpected_member_removed"}
    assert kinds <= {e.action for e in events}
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert breaks() == []
    assert verify_chain() is None


def test_the_canonical_form_is_the_documented_one(history):
    """docs/audit.md: sorted keys, no spaces, ASCII, UTC microseconds; sha256 of that."""
    event = AuditEvent.objects.get(action="test.odd_values")
    body = {
        "seq": event.seq,
        "created_at": event.created_at.astimezone()
        .astimezone(__import__("datetime").UTC)
        .strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
        "actor_id": None,
        "actor": "test",
        "action": "test.odd_values",
        "target": "thing:1",
        "payload": event.payload,
        "client_ip": None,
        "prev_hash": event.prev_hash,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    assert event.canonical() == text.encode()
    assert hashlib.sha256(text.encode()).hexdigest() == event.hash
    # Dates and decimals were stored as the strings the hash covers.
    assert event.payload["amount"] == "1.50"
    assert "\\u00eb" in text  # non-ASCII escaped


def test_actor_id_and_client_address_are_covered(engineer, plan, open_failover):
    token = audit.client_ip_var.set("2001:DB8:0:0::1")
    try:
        with transaction.atomic():
            event = audit.record("test.ip", ("thing", 1), actor=engineer)
    finally:
        audit.client_ip_var.reset(token)
    stored = AuditEvent.objects.get(pk=event.pk)
    # Stored the way PostgreSQL's inet gives it back, so the hash still matches.
    assert stored.client_ip == "2001:db8::1"
    assert stored.compute_hash() == stored.hash
    fields = stored.canonical_fields()
    assert fields["actor_id"] == engineer.pk and fields["client_ip"] == "2001:db8::1"
    with triggers_disabled():
        AuditEvent.objects.filter(pk=event.pk).update(client_ip="10.0.0.1")
    assert [b.seq for b in breaks()] == [stored.seq]


def test_payloads_json_cannot_spell_are_refused(open_failover):
    with transaction.atomic(), pytest.raises(ValueError):
        audit.record("test.nan", ("thing", 1), payload={"x": float("nan")})


def test_a_changed_payload_is_named(history):
    event = AuditEvent.objects.get(action="request.denied")
    with triggers_disabled():
        AuditEvent.objects.filter(pk=event.pk).update(payload={"reason": "approved really"})
    [problem] = breaks()
    assert problem.seq == event.seq
    assert "altered" in problem.reason


def test_a_changed_actor_or_time_is_named(history):
    event = AuditEvent.objects.get(action="request.revoked")
    with triggers_disabled():
        AuditEvent.objects.filter(pk=event.pk).update(actor_label="somebody-else")
    assert [b.seq for b in breaks()] == [event.seq]


def test_a_deleted_row_is_named(history):
    victim = AuditEvent.objects.get(action="request.cancelled")
    with triggers_disabled():
        AuditEvent.objects.filter(pk=victim.pk).delete()
    [problem] = breaks()
    assert problem.seq == victim.seq
    assert f"#{victim.seq}" in problem.reason and "missing" in problem.reason


def test_deleting_the_first_events_is_named(history):
    with triggers_disabled():
        AuditEvent.objects.filter(seq__lte=2).delete()
    [problem] = breaks()
    assert problem.seq == 1
    assert "#1 to #2" in problem.reason and "starts at #3" in problem.reason


def test_a_reordered_sequence_is_named(history):
    a = AuditEvent.objects.get(seq=5)
    b = AuditEvent.objects.get(seq=6)
    with triggers_disabled(), transaction.atomic():
        # Swap the two events' places in the sequence (seq is unique: go through a free one).
        AuditEvent.objects.filter(pk=a.pk).update(seq=10**9)
        AuditEvent.objects.filter(pk=b.pk).update(seq=5)
        AuditEvent.objects.filter(pk=a.pk).update(seq=6)
    found = breaks()
    assert found[0].seq == 5
    assert {p.seq for p in found} <= {5, 6, 7}
    assert any("does not link" in p.reason for p in found)


def test_a_rewritten_event_with_a_recomputed_hash_breaks_the_next_link(history):
    """An attacker who re-hashes the event they changed still breaks the next event's link."""
    event = AuditEvent.objects.get(action="request.denied")
    event.payload = {"reason": "nothing to see"}
    with triggers_disabled():
        AuditEvent.objects.filter(pk=event.pk).update(
            payload=event.payload, hash=event.compute_hash()
        )
    [problem] = breaks()
    assert problem.seq == event.seq + 1
    assert "does not link" in problem.reason


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the guard is PostgreSQL's")
class TestAppendOnlyInTheDatabase:
    def test_update_is_refused(self, history):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(seq=1).update(action="nothing")

    def test_delete_is_refused(self, history):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(seq=1).delete()

    def test_raw_sql_is_refused_too(self, history):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE portal_auditevent SET payload = '{}' WHERE seq = 2")

    def test_truncate_is_refused_even_with_the_old_setting(self, history):
        assert has_guard()
        refused = pytest.raises(IntegrityError, match="TRUNCATE")
        guarded = truncate_guard_enabled()
        with refused, transaction.atomic(), guarded, connection.cursor() as cursor:
            # 0003 let any session through with this setting; 0004 removed the escape.
            cursor.execute("SET LOCAL portal.allow_audit_truncate = 'on'")
            cursor.execute("TRUNCATE portal_auditevent CASCADE")
        assert AuditEvent.objects.exists()

    def test_inserts_still_work(self, history):
        with transaction.atomic():
            audit.record("test.more", ("thing", 2))
        assert verify_chain() is None


class TestVerifyAuditCommand:
    def test_intact(self, history, capsys, settings, tmp_path):
        settings.AUDIT_CHECKPOINT_DIR = str(tmp_path)
        call_command("verify_audit")
        out = capsys.readouterr().out
        head = AuditEvent.objects.order_by("-seq").first()
        assert f"Audit log intact: {head.seq} events, head #{head.seq} {head.hash}" in out

    def test_broken_exits_1_naming_the_first_bad_event(self, history, capsys, settings, tmp_path):
        settings.AUDIT_CHECKPOINT_DIR = str(tmp_path)
        with triggers_disabled():
            AuditEvent.objects.filter(seq=4).update(payload={"x": 1})
            AuditEvent.objects.filter(seq=9).delete()
        with pytest.raises(SystemExit) as exit_:
            call_command("verify_audit")
        assert exit_.value.code == 1
        err = capsys.readouterr().err
        assert "Audit log BROKEN at #4: content does not match its hash" in err
        assert "1 more problems" in err
        with pytest.raises(SystemExit):
            call_command("verify_audit", "--all")
        err = capsys.readouterr().err
        assert "#9: 1 event missing (#9)" in err

    def test_each_run_is_stored_for_the_badge(self, history, settings, tmp_path):
        settings.AUDIT_CHECKPOINT_DIR = str(tmp_path)
        call_command("verify_audit")
        badge = integrity.badge()
        assert badge.state == "intact"
        assert badge.last.trigger == "manage.py verify_audit"
        assert badge.last.head_seq == AuditEvent.objects.count()


def test_record_many_appends_one_linked_event_per_target_in_order(history):
    """A decision over many rows (closing revokes every grant) appends the same events
    ``record`` would, one per row, with one insert; the chain still verifies."""
    before = AuditEvent.objects.count()
    head_seq, head_hash = audit.head()
    with transaction.atomic():
        events = audit.record_many(
            "test.bulk", [(("thing", n), {"n": n}) for n in range(3)], system="tests"
        )
    assert [e.seq for e in events] == [head_seq + 1, head_seq + 2, head_seq + 3]
    assert events[0].prev_hash == head_hash
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    stored = list(AuditEvent.objects.filter(action="test.bulk").order_by("seq"))
    assert [(e.target_id, e.payload, e.actor_label) for e in stored] == [
        (str(n), {"n": n}, "tests") for n in range(3)
    ]
    assert AuditEvent.objects.count() == before + 3
    assert verify_chain() is None
