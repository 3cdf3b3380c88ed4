"""Signed checkpoints: a truncated tail, a rewritten history and a forged checkpoint are caught."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

import boto3
import pytest
from botocore.exceptions import ClientError
from django.core.management import call_command
from django.db import transaction
from moto import mock_aws

from portal import audit
from portal.audit import checkpoints, integrity
from portal.models import AuditEvent, canonical_json
from tests.tampering import triggers_disabled

pytestmark = pytest.mark.django_db

BUCKET = "audit-checkpoints-test"


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    settings.AUDIT_CHECKPOINT_KEY = "test-checkpoint-key"
    settings.AUDIT_CHECKPOINT_S3_BUCKET = ""
    return tmp_path / "checkpoints"


def problems() -> list[audit.ChainBreak]:
    return integrity.check().problems


def test_a_checkpoint_is_signed_and_written_to_file_and_log(history, checkpoint_dir, caplog):
    with caplog.at_level(logging.INFO, logger="portal.audit"):
        cp = checkpoints.write_checkpoint()
    head = AuditEvent.objects.order_by("-seq").first()
    assert (cp.seq, cp.hash) == (head.seq, head.hash)
    line = json.loads((checkpoint_dir / "checkpoints.jsonl").read_text())
    assert line == cp.as_json()
    assert set(line) == {"seq", "hash", "time", "key_id", "signature"}
    assert checkpoints.signature_ok(cp)
    assert f"audit checkpoint seq={cp.seq} hash={cp.hash}" in caplog.text
    result = integrity.check()
    assert result.intact and result.checkpoints_checked == 1
    assert result.latest_checkpoint.seq == head.seq


def test_a_truncated_tail_is_named(history):
    checkpoints.write_checkpoint()
    head = AuditEvent.objects.order_by("-seq").first().seq
    with triggers_disabled():
        AuditEvent.objects.filter(seq__gt=head - 3).delete()
    # The chain on its own still verifies: only the checkpoint can tell.
    assert list(audit.iter_chain_breaks()) == []
    [problem] = problems()
    assert problem.seq == head - 2
    assert f"3 events missing at the end: the log ends at #{head - 3}" in problem.reason
    assert f"recorded #{head} (tail truncated)" in problem.reason


def test_the_command_names_a_truncated_tail(history, capsys):
    call_command("audit_checkpoint")
    printed = json.loads(capsys.readouterr().out)
    with triggers_disabled():
        AuditEvent.objects.filter(seq=printed["seq"]).delete()
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_audit")
    assert exit_.value.code == 1
    assert f"BROKEN at #{printed['seq']}: 1 event missing at the end" in capsys.readouterr().err


def _rechain_from(seq: int) -> None:
    """What a careful attacker does: re-hash every event from ``seq`` on, links and all."""
    events = list(AuditEvent.objects.filter(seq__gte=seq).order_by("seq"))
    prev = AuditEvent.objects.get(seq=seq - 1).hash
    for event in events:
        event.prev_hash = prev
        event.hash = hashlib.sha256(canonical_json(event.canonical_fields())).hexdigest()
        prev = event.hash
    with triggers_disabled(), transaction.atomic():
        # hash is unique: move them out of the way first.
        for event in events:
            AuditEvent.objects.filter(pk=event.pk).update(hash=f"tmp{event.pk}")
        for event in events:
            AuditEvent.objects.filter(pk=event.pk).update(
                payload=event.payload, prev_hash=event.prev_hash, hash=event.hash
            )


def test_a_rewritten_and_rehashed_history_is_caught_by_the_checkpoint(history):
    checkpoints.write_checkpoint()
    victim = AuditEvent.objects.get(action="request.denied")
    with triggers_disabled():
        AuditEvent.objects.filter(pk=victim.pk).update(payload={"reason": "it was fine"})
    _rechain_from(victim.seq)
    # A consistent chain again: only the checkpoint, kept elsewhere, remembers.
    assert list(audit.iter_chain_breaks()) == []
    [problem] = problems()
    head = AuditEvent.objects.order_by("-seq").first().seq
    assert problem.seq == head
    assert "hash differs from the checkpoint" in problem.reason


def test_a_forged_checkpoint_is_caught(history, checkpoint_dir):
    checkpoints.write_checkpoint()
    path = checkpoint_dir / "checkpoints.jsonl"
    body = json.loads(path.read_text())
    body["seq"] -= 2  # hide the last two events
    path.write_text(json.dumps(body) + "\n")
    [problem] = problems()
    assert "bad signature or an unknown key" in problem.reason


def test_a_damaged_checkpoint_store_is_reported(history, checkpoint_dir):
    checkpoints.write_checkpoint()
    with (checkpoint_dir / "checkpoints.jsonl").open("a") as f:
        f.write("not json\n")
    [problem] = problems()
    assert "checkpoints.jsonl:2 is not a checkpoint" in problem.reason


def test_older_checkpoints_are_checked_too(history):
    first = checkpoints.write_checkpoint()
    with transaction.atomic():
        audit.record("test.more", ("thing", 1))
    checkpoints.write_checkpoint()
    with triggers_disabled():
        AuditEvent.objects.filter(seq=first.seq).update(action="rewritten")
    _rechain_from(first.seq)
    found = problems()
    assert [p.seq for p in found] == [first.seq, first.seq + 1]
    assert all("hash differs from the checkpoint" in p.reason for p in found)


@pytest.fixture
def s3(settings, monkeypatch):
    """A moto S3 bucket with Object Lock (compliance mode, one day)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    settings.AWS_ENDPOINT_URL = ""
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET,
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
            ObjectLockEnabledForBucket=True,
        )
        settings.AUDIT_CHECKPOINT_S3_BUCKET = BUCKET
        settings.AUDIT_CHECKPOINT_S3_REGION = "eu-west-1"
        settings.AUDIT_CHECKPOINT_S3_RETENTION_DAYS = 1
        yield client


