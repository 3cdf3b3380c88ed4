"""``manage.py doctor``: what /readyz says, for an operator at a terminal.

python manage.py doctor                 every component, exit 1 if one is not ok
python manage.py doctor --check worker  only these (the compose healthchecks)
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from federation.monitor import machinery


class Command(BaseCommand):
    help = "Check the database, Redis, the worker and beat heartbeats, and Okta."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="append",
            choices=["database", "broker", "worker", "beat", "okta"],
            help="Only this component (repeatable).",
        )
        parser.add_argument("--json", action="store_true", help="Print JSON, as /readyz.")

    def handle(self, *args: Any, **options: Any) -> None:
        wanted = options["check"]
        parts = machinery.components(okta=not wanted or "okta" in wanted)
        if wanted:
            parts = [p for p in parts if p.name in wanted]
            missing = set(wanted) - {p.name for p in parts}
            if missing:  # heartbeats are not read when the database is down
                parts += [machinery.Component(n, False, "database unreachable") for n in missing]
        if parts and parts[0].name == "database" and parts[0].ok:
            machinery.check_and_alert()
        if options["json"]:
            self.stdout.write(json.dumps({p.name: p.as_dict() for p in parts}, indent=2))
        else:
            for part in parts:
                mark = "ok  " if part.ok else "FAIL"
                line = f"{mark} {part.name:<9} {part.detail}"
                if part.warning:
                    line += f"\n     warning: {part.warning}"
                self.stdout.write(line)
        failed = [p.name for p in parts if not p.ok]
        if failed:
            raise CommandError(f"not ready: {', '.join(failed)}")
