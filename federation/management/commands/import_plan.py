"""``manage.py import_plan FILE``: make the database hold the access plan in FILE."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from federation.plan import PlanError, import_plan_file


class Command(BaseCommand):
    help = (
        "Import the access plan (emergency account, workload accounts, levels) from a TOML "
        "file. Idempotent; all or nothing; refused while a failover is open."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the plan, e.g. plans/demo.toml")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        try:
            result = import_plan_file(file, system="manage.py import_plan")
        except PlanError as exc:
            problems = "\n".join(f"  {line}" for line in exc.errors)
            raise CommandError(f"{file}: not imported, nothing changed:\n{problems}") from None
        if not result.changed:
            self.stdout.write(f"{file}: unchanged")
            return
        for change in result.changes:
            self.stdout.write(f"  {change}")
        self.stdout.write(self.style.SUCCESS(f"{file}: imported ({result.summary()})"))
