"""``manage.py seed_demo``: the demo plan, people and Okta groups. Safe to run again.

Imports plans/demo.toml, creates the approvers / auditors groups and the demo
users (verified, primary e-mail addresses for allauth), and makes sure every
emergency group exists in the Okta org and is assigned to the federation app,
through the identity-provider port only (never the SDK).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from federation.idp import IdpError, get_identity_provider
from federation.models import EmergencyRole
from federation.plan import PlanError, import_plan_file
from portal.accounts import demo_totp
from portal.core.access import APPROVERS, AUDITORS

DEMO_PLAN = settings.BASE_DIR / "plans" / "demo.toml"
DEFAULT_PASSWORD = "demo-password-123"  # noqa: S105 -- demo users only; seed_demo refuses production


@dataclass(frozen=True)
class DemoUser:
    username: str
    email: str
    groups: tuple[str, ...]
    does: str
    superuser: bool = False


# plans/demo.toml: only the sre portal group may request Ops.
SRE = "sre"

DEMO_USERS = (
    DemoUser("engineer", "engineer@example.com", (SRE,), "requests emergency access"),
    DemoUser(
        "oncall", "oncall@example.com", (SRE,), "on call in PagerDuty: counts as one approval"
    ),
    DemoUser(
        "contractor", "contractor@example.com", (), "may request RO only (the plan: Ops is sre's)"
    ),
    DemoUser("approver1", "approver1@example.com", (APPROVERS,), "approves, runs failovers"),
    DemoUser("approver2", "approver2@example.com", (APPROVERS,), "the second Ops approval"),
    DemoUser("auditor", "auditor@example.com", (AUDITORS,), "reads everything, changes nothing"),
    DemoUser("admin", "admin@example.com", (), "the Django admin (/admin/)", superuser=True),
)


class Command(BaseCommand):
    help = "Create the demo plan, users and Okta groups (idempotent). Not for production."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            default=DEFAULT_PASSWORD,
            help=f"password of every demo user (default {DEFAULT_PASSWORD!r})",
        )
        parser.add_argument(
            "--no-okta",
            action="store_true",
            help="skip creating the emergency groups in the Okta org",
        )

    def handle(self, *args: Any, password: str, no_okta: bool, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "seed_demo creates accounts with a known password: it does not run with "
                "PORTAL_ENV=production."
            )
        if not password:
            raise CommandError("--password must not be empty")
        self._plan()
        with transaction.atomic():
            for line in self._users(password):
                self.stdout.write(f"  {line}")
        if no_okta:
            self.stdout.write("Okta: skipped (--no-okta)")
        else:
            self._okta()
        self._logins(password)

    def _plan(self) -> None:
        try:
            result = import_plan_file(DEMO_PLAN, system="manage.py seed_demo")
        except PlanError as exc:
            problems = "\n".join(f"  {line}" for line in exc.errors)
            raise CommandError(f"{DEMO_PLAN}: not imported:\n{problems}") from None
        self.stdout.write(f"Access plan {DEMO_PLAN.name}: {result.summary()}")
        for change in result.changes:
            self.stdout.write(f"  {change}")

    def _users(self, password: str) -> list[str]:
        self.stdout.write("Demo users:")
        done = []
        names = (APPROVERS, AUDITORS, SRE)
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in names}
        user_model = get_user_model()
        for demo in DEMO_USERS:
            user, created = user_model.objects.get_or_create(
                username=demo.username, defaults={"email": demo.email}
            )
            changed = created
            wanted = {
                "email": demo.email,
                "is_active": True,
                "is_staff": demo.superuser,
                "is_superuser": demo.superuser,
            }
            for name, value in wanted.items():
                if getattr(user, name) != value:
                    setattr(user, name, value)
                    changed = True
            # A new user has no password yet: checking it would cost a full hash for nothing.
            if created or not user.check_password(password):
                user.set_password(password)
                changed = True
            if changed:
                user.save()
            user.groups.set([groups[name] for name in demo.groups])
            changed |= self._email(user)
            changed |= demo_totp.seed(user)  # demo only: `manage.py demo_totp USERNAME`
            state = "created" if created else ("updated" if changed else "unchanged")
            done.append(f"{demo.username:<10} {demo.email:<24} {state}")
        return done

    @staticmethod
    def _email(user: Any) -> bool:
        """A verified, primary address equal to the user's e-mail, for allauth."""
        address, created = EmailAddress.objects.get_or_create(
            user=user, email=user.email, defaults={"verified": True, "primary": True}
        )
        changed = created
        if not (address.verified and address.primary):
            address.verified = address.primary = True
            address.save(update_fields=["verified", "primary"])
            changed = True
        others = EmailAddress.objects.filter(user=user, primary=True).exclude(pk=address.pk)
        return bool(others.update(primary=False)) or changed

    def _okta(self) -> None:
        app_id = settings.OKTA_AWS_APP_ID
        self.stdout.write(f"Okta org {settings.OKTA_ORG_URL}, federation app {app_id}:")
        try:
            idp = get_identity_provider()
            assigned = set(idp.list_app_group_ids(app_id))
            for role in EmergencyRole.objects.requestable():
                group = idp.ensure_group(
                    role.okta_group_name,
                    description=(
                        f"AWS emergency access: {role.role_name} into "
                        f"{role.workload_account.name} ({role.level.name}). "
                        "Managed by the Emergency Access Portal; empty in normal times."
                    ),
                )
                if role.okta_group_id != group.id:
                    role.okta_group_id = group.id
                    role.save(update_fields=["okta_group_id"])
                if group.id in assigned:
                    state = "present, assigned to the app"
                else:
                    idp.assign_group_to_app(app_id, group.id)
                    assigned.add(group.id)
                    state = "present, now assigned to the app"
                self.stdout.write(f"  {role.okta_group_name} ({group.id}): {state}")
        except IdpError as exc:
            raise CommandError(
                f"Okta org {settings.OKTA_ORG_URL} refused or did not answer: {exc}. "
                "Start the sandbox org (python -m federation.sandbox) or pass --no-okta."
            ) from None

    def _logins(self, password: str) -> None:
        self.stdout.write(
            'Easiest: press "Sign in with Okta" and pick a person on the sandbox org\'s page.'
        )
        self.stdout.write(f"Demo logins (password {password!r}, username or e-mail):")
        for demo in DEMO_USERS:
            self.stdout.write(f"  {demo.username:<10} {demo.email:<24} {demo.does}")
        self.stdout.write(
            "Local sign-in asks for an authenticator code: python manage.py demo_totp USERNAME"
        )
