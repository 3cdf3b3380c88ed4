"""``manage.py simulate_aws_role_use``: feed the AWS-side alarm matcher one made-up use of
an emergency role (demo and drills without AWS): the same path as an EventBridge delivery."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

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
        account = role.emergency_account.account_id
        session = f"arn:aws:sts::{account}:assumed-role/{role.role_name}/{login}"
        record: dict[str, Any] = {
            "eventID": f"simulated-{uuid.uuid4()}",
            "eventName": options["event"],
            "eventTime": timezone.now(),
            "awsRegion": "us-east-1",
            "recipientAccountId": account,
            "sourceIPAddress": "192.0.2.1",
        }
        if options["event"] == "ConsoleLogin":
            record["userIdentity"] = {"type": "AssumedRole", "arn": session, "accountId": account}
            record["responseElements"] = {"ConsoleLogin": "Success"}
        else:
            record["userIdentity"] = {"type": "SAMLUser", "userName": login}
            record["requestParameters"] = {"roleArn": role.role_arn, "roleSessionName": login}
            record["responseElements"] = {
                "assumedRoleUser": {"arn": session},
                "sourceIdentity": login,
            }
        use = role_use.from_cloudtrail(record)
        if use is None:  # pragma: no cover - the record above is always a use
            raise CommandError("The simulated record is not a role use.")
        row = role_use.record_use(use, source="simulated", detail={"simulated": True})
        if row is None:  # pragma: no cover - a fresh uuid
            raise CommandError("Already recorded.")
        if row.alert:
            self.stdout.write(
                f"ALERT ({row.get_alert_display()}): {use.event_name} of {use.role_arn} by {login}"
            )
        else:
            self.stdout.write(f"Matched grant #{row.grant_id}: {use.event_name} of {use.role_arn}")
