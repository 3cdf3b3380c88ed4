"""Periodic care of the audit log: daily verification and signed checkpoints.

Thin and idempotent like every task: verifying twice or writing one more
checkpoint is harmless.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError
from celery import shared_task, signals
from django.db import OperationalError
from django.urls import reverse

from portal.audit import checkpoints, integrity


@shared_task(
    name="portal.verify_audit_chain",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=3,
)
def verify_audit_chain(trigger: str = "beat", run_id: int | None = None) -> bool:
    """Verify the chain and its checkpoints; alert when broken. True when intact."""
    result = integrity.run(f"task: {trigger}", run_id=run_id)
    if not result.intact:
        integrity.alert(result)
    return result.intact


@shared_task(
    name="portal.audit_checkpoint",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, OSError, BotoCoreError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def audit_checkpoint() -> int:
    """Sign the chain's head and store it outside the database; the seq checkpointed."""
    return checkpoints.write_checkpoint().seq


@signals.worker_init.connect
def load_urls_before_fork(**kwargs: Any) -> None:
    """Notifications link to pages: load the URLconf (and with it every view and the API,
    1.6 s measured) in the worker's parent before the pool forks, not in each pool process
    on its first notification — the first grants of a surge (bench/time_to_access)."""
    reverse("dashboard")