def test_checkpoints_go_to_s3_under_object_lock(history, s3):
    cp = checkpoints.write_checkpoint()
    [item] = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert (
        item["Key"]
        == f"audit-checkpoints/{cp.seq:020d}-{cp.time[:19].replace('-', '').replace(':', '')}.json"
    )
    head = s3.head_object(Bucket=BUCKET, Key=item["Key"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)
    # Nobody can remove it before the retention date.
    version = s3.list_object_versions(Bucket=BUCKET)["Versions"][0]["VersionId"]
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"], VersionId=version)
    assert checkpoints.latest_from_s3().seq == cp.seq


def test_s3_catches_a_truncation_the_local_file_lost(history, s3, settings, checkpoint_dir):
    checkpoints.write_checkpoint()
    head = AuditEvent.objects.order_by("-seq").first().seq
    # The attacker truncates the log and deletes the local checkpoint file.
    with triggers_disabled():
        AuditEvent.objects.filter(seq=head).delete()
    (checkpoint_dir / "checkpoints.jsonl").unlink()
    [problem] = problems()
    assert problem.seq == head
    assert f"s3://{BUCKET}/" in problem.reason and "tail truncated" in problem.reason


def test_the_newest_s3_checkpoint_is_the_highest_seq(history, s3):
    checkpoints.write_checkpoint()
    with transaction.atomic():
        audit.record("test.more", ("thing", 1))
    second = checkpoints.write_checkpoint()
    assert checkpoints.latest_from_s3().seq == second.seq


class TestTasks:
    def test_the_checkpoint_task(self, history, checkpoint_dir):
        from portal.tasks import audit_checkpoint

        assert audit_checkpoint() == AuditEvent.objects.order_by("-seq").first().seq
        assert (checkpoint_dir / "checkpoints.jsonl").exists()

    def test_the_daily_verification_stores_its_result(self, history, monkeypatch):
        from portal.tasks import verify_audit_chain

        alerts = []
        monkeypatch.setattr(integrity, "alert", alerts.append)
        assert verify_audit_chain() is True
        assert alerts == []
        assert integrity.badge().last.trigger == "task: beat"

    def test_a_broken_chain_alerts(self, history, monkeypatch, approver, auditor):
        from portal.tasks import verify_audit_chain

        sent = []
        monkeypatch.setattr(
            "portal.notify.notify", lambda *args, **kwargs: sent.append((args, kwargs))
        )
        with triggers_disabled():
            AuditEvent.objects.filter(seq=3).update(payload={})
        assert verify_audit_chain() is False
        [(args, _)] = sent
        event, subject, text, link, emails = args
        assert event == "audit.chain_broken"
        assert subject == "AUDIT LOG BROKEN at #3"
        assert "#3" in text and link.endswith("/auditor/")
        assert {approver.email, auditor.email} <= set(emails)
        badge = integrity.badge()
        assert badge.state == "broken" and badge.last.first_bad_seq == 3
