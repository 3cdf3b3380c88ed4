"""``manage.py verify_readiness``: check AWS and Okta against the access plan.

Exit status: 0 every check passes (warnings allowed), 1 some check fails,
2 some check could not be made (and none failed).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from federation.models import ReadinessRun
from federation.plan import PlanError, cloudformation, current_plan, iam
from federation.plan import files as plan_files
from federation.readiness import checks as readiness

SYMBOL = {"pass": "ok  ", "warn": "WARN", "fail": "FAIL", "unknown": "??  "}


class Command(BaseCommand):
    help = (
        "Check the AWS accounts and the Okta org against the access plan; store the run for "
        "the portal. Exit status 0 all pass, 1 some fail, 2 could not check."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fix",
            action="store_true",
            help="create missing Okta groups and assign them to the app (audited); for AWS, "
            "print the CloudFormation to deploy (AWS is never changed)",
        )
        parser.add_argument("--json", action="store_true", help="print the results as JSON")
        parser.add_argument("--aws-only", action="store_true")
        parser.add_argument("--okta-only", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        aws, okta = not options["okta_only"], not options["aws_only"]
        results = readiness.run_checks(aws=aws, okta=okta)
        fixed: list[str] = []
        if options["fix"] and okta:
            fixed = readiness.fix_okta_groups(results)
            if fixed:
                results = readiness.run_checks(aws=aws, okta=okta)
        run = readiness.start_run(ReadinessRun.Trigger.COMMAND)
        run = readiness.finish_run(run.pk, results)
        status = run.status
        if options["json"]:
            body = {"run": run.pk, "status": status, "fixed": fixed, "results": run.results}
            self.stdout.write(json.dumps(body, indent=2))
        else:
            self._report(results, fixed, status)
        if options["fix"]:
            self._print_cloudformation(results)
        sys.exit(readiness.exit_status(status))

    def _report(self, results: list[readiness.CheckResult], fixed: list[str], status: str) -> None:
        for line in fixed:
            self.stdout.write(f"fixed: {line}")
        area = None
        for result in results:
            if result.area != area:
                area = result.area
                self.stdout.write(f"\n{area or 'General'}")
            subject = f" [{result.subject}]" if result.subject else ""
            self.stdout.write(f"  {SYMBOL[result.status]} {result.name}{subject}: {result.detail}")
            if result.fix:
                self.stdout.write(f"        fix: {result.fix}")
        counts = readiness.counts(results)
        summary = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
        self.stdout.write(f"\nReadiness: {status} ({summary})")

    def _print_cloudformation(self, results: list[readiness.CheckResult]) -> None:
        """AWS is never changed by the portal: show what to deploy instead."""
        failing = {r.area for r in results if r.name.startswith("aws.") and r.status == "fail"}
        if not failing:
            return
        try:
            files = plan_files.files(iam.render(current_plan()), "cloudformation")
        except PlanError:
            return
        wanted = []
        if readiness.AREA_EMERGENCY in failing:
            wanted.append(cloudformation.EMERGENCY_TEMPLATE)
        if readiness.AREA_WORKLOAD in failing:
            wanted.append(cloudformation.WORKLOAD_TEMPLATE)
        self.stdout.write(
            "\nAWS is not changed by --fix. Deploy this CloudFormation (emergency account first, "
            "then the workload template as a StackSet):"
        )
        for name in wanted:
            self.stdout.write(f"\n# --- {name}\n{files[name]}", ending="")
