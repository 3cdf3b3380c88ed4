"""The background work the failover and readiness services start: one function per task,
sent by name after the transaction commits. Tests patch these functions, nothing else.

A send that fails (Redis down) never fails the web request that caused it: the database
says what is due (a failover ACTIVE without its app activated, or CLOSING, with
``work_due_at`` passed) and the failover sweep (``federation.sweep_failover_work``, beat)
sends it again once Redis is back (docs/reliability.md).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.utils import timezone

from federation.models import Failover
from portal.celery import send_on_commit

log = logging.getLogger(__name__)

ACTIVATE_FEDERATION_APP = "federation.activate_federation_app"
CLOSE_FEDERATION = "federation.close_federation"
VERIFY_READINESS = "federation.verify_readiness"


def activate_federation_app(failover_id: int) -> None:
    failover_work_due(failover_id)
    send_on_commit(ACTIVATE_FEDERATION_APP, [failover_id], on_failure=_left_to_the_sweep)


def close_federation(failover_id: int) -> None:
    """Deactivate the app, empty every emergency group, end sessions, then close."""
    failover_work_due(failover_id)
    send_on_commit(CLOSE_FEDERATION, [failover_id], on_failure=_left_to_the_sweep)


def failover_work_due(failover_id: int, in_seconds: float = 0) -> dt.datetime:
    """The failover's Okta work is expected to run by then (now, or after a retry's
    countdown); the failover sweep re-sends it when that time passed and it is not done.
    Returns the stamp: a retry carries it, and gives way when the sweep stamped a newer one."""
    at = timezone.now() + dt.timedelta(seconds=in_seconds)
    Failover.objects.filter(pk=failover_id).update(work_due_at=at)
    return at


def _left_to_the_sweep(exc: Exception) -> None:
    # The broker is unreachable: the failover sweep re-sends the work once Redis is back.
    log.warning("the failover's Okta work is left to the failover sweep: %s", exc)


def verify_readiness(run_id: int) -> None:
    # Not queued (Redis down): the run goes stale (checks.STALE_RUN) and can be run again.
    send_on_commit(VERIFY_READINESS, [run_id], on_failure=_not_queued("readiness run"))


POLL_HEALTH = "federation.poll_health"
POLL_SYSTEM_LOG = "federation.poll_system_log"
SWEEP_FAILOVER_WORK = "federation.sweep_failover_work"


def poll_health() -> None:
    """Sample Identity Center's health now (beat does it every HEALTH_POLL_SECONDS)."""
    send_on_commit(POLL_HEALTH, [], on_failure=_not_queued("health poll"))


def poll_system_log() -> None:
    """Read the Okta System Log now (beat does it every SYSTEM_LOG_POLL_SECONDS)."""
    send_on_commit(POLL_SYSTEM_LOG, [], on_failure=_not_queued("System Log poll"))


def _not_queued(what: str) -> Callable[[Exception], None]:
    def log_it(exc: Exception) -> None:
        # Beat runs it again on its own schedule once Redis is back.
        log.warning("%s not queued (the broker is unreachable): %s", what, exc)

    return log_it
