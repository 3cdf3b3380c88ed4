"""Signed checkpoints of the audit chain's head, kept outside the database.

The hash chain shows that no event was changed, removed or reordered *inside*
the log; it cannot show that the newest events were cut off (the shorter chain
is still a valid chain). A checkpoint is the head's (seq, hash) at a moment,
signed with HMAC-SHA256 and written where the database cannot reach: a JSON Lines
file, a log line, and (when configured) an S3 object under Object Lock, which
nobody can delete or overwrite before its retention date. Verification then
checks that the log still holds every checkpointed event with the same hash.

See docs/audit.md for the format and for checking a checkpoint by hand.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from portal import audit
from portal.core import aws
from portal.models import AuditEvent

log = logging.getLogger("portal.audit")

FILE_NAME = "checkpoints.jsonl"


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    time: str
    key_id: str
    signature: str
    # Where it was read from (not signed, not written).
    source: str = ""

    def signed_part(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "time": self.time}

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("source")
        return body


def _key() -> bytes:
    return settings.AUDIT_CHECKPOINT_KEY.encode()


def key_id(key: bytes | None = None) -> str:
    """A fingerprint of the signing key: which key signed, never the key."""
    return hashlib.sha256(b"portal-audit-checkpoint-key:" + (key or _key())).hexdigest()[:16]


def signed_bytes(seq: int, digest: str, time: str) -> bytes:
    body = {"seq": seq, "hash": digest, "time": time}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(seq: int, digest: str, time: str, key: bytes | None = None) -> str:
    return hmac.new(key or _key(), signed_bytes(seq, digest, time), hashlib.sha256).hexdigest()


def signature_ok(checkpoint: Checkpoint) -> bool:
    expected = sign(checkpoint.seq, checkpoint.hash, checkpoint.time)
    return checkpoint.key_id == key_id() and hmac.compare_digest(expected, checkpoint.signature)


# --- Stores ----------------------------------------------------------------------------


def checkpoint_file() -> Path | None:
    directory = settings.AUDIT_CHECKPOINT_DIR
    return Path(directory) / FILE_NAME if directory else None


def _append_to_file(path: Path, checkpoint: Checkpoint) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(checkpoint.as_json(), sort_keys=True) + "\n").encode()
    # One write of one short line with O_APPEND: concurrent writers never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _parse(body: dict[str, Any], source: str) -> Checkpoint:
    return Checkpoint(
        seq=int(body["seq"]),
        hash=str(body["hash"]),
        time=str(body["time"]),
        key_id=str(body.get("key_id", "")),
        signature=str(body["signature"]),
        source=source,
    )


def read_file(path: Path) -> tuple[list[Checkpoint], list[str]]:
    """Every checkpoint in the file, and the lines that are not checkpoints."""
    found: list[Checkpoint] = []
    unreadable: list[str] = []
    if not path.exists():
        return found, unreadable
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                found.append(_parse(json.loads(line), f"{path}:{number}"))
            except (ValueError, KeyError, TypeError):
                unreadable.append(f"{path}:{number}")
    return found, unreadable


def _s3_client() -> Any:
    # The bucket usually lives in a log-archive account: its own region, plain credentials.
    return aws.client("s3", use="checkpoint", region=settings.AUDIT_CHECKPOINT_S3_REGION or None)


def _s3_key(checkpoint: Checkpoint) -> str:
    # Zero-padded seq first: the lexically last key is the newest head.
    stamp = checkpoint.time.replace("-", "").replace(":", "").split(".")[0]
    return f"{settings.AUDIT_CHECKPOINT_S3_PREFIX}{checkpoint.seq:020d}-{stamp}.json"


def _put_s3(checkpoint: Checkpoint, client: Any = None) -> str:
    client = client or _s3_client()
    key = _s3_key(checkpoint)
    extra: dict[str, Any] = {}
    days = settings.AUDIT_CHECKPOINT_S3_RETENTION_DAYS
    if days > 0:
        # Without this the bucket's default retention (if any) applies.
        extra["ObjectLockMode"] = settings.AUDIT_CHECKPOINT_S3_LOCK_MODE
        extra["ObjectLockRetainUntilDate"] = timezone.now() + dt.timedelta(days=days)
    client.put_object(
        Bucket=settings.AUDIT_CHECKPOINT_S3_BUCKET,
        Key=key,
        Body=json.dumps(checkpoint.as_json(), sort_keys=True).encode(),
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
        **extra,
    )
    return key


def latest_from_s3(client: Any = None) -> Checkpoint | None:
    """The checkpoint with the highest seq in the bucket."""
    client = client or _s3_client()
    bucket, prefix = settings.AUDIT_CHECKPOINT_S3_BUCKET, settings.AUDIT_CHECKPOINT_S3_PREFIX
    last_key = None
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [item["Key"] for item in page.get("Contents", [])]
        if keys:
            last_key = max([*keys, last_key or ""])
    if last_key is None:
        return None
    body = client.get_object(Bucket=bucket, Key=last_key)["Body"].read()
    return _parse(json.loads(body), f"s3://{bucket}/{last_key}")


# --- Writing and checking ------------------------------------------------------------


def write_checkpoint(*, s3_client: Any = None) -> Checkpoint:
    """Sign the current head and send it to every configured store."""
    seq, digest = audit.head()
    time = timezone.now().astimezone(dt.UTC).isoformat(timespec="microseconds")
    checkpoint = Checkpoint(
        seq=seq, hash=digest, time=time, key_id=key_id(), signature=sign(seq, digest, time)
    )
    # The log line is a store too: log shippers keep it away from this database.
    log.info(
        "audit checkpoint seq=%d hash=%s time=%s key_id=%s signature=%s",
        seq,
        digest,
        time,
        checkpoint.key_id,
        checkpoint.signature,
    )
    path = checkpoint_file()
    if path is not None:
        _append_to_file(path, checkpoint)
    if settings.AUDIT_CHECKPOINT_S3_BUCKET:
        _put_s3(checkpoint, s3_client)
    return checkpoint


@dataclass
class Loaded:
    checkpoints: list[Checkpoint]
    problems: list[audit.ChainBreak]


def load(*, s3_client: Any = None) -> Loaded:
    """Every checkpoint of the file and the newest of S3 (read before the log is)."""
    checkpoints: list[Checkpoint] = []
    problems: list[audit.ChainBreak] = []
    path = checkpoint_file()
    if path is not None:
        found, unreadable = read_file(path)
        checkpoints += found
        problems += [
            audit.ChainBreak(0, f"checkpoint store damaged: {where} is not a checkpoint")
            for where in unreadable
        ]
    if settings.AUDIT_CHECKPOINT_S3_BUCKET:
        latest = latest_from_s3(s3_client)
        if latest is not None:
            checkpoints.append(latest)
    return Loaded(checkpoints, problems)


def check(checkpoints: Iterable[Checkpoint], head_seq: int) -> list[audit.ChainBreak]:
    """Where the log no longer agrees with a checkpoint (call after verifying the chain)."""
    problems: list[audit.ChainBreak] = []
    checkpoints = list(checkpoints)
    stored = _hashes_at({c.seq for c in checkpoints if 0 < c.seq <= head_seq})
    for cp in checkpoints:
        said = f"the checkpoint of {cp.time} ({cp.source})"
        if not signature_ok(cp):
            problems.append(
                audit.ChainBreak(
                    cp.seq,
                    f"{said} has a bad signature or an unknown key: the checkpoint store was "
                    "altered",
                )
            )
        elif cp.seq > head_seq:
            missing = cp.seq - head_seq
            problems.append(
                audit.ChainBreak(
                    head_seq + 1,
                    f"{missing} event{'s' if missing > 1 else ''} missing at the end: the log "
                    f"ends at #{head_seq} but {said} recorded #{cp.seq} (tail truncated)",
                )
            )
        elif cp.seq > 0 and cp.seq in stored and stored[cp.seq] != cp.hash:
            problems.append(
                audit.ChainBreak(
                    cp.seq,
                    f"hash differs from {said}: the log was rewritten at or before this event",
                )
            )
    return problems


def _hashes_at(seqs: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    ordered = sorted(seqs)
    for start in range(0, len(ordered), 1000):
        batch = ordered[start : start + 1000]
        found.update(AuditEvent.objects.filter(seq__in=batch).values_list("seq", "hash"))
    return found


def latest(checkpoints: Iterable[Checkpoint]) -> Checkpoint | None:
    return max(checkpoints, key=lambda c: (c.seq, c.time), default=None)
