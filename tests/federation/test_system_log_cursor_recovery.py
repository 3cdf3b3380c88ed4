"""The System Log poller recovers when Okta no longer knows its cursor (issue 12, defect 3):
after a restarted sandbox org (``make demo`` again) every poll failed with a 500 and no
sign-in was ever recorded again. Now the sandbox answers 400 E0000001 and the poller reads
again from a recent ``since``."""

from __future__ import annotations

import pytest

from federation.failover import systemlog
from federation.idp.okta import OktaIdentityProvider
from federation.models import LogCursor, SignInEvidence
from federation.sandbox import SandboxServer
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_the_poller_rebuilds_a_cursor_okta_forgot(sandbox: SandboxServer, open_failover) -> None:
    idp = OktaIdentityProvider()
    sandbox.inject_event("user.authentication.sso", "engineer@example.com")
    first = systemlog.poll_system_log(idp)
    assert (first.error, first.sign_ins) == ("", 1)
    stale = LogCursor.objects.get(name=systemlog.CURSOR).after

    sandbox.reset()  # the org restarted empty; the database kept the old cursor
    sandbox.inject_event("user.authentication.sso", "oncall@example.com")
    again = systemlog.poll_system_log(idp)

    assert again.error == ""
    assert again.sign_ins == 1
    assert set(SignInEvidence.objects.values_list("login", flat=True)) == {
        "engineer@example.com",
        "oncall@example.com",
    }
    cursor = LogCursor.objects.get(name=systemlog.CURSOR)
    assert cursor.after and cursor.after != stale and cursor.last_error == ""
    assert AuditEvent.objects.filter(action="okta.log_cursor_reset").count() == 1
    # …and the next poll goes on from the new cursor without another reset.
    assert systemlog.poll_system_log(idp).error == ""
    assert AuditEvent.objects.filter(action="okta.log_cursor_reset").count() == 1
