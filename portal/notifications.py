"""Tell people what happened: queued on commit, sent by a worker, never blocking a request."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from portal.access import APPROVERS

if TYPE_CHECKING:
    from federation.models import Failover
    from requests_app.models import AccessRequest

log = logging.getLogger(__name__)


def _approver_emails(exclude: str = "") -> list[str]:
    users = get_user_model().objects.filter(groups__name=APPROVERS, is_active=True)
    return sorted({u.email for u in users if u.email and u.email != exclude})


def _link(name: str, *args: object) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(name, args=args)


def _queue(subject: str, body: str, recipients: list[str]) -> None:
    if recipients:
        transaction.on_commit(lambda: send_email.delay(subject, body, recipients))


def request_filed(req: AccessRequest) -> None:
    _queue(
        f"[Emergency access] #{req.pk} {req.requester.get_username()} asks for {req.role}",
        f"{req.requester.get_username()} asks for {req.role.role_name} "
        f"({req.role.level.name}, {req.duration_minutes} min) for {req.ticket}.\n\n"
        f"{req.justification}\n\nDecide: {_link('request-detail', req.pk)}",
        _approver_emails(exclude=req.requester.email),
    )


def request_decided(req: AccessRequest) -> None:
    _queue(
        f"[Emergency access] #{req.pk} {req.get_status_display().lower()}",
        f"Your request for {req.role} is {req.get_status_display().lower()}."
        f"\n{req.decision_comment}\n\n{_link('request-detail', req.pk)}",
        [req.requester.email],
    )


def grant_active(req: AccessRequest) -> None:
    _queue(
        f"[Emergency access] #{req.pk} active until {req.expires_at:%H:%M %Z}",
        f"You are in {req.role.okta_group_name} until {req.expires_at:%Y-%m-%d %H:%M %Z}. "
        f"Sign in through Okta's AWS Account Federation app.\n\n"
        f"{_link('request-detail', req.pk)}",
        [req.requester.email],
    )


def grant_failed(req: AccessRequest) -> None:
    _queue(
        f"[Emergency access] #{req.pk} could not be granted",
        f"Adding {req.okta_login} to {req.role.okta_group_name} failed: {req.last_error}\n\n"
        f"{_link('request-detail', req.pk)}",
        sorted({req.requester.email, *_approver_emails()}),
    )


def failover_changed(failover: Failover, what: str) -> None:
    _queue(
        f"[Emergency access] {failover} {what}",
        f"{failover} was {what}.\nReason: {failover.reason}\n\n{_link('dashboard')}",
        _approver_emails(),
    )


@shared_task(
    name="portal.send_email",
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
)
def send_email(subject: str, body: str, recipients: list[str]) -> None:
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
