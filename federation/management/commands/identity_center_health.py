"""Sample Identity Center health once and print the derived state and its evidence.

``--event-types`` lists the AWS Health event types of ``AWS_HEALTH_SERVICE_CODES``
instead: the way to check that the service code (``SSO``) is right for your account.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from federation.aws import clients as aws_clients
from federation.monitor import health


class Command(BaseCommand):
    help = "Sample IAM Identity Center health once (or list AWS Health event types)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--event-types",
            action="store_true",
            help="List AWS Health event types for AWS_HEALTH_SERVICE_CODES and exit.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["event_types"]:
            self._event_types()
            return
        state = health.poll()
        self.stdout.write(f"{state.state} since {state.since:%Y-%m-%d %H:%M:%S %Z}")
        for line in state.evidence:
            self.stdout.write(f"  {line}")

    def _event_types(self) -> None:
        codes = list(settings.AWS_HEALTH_SERVICE_CODES)
        try:
            pages = (
                aws_clients.client("health", "us-east-1")
                .get_paginator("describe_event_types")
                .paginate(filter={"services": codes})
            )
            types = [t for page in pages for t in page.get("eventTypes", [])]
        except (BotoCoreError, ClientError) as exc:
            raise CommandError(f"AWS Health answered: {exc}") from exc
        if not types:
            raise CommandError(f"No AWS Health event types for service code(s) {codes}.")
        for kind in types:
            self.stdout.write(f"{kind.get('service')}\t{kind.get('category')}\t{kind.get('code')}")
