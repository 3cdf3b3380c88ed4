"""The failover sweep: the database, not the broker, says which of the failover's Okta work
is due (docs/reliability.md).

A failover ACTIVE whose app is not confirmed activated, or CLOSING, has Okta work to do;
``work_due_at`` says when it was sent or when its retry is due. Once that is older than
``GRANT_SWEEP_GRACE_SECONDS`` the work is sent again: a task lost with a killed worker or a
restarted Redis, or never queued because Redis was down when the approver opened or closed
the failover (the web request succeeded all the same). Both tasks are idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from federation import queue
from federation.models import Failover, FailoverStatus
from portal.core import scheduler

log = logging.getLogger(__name__)


def resend_overdue_work(now: dt.datetime | None = None) -> list[int]:
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.GRANT_SWEEP_GRACE_SECONDS)
    resent: list[int] = []
    with transaction.atomic():
        if not scheduler.try_lock("failover-sweep"):
            return resent
        pending = Failover.objects.filter(
            Q(status=FailoverStatus.ACTIVE, app_activated_at__isnull=True)
            | Q(status=FailoverStatus.CLOSING)
        ).filter(Q(work_due_at__lt=cutoff) | Q(work_due_at__isnull=True))
        for failover_id, status in pending.values_list("pk", "status"):
            if status == FailoverStatus.ACTIVE:
                queue.activate_federation_app(failover_id)
            else:
                queue.close_federation(failover_id)
            resent.append(failover_id)
    if resent:
        log.warning("failover sweep re-sent the Okta work of failover(s) %s", resent)
    return resent
