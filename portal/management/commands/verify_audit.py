"""``manage.py verify_audit``: re-hash the audit log and check it against the checkpoints.

Incremental by default: from the head the last intact verification reached (which must
still hold the same hash) to today's head, plus every signed checkpoint. ``--full``
re-hashes from genesis (the beat's daily run and "verify now" always do).

Exit status 0 when the record is intact, 1 when it is not (the first bad event is
named on stderr; ``--all`` lists every problem). The run is stored, so the
integrity badge on the auditor pages shows it.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.audit import integrity


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and its signed checkpoints; exit 1 if broken."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="List every problem, not only the first."
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="Re-hash every event from genesis, not only those after the last "
            "intact verification.",
        )
        parser.add_argument(
            "--no-checkpoints",
            action="store_true",
            help="Check the chain only (a truncated tail then goes unnoticed).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = integrity.run(
            "manage.py verify_audit",
            use_checkpoints=not options["no_checkpoints"],
            full=options["full"],
        )
        since = (
            f" (incremental: from #{result.anchor[0]}, the last intact verification's head; "
            "--full re-reads from genesis)"
            if result.anchor
            else ""
        )
        checkpoint = result.latest_checkpoint
        reached = (
            f"; latest checkpoint #{checkpoint.seq} of {checkpoint.time} ({checkpoint.source})"
            if checkpoint
            else "; no checkpoint to compare with"
        )
        if result.intact:
            self.stdout.write(
                f"Audit log intact: {result.events} events, head #{result.head_seq} "
                f"{result.head_hash}, {result.checkpoints_checked} checkpoints checked{reached}"
                f"{since}."
            )
            return
        first = result.first
        if first is None:  # broken always names its first bad event
            raise CommandError("Audit log BROKEN, but no problem was named.")
        self.stderr.write(f"Audit log BROKEN at #{first.seq}: {first.reason}")
        if options["all"]:
            for problem in result.problems:
                self.stderr.write(f"  {problem}")
        elif len(result.problems) > 1:
            self.stderr.write(
                f"  … and {len(result.problems) - 1} more problems (--all lists them)"
            )
        self.stderr.write(f"Read {result.events} events up to #{result.head_seq}{reached}{since}.")
        sys.exit(1)
