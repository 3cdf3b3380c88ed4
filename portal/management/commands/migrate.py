"""``manage.py migrate`` as the database owner (``DATABASE_OWNER_URL``), then the grants.

Django's own migrate, with two changes when an owner connection is configured: it
migrates through that connection unless ``--database`` names another, and afterwards
grants the runtime role (``DATABASE_URL``'s user) its least privileges
(``portal.core.dbroles``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections

from portal.core import dbroles


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        owner = dbroles.OWNER_ALIAS
        if options["database"] == DEFAULT_DB_ALIAS and owner in settings.DATABASES:
            options["database"] = owner
        super().handle(*args, **options)
        if options["database"] != owner:
            return
        role = dbroles.runtime_role(settings.DATABASES[DEFAULT_DB_ALIAS], settings.DATABASES[owner])
        if role is not None:
            dbroles.grant_runtime_role(connections[owner], role)
            if options["verbosity"] >= 1:
                self.stdout.write(f"Granted the runtime role {role!r} its privileges.")
