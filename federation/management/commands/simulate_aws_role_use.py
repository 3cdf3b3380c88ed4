"""``manage.py simulate_aws_role_use``: feed the AWS-side alarm matcher one made-up use of
an emergency role (demo and drills without AWS): the same path as an EventBridge delivery."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from federation.models import EmergencyRole
from federation.monitor import role_use


class Command(BaseCommand):
    help = (
        "Record a simulated AWS-side use of an emergency role by LOGIN (as if EventBridge "
        "had delivered it) and print whether it matched a grant or raised an alert."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("login", help="the Okta login AWS would report (source identity)")
        parser.add_argument(
            "--role",
            help="emergency role name (EmergencyAccess_Role<N>_<LEVEL>); default: the first",
        )
        parser.add_argument(
            "--event", choices=role_use.EMERGENCY_EVENTS, default="AssumeRoleWithSAML"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        roles = EmergencyRole.objects.select_related("emergency_account").order_by("pk")
        role = roles.filter(role_name=options["role"]).first() if options["role"] else roles.first()
        if role is None:
            raise CommandError("No such emergency role (import the access plan first?).")
        login: str = options["login"]
        row = role_use.simulate(role, login, options["event"])
        if row.alert:
            self.stdout.write(
                f"ALERT ({row.get_alert_display()}): {row.event_name} of {row.role_arn} by {login}"
            )
        else:
            self.stdout.write(f"Matched grant #{row.grant_id}: {row.event_name} of {row.role_arn}")
