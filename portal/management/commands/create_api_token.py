"""``manage.py create_api_token USERNAME [--name NAME]``: a personal API token for automation.

The raw token is the only thing written to stdout (so ``TOKEN=$(manage.py
create_api_token bot)`` works); it is shown once and never stored.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts.tokens import create_token
from portal.core.errors import DomainError


class Command(BaseCommand):
    help = "Create a personal API token for USERNAME and print it once on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The portal user the token acts as.")
        parser.add_argument(
            "--name", default="command line", help="What the token is for (shown on /tokens/)."
        )
        parser.add_argument(
            "--days", type=int, default=None, help="Lifetime in days (default 30, at most 90)."
        )
        parser.add_argument(
            "--read-only", action="store_true", help="The token can read but never change."
        )

    def handle(
        self,
        *args: Any,
        username: str,
        name: str,
        days: int | None,
        read_only: bool,
        **options: Any,
    ) -> None:
        user_model = get_user_model()
        user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"There is no portal user named {username!r}.")
        try:
            token, raw = create_token(
                user,
                name,
                None,
                system="manage.py create_api_token",
                days=days,
                read_only=read_only,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        except DomainError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(raw)
        self.stderr.write(
            f"Created API token {token.name!r} ({token.hint}…) for {user.get_username()}, "
            f"{'read-only, ' if token.read_only else ''}"
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC. "
            "It is shown only this once: store it now."
        )
