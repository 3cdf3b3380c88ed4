"""Beat tasks of the monitors: Identity Center health, the Okta System Log (and CloudTrail),
and the AWS session denies. Thin: each calls one module and never raises into beat --
the next run is the retry."""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(name="federation.poll_health", acks_late=True, ignore_result=True)
def poll_health() -> str:
    from federation.monitor import health

    return health.poll().state


@shared_task(name="federation.poll_system_log", acks_late=True, ignore_result=True)
def poll_system_log() -> dict[str, int]:
    from federation.failover import systemlog

    report = systemlog.poll_system_log()
    console_logins = systemlog.poll_cloudtrail()
    return {
        "events": report.events,
        "sign_ins": report.sign_ins + console_logins,
        "sign_outs": report.sign_outs,
        "alerts": len(report.alerts),
    }


@shared_task(name="federation.sweep_session_denies", acks_late=True, ignore_result=True)
def sweep_session_denies() -> dict[str, int]:
    from federation.aws import session_denies

    return session_denies.sweep()
