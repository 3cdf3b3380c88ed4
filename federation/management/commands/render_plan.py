"""``manage.py render_plan``: the access plan as IAM documents, CloudFormation or Okta settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from federation.plan import PlanError, current_plan, iam, parse_plan, read_plan_file
from federation.plan import files as plan_files


class Command(BaseCommand):
    help = (
        "Render the access plan: IAM policy documents (json), the CloudFormation templates "
        "of the emergency and workload accounts (cloudformation), or the Okta app's settings "
        "and groups (okta). Without --out the files are printed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=plan_files.FORMATS, default="json")
        parser.add_argument("--out", metavar="DIR", help="write one file per document here")
        parser.add_argument(
            "--plan",
            metavar="FILE",
            help="render this TOML plan file instead of the plan in the database",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["plan"]:
                spec = parse_plan(read_plan_file(options["plan"])[0])
            else:
                spec = current_plan()
        except PlanError as exc:
            raise CommandError("\n".join(exc.errors)) from None
        files = plan_files.files(iam.render(spec), options["format"])
        if not options["out"]:
            for name, text in files.items():
                if len(files) > 1:
                    self.stdout.write(f"# --- {name}")
                self.stdout.write(text, ending="")
            return
        out = Path(options["out"])
        for name, text in files.items():
            path = out / name
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
            self.stdout.write(str(path))
