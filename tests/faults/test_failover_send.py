"""Redis down when an approver opens a failover: the web request still succeeds (the send of
``activate_federation_app`` is left to the failover sweep), and once Redis is back the sweep
re-sends it and the worker activates the federation app in Okta."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from federation.idp import get_identity_provider
from federation.models import Failover, FailoverStatus
from tests.api.conftest import as_user
from tests.conftest import build_plan
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_a_failover_opened_while_redis_is_down_gets_its_app_activated_once_redis_is_back(
    processes, private_redis, on_private_broker, okta_org, approver
):
    processes.worker()
    processes.beat()
    build_plan()
    idp = get_identity_provider()
    assert idp.get_app(settings.OKTA_AWS_APP_ID).status == "INACTIVE"
    private_redis.kill()

    started = time.monotonic()
    reply = as_user(approver).post("/failover", {"reason": "IdC down", "drill": False})
    assert reply.status_code == 201, reply.content
    assert time.monotonic() - started < 10  # gave up publishing, did not hang
    failover = Failover.objects.get()
    assert failover.status == FailoverStatus.ACTIVE and failover.app_activated_at is None
    assert failover.work_due_at is not None  # the database says the activation is due

    time.sleep(2)
    assert idp.get_app(settings.OKTA_AWS_APP_ID).status == "INACTIVE"
    private_redis.start()
    back = time.time()
    wait_for(
        lambda: Failover.objects.get(pk=failover.pk).app_activated_at,
        timeout=60,
        interval=0.3,
        what="the failover sweep to re-send the activation and the worker to activate the app",
    )
    assert idp.get_app(settings.OKTA_AWS_APP_ID).status == "ACTIVE"
    # The sweep (every 2 s, grace 5 s here) and a live worker: within seconds of Redis.
    assert time.time() - back < 30
