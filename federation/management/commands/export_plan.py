"""``manage.py export_plan``: print the current access plan as TOML."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from federation.plan import PlanError, export_plan


class Command(BaseCommand):
    help = "Print the access plan the database holds, in the format import_plan reads."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            text = export_plan()
        except PlanError as exc:
            raise CommandError("\n".join(exc.errors)) from None
        self.stdout.write(text, ending="")
