"""Seed the demo's moto server with the demo plan's roles and SAML provider (run_demo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from federation.aws import demo_world
from federation.plan import PlanError, iam, parse_plan


class Command(BaseCommand):
    help = "Create the demo plan's IAM roles and SAML provider in a moto server (demo only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--endpoint", required=True, help="the moto server's URL")
        parser.add_argument(
            "--plan", default=str(Path(settings.BASE_DIR) / "plans" / "demo.toml"), help="plan"
        )

    def handle(self, *args: Any, endpoint: str, plan: str, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("seed_demo_aws is for the demo's moto server only.")
        if not endpoint.startswith(("http://127.0.0.1:", "http://localhost:")):
            raise CommandError("--endpoint must be a moto server on this machine.")
        try:
            rendered = iam.render(parse_plan(Path(plan).read_text()))
        except (OSError, PlanError) as exc:
            raise CommandError(f"{plan}: {exc}") from None
        demo_world.seed(endpoint, rendered)
        accounts = sorted({r.account_id for r in rendered.workload_roles})
        self.stdout.write(
            f"AWS (moto {endpoint}): SAML provider and {len(rendered.emergency_roles)} emergency "
            f"roles in {rendered.emergency_account_id}, workload roles in {', '.join(accounts)}."
        )
