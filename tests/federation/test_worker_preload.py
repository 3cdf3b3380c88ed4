"""The worker imports the Okta adapter before its pool forks, not in each pool process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from django.conf import settings


def test_worker_init_imports_the_identity_provider_before_the_pool_forks():
    # A fresh interpreter: this test process has long imported the adapter.
    script = textwrap.dedent(
        """
        import sys
        import django
        django.setup()
        from celery import signals
        import federation.tasks  # what the worker's autodiscovery imports
        assert "federation.idp.okta" not in sys.modules, "imported eagerly: nothing to test"
        signals.worker_init.send(sender=None)
        assert "federation.idp.okta" in sys.modules
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
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
