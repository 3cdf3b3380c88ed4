"""Web and Celery workers import the Okta adapter and the URLconf at start (one helper,
``portal.core.preload``), not on their first Okta call or page.

The okta SDK takes seconds to import (tens of seconds for four processes at once on a
busy two-core machine); imported lazily, the first grants or filings of a surge waited.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from django.conf import settings

PRELUDE = """
import sys
import django
django.setup()
assert "federation.idp.okta" not in sys.modules, "imported eagerly: nothing to test"
"""


def _run(script: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(script)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "IDENTITY_PROVIDER": "federation.idp.okta.OktaIdentityProvider",
        },
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_celery_worker_imports_it_before_the_pool_forks():
    _run(
        """
        from celery import signals
        import federation.tasks  # what the worker's autodiscovery imports
        import portal.tasks
        assert "portal.urls" not in sys.modules, "loaded eagerly: nothing to test"
        signals.worker_init.send(sender=None)
        assert "federation.idp.okta" in sys.modules
        assert "portal.urls" in sys.modules
        """
    )


def test_a_web_worker_imports_it_when_it_loads_the_application():
    _run(
        """
        assert "portal.urls" not in sys.modules, "loaded eagerly: nothing to test"
        import portal.wsgi
        assert "federation.idp.okta" in sys.modules
        assert "portal.urls" in sys.modules
        """
    )
