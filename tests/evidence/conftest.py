"""Grants made the way the worker makes them (fake identity provider, no broker)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from requests_app import services
from requests_app.models import AccessRequest
from tests.aws_stand_ins import aws, moto_server  # noqa: F401

JUSTIFICATION = "Payments are failing and I need to read the CloudWatch logs to find out why."


@pytest.fixture
def grant(
    plan, fake_idp, open_failover, approver, approver2, django_capture_on_commit_callbacks
) -> Callable[..., AccessRequest]:
    """An active grant of ``user`` for (account, level), as Okta confirmed it."""

    def _grant(user, account: str = "prod-payments", level: str = "RO") -> AccessRequest:
        role = plan.roles[(account, level)]
        with django_capture_on_commit_callbacks(execute=False):
            req = services.file_request(
                requester=user, role=role, justification=JUSTIFICATION, ticket="INC-9",
                duration_minutes=60,
            )  # fmt: skip
            for who in (approver, approver2)[: role.level.approvals_required]:
                services.approve(req, actor=who)
            user_id = fake_idp.find_user(user.email).id
            fake_idp.add_group_member(fake_idp.find_group(role.okta_group_name).id, user_id)
            services.activate(req.pk, okta_user_id=user_id)
        return AccessRequest.objects.select_related(
            "role__emergency_account", "failover", "requester"
        ).get(pk=req.pk)

    return _grant
