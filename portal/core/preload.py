"""What a process imports as it starts, before its first piece of work: one helper for
the web workers (``portal/wsgi.py``) and the Celery worker (``worker_init``, before the
pool forks).

- The identity provider named by ``settings.IDENTITY_PROVIDER``: the okta SDK takes
  seconds to import (tens of seconds for several processes at once on a busy machine),
  and a surge's first filings and grants would wait for it.
- The URLconf: every view and the API, which the first ``reverse()`` (a notification's
  link, the first page) would import: 1.6 s measured (bench/time_to_access).

By name (``import_string``): the kernel does not import ``federation.idp``.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.module_loading import import_string


def preload() -> None:
    """Import the identity-provider adapter and the URLconf now (Django must be set up)."""
    import_string(settings.IDENTITY_PROVIDER)
    reverse("dashboard")
