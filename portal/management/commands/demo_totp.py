"""``manage.py demo_totp USERNAME``: the current authenticator code of a demo account.

The demo accounts have a TOTP secret seeded by ``seed_demo`` (demo only), so the
demo stays usable without a phone. Refused when PORTAL_ENV=production.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts import demo_totp


class Command(BaseCommand):
    help = "Print the current TOTP code of a demo account (demo only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "demo_totp reads second-factor secrets: not with PORTAL_ENV=production."
            )
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        found = demo_totp.current_code(user)
        if found is None:
            raise CommandError(f"{username} has no authenticator app set up.")
        code, seconds = found
        self.stdout.write(f"{code}  (valid for {seconds} more seconds)")
