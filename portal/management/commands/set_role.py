"""``manage.py set_role USERNAME approver|auditor [--remove] [--by ADMIN]``: grant or revoke a
portal role, audited as ``role.granted`` / ``role.revoked``."""

from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts import roles
from portal.core.errors import DomainError


def _user(username: str) -> Any:
    model = get_user_model()
    user = model._default_manager.filter(**{model.USERNAME_FIELD: username}).first()
    if user is None:
        raise CommandError(f"There is no portal user named {username!r}.")
    return user


class Command(BaseCommand):
    help = "Grant (or with --remove revoke) a portal role; the change is audited."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=sorted(roles.ROLES))
        parser.add_argument("--remove", action="store_true", help="Revoke the role instead.")
        parser.add_argument(
            "--by",
            metavar="ADMIN",
            help="The portal user making the change (recorded as the actor); "
            "default: the operating-system user running the command.",
        )

    def handle(self, *args: Any, username: str, role: str, **options: Any) -> None:
        user = _user(username)
        actor = _user(options["by"]) if options["by"] else None
        system = f"manage.py set_role (os user {getpass.getuser()})"
        change = roles.revoke_role if options["remove"] else roles.grant_role
        try:
            changed = change(user, role, actor=actor, system=system, via="manage.py set_role")
        except DomainError as exc:
            raise CommandError(str(exc)) from None
        verb = "no longer holds" if options["remove"] else "now holds"
        if not changed:
            verb = "did not hold" if options["remove"] else "already held"
        self.stdout.write(f"{user.get_username()} {verb} the {role} role.")
