#!/usr/bin/env python3
"""Verify an audit-log export offline, with nothing but Python's standard library.

    python3 verify_export.py audit-log.jsonl
    python3 verify_export.py audit-log.jsonl --checkpoint checkpoint.json --key "$KEY"
    python3 verify_export.py audit-log.jsonl --requests access-requests.jsonl

Each line of a JSON Lines export of the audit log (the portal's "Export JSON
Lines" on the audit log page, /auditor/audit.jsonl) is one event: its canonical
fields plus ``hash``. This script recomputes every hash, checks that each event
links to the one before it (``prev_hash``) and that the sequence has no gaps,
and optionally that

* the export reaches a signed checkpoint (``--checkpoint``, one JSON object as
  written by ``manage.py audit_checkpoint``; ``--key`` the AUDIT_CHECKPOINT_KEY)
  with the same hash, so nothing after it was cut off or rewritten;
* every row of an access-request export (``--requests``) is anchored in the
  verified chain: its ``last_event_seq`` / ``last_event_hash`` is an event of the
  export about that request.

The canonical form (docs/audit.md): the event object without ``hash``, serialised
with sorted keys, no whitespace and non-ASCII characters escaped
(``json.dumps(event, sort_keys=True, separators=(",", ":"))``), hashed with SHA-256.

Exit status: 0 verified, 1 a problem (the first bad event named), 2 unusable input.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
from collections.abc import Iterator
from typing import Any

GENESIS_HASH = "0" * 64
FIELDS = {
    "seq",
    "created_at",
    "actor_id",
    "actor",
    "action",
    "target",
    "payload",
    "client_ip",
    "prev_hash",
    "hash",
}


def canonical(event: dict[str, Any]) -> bytes:
    body = {key: value for key, value in event.items() if key != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def read_jsonl(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    try:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield number, json.loads(line)
    finally:
        if stream is not sys.stdin:
            stream.close()


class Problem(Exception):
    pass


def verify_events(path: str, *, from_genesis: bool) -> tuple[dict[int, dict[str, Any]], list[str]]:
    """Every event by seq (hash, target), and the problems found, first one first."""
    problems: list[str] = []
    events: dict[int, dict[str, Any]] = {}
    previous: dict[str, Any] | None = None
    for number, event in read_jsonl(path):
        missing = FIELDS - set(event)
        if missing:
            raise Problem(f"line {number} is not an audit event (no {', '.join(sorted(missing))})")
        seq = event["seq"]
        if hashlib.sha256(canonical(event)).hexdigest() != event["hash"]:
            problems.append(f"#{seq} (line {number}): content does not match its hash (altered)")
        if previous is None:
            if from_genesis and (seq != 1 or event["prev_hash"] != GENESIS_HASH):
                problems.append(
                    f"#{seq} (line {number}): the export does not start at #1 (genesis)"
                )
        elif seq != previous["seq"] + 1:
            problems.append(
                f"#{seq} (line {number}): the sequence jumps from #{previous['seq']} "
                f"(missing events, or a filtered export)"
            )
        elif event["prev_hash"] != previous["hash"]:
            problems.append(
                f"#{seq} (line {number}): does not link to #{previous['seq']} "
                "(reordered, inserted or rewritten)"
            )
        events[seq] = {"hash": event["hash"], "target": event["target"]}
        previous = event
    if previous is None:
        raise Problem("the export holds no events")
    return events, problems


def check_checkpoint(path: str, key: str | None, events: dict[int, dict[str, Any]]) -> list[str]:
    with open(path, encoding="utf-8") as file:
        text = file.read().strip()
    # A checkpoint file may hold many lines: the last one is the newest.
    checkpoint = json.loads(text.splitlines()[-1])
    problems = []
    if key is not None:
        signed = json.dumps(
            {"seq": checkpoint["seq"], "hash": checkpoint["hash"], "time": checkpoint["time"]},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        expected = hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, checkpoint["signature"]):
            problems.append("the checkpoint's signature does not match this key")
    seq = checkpoint["seq"]
    if seq not in events:
        last = max(events)
        where = "after the end" if seq > last else "before the start"
        problems.append(
            f"checkpoint #{seq} of {checkpoint['time']} is {where} of the export "
            f"(#{min(events)} to #{last}): events are missing"
        )
    elif events[seq]["hash"] != checkpoint["hash"]:
        problems.append(f"#{seq}: hash differs from the checkpoint of {checkpoint['time']}")
    return problems


def check_requests(path: str, events: dict[int, dict[str, Any]]) -> tuple[int, list[str]]:
    problems, rows = [], 0
    for number, row in read_jsonl(path):
        rows += 1
        seq, digest = row.get("last_event_seq"), row.get("last_event_hash")
        event = events.get(seq) if seq is not None else None
        if event is None:
            problems.append(
                f"request #{row.get('id')} (line {number}): event #{seq} is not in the export"
            )
        elif event["hash"] != digest or event["target"] != f"accessrequest:{row.get('id')}":
            problems.append(
                f"request #{row.get('id')} (line {number}): does not match event #{seq}"
            )
    return rows, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a JSON Lines export of the audit log.")
    parser.add_argument("export", help="the audit-log export (.jsonl), or - for stdin")
    parser.add_argument("--checkpoint", help="a checkpoint (JSON; the last line of a .jsonl)")
    parser.add_argument("--key", help="AUDIT_CHECKPOINT_KEY, to check the checkpoint's signature")
    parser.add_argument("--requests", help="an access-request export (.jsonl) to anchor")
    parser.add_argument(
        "--partial",
        action="store_true",
        help="the export starts after #1 (its first prev_hash is taken on trust)",
    )
    args = parser.parse_args(argv)
    try:
        events, problems = verify_events(args.export, from_genesis=not args.partial)
        if args.checkpoint:
            problems += check_checkpoint(args.checkpoint, args.key, events)
        anchored = 0
        if args.requests:
            anchored, more = check_requests(args.requests, events)
            problems += more
    except (OSError, ValueError, KeyError, Problem) as exc:
        print(f"cannot verify: {exc}", file=sys.stderr)
        return 2
    if problems:
        print(f"BROKEN: {problems[0]}", file=sys.stderr)
        for problem in problems[1:]:
            print(f"  also: {problem}", file=sys.stderr)
        return 1
    last = max(events)
    print(
        f"OK: {len(events)} events #{min(events)} to #{last} verified, "
        f"head hash {events[last]['hash']}"
        + (", checkpoint matched" if args.checkpoint else "")
        + (f", {anchored} requests anchored" if args.requests else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
