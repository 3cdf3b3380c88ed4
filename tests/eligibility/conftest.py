"""Eligibility fixtures: portal groups and a plan that names requesters and approvers."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group

from portal.models import AuditEvent
from requests_app.models import AccessRequest, Approval, Extension

JUSTIFICATION = "Payments are failing and I need to read the CloudWatch logs to find out why."


def join(user: Any, *names: str) -> Any:
    for name in names:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    for cache in ("_portal_groups", "_eligibility_groups"):
        if hasattr(user, cache):
            delattr(user, cache)
    return user


class Written:
    """What the database held before a refused call: nothing may be written after it."""

    def __init__(self) -> None:
        self.counts = self._counts()

    @staticmethod
    def _counts() -> tuple[int, ...]:
        last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
        return (
            AccessRequest.objects.count(),
            Approval.objects.count(),
            Extension.objects.count(),
            last or 0,
        )

    def assert_nothing(self) -> None:
        assert self._counts() == self.counts, "a refused call wrote something"


@pytest.fixture
def restricted(plan):
    """prod-payments may be requested by sre only; Ops is decided by sre-leads only."""
    account = plan.accounts["prod-payments"]
    account.requesters = ["sre"]
    account.save()
    ops = plan.levels["Ops"]
    ops.approvers = ["sre-leads"]
    ops.save()
    return plan
