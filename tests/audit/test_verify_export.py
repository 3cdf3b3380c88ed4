"""tools/verify_export.py: an auditor re-verifies an export offline, stdlib only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from portal.audit import checkpoints

pytestmark = pytest.mark.django_db

TOOL = Path(__file__).resolve().parents[2] / "tools" / "verify_export.py"


def run(*args: str) -> subprocess.CompletedProcess:
    # -I -S: isolated, without site-packages: the tool needs nothing but the stdlib.
    return subprocess.run(
        [sys.executable, "-I", "-S", str(TOOL), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def exported(history, auditor, tmp_path):
    client = Client()
    client.force_login(auditor)

    def fetch(url: str, name: str, **params) -> Path:
        response = client.get(url, params)
        path = tmp_path / name
        path.write_bytes(b"".join(response.streaming_content))
        return path

    return fetch


@pytest.fixture
def audit_export(exported) -> Path:
    return exported(reverse("auditor-audit-export", args=["jsonl"]), "audit.jsonl")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_an_intact_export_verifies(audit_export):
    result = run(audit_export)
    assert result.returncode == 0, result.stderr
    n = len(lines(audit_export))
    assert f"OK: {n} events #1 to #{n} verified" in result.stdout


def test_an_altered_event_is_named(audit_export):
    rows = lines(audit_export)
    event = json.loads(rows[6])
    event["payload"]["reason"] = "nothing happened"
    rows[6] = json.dumps(event)
    audit_export.write_text("\n".join(rows) + "\n")
    result = run(audit_export)
    assert result.returncode == 1
    assert result.stderr.startswith(f"BROKEN: #{event['seq']} (line 7): content does not match")


def test_a_removed_event_is_named(audit_export):
    rows = lines(audit_export)
    del rows[3]
    audit_export.write_text("\n".join(rows) + "\n")
    result = run(audit_export)
    assert result.returncode == 1
    assert "BROKEN: #5 (line 4): the sequence jumps from #3" in result.stderr


def test_reordered_events_are_named(audit_export):
    rows = lines(audit_export)
    rows[3], rows[4] = rows[4], rows[3]
    audit_export.write_text("\n".join(rows) + "\n")
    result = run(audit_export)
    assert result.returncode == 1
    assert "BROKEN: #5 (line 4)" in result.stderr


def test_the_export_reaches_a_signed_checkpoint(audit_export, settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "cp")
    settings.AUDIT_CHECKPOINT_KEY = "auditors-copy-of-the-key"
    checkpoints.write_checkpoint()
    checkpoint = tmp_path / "cp" / "checkpoints.jsonl"
    ok = run(audit_export, "--checkpoint", checkpoint, "--key", "auditors-copy-of-the-key")
    assert ok.returncode == 0, ok.stderr
    assert "checkpoint matched" in ok.stdout
    wrong_key = run(audit_export, "--checkpoint", checkpoint, "--key", "guess")
    assert wrong_key.returncode == 1 and "signature does not match" in wrong_key.stderr
    # A truncated export (or log) no longer reaches the checkpoint.
    audit_export.write_text("\n".join(lines(audit_export)[:-2]) + "\n")
    short = run(audit_export, "--checkpoint", checkpoint)
    assert short.returncode == 1 and "is after the end of the export" in short.stderr


def test_request_rows_are_anchored_in_the_chain(exported, audit_export):
    requests = exported(reverse("auditor-history-export", args=["jsonl"]), "requests.jsonl")
    ok = run(audit_export, "--requests", requests)
    assert ok.returncode == 0, ok.stderr
    assert "5 requests anchored" in ok.stdout
    rows = lines(requests)
    row = json.loads(rows[0])
    row["last_event_hash"] = "f" * 64
    rows[0] = json.dumps(row)
    requests.write_text("\n".join(rows) + "\n")
    bad = run(audit_export, "--requests", requests)
    assert bad.returncode == 1 and f"request #{row['id']}" in bad.stderr


def test_a_range_verifies_with_partial(exported):
    part = exported(
        reverse("auditor-audit-export", args=["jsonl"]), "part.jsonl", from_seq=5, to_seq=9
    )
    assert run(part).returncode == 1  # does not start at genesis
    result = run(part, "--partial")
    assert result.returncode == 0 and "5 events #5 to #9" in result.stdout


def test_unusable_input_is_exit_2(tmp_path):
    garbage = tmp_path / "x.jsonl"
    garbage.write_text('{"seq": 1}\n')
    assert run(garbage).returncode == 2
    assert run(tmp_path / "missing.jsonl").returncode == 2
