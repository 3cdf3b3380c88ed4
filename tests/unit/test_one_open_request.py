"""One open request per person and role, held by the database (issue 8), not only by the
check under the failover lock."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from portal.core.errors import Conflict
from requests_app import services
from requests_app.models import AccessRequest, Status

JUSTIFICATION = "Identity Center is down and payments are failing."


def row(engineer, role, failover, status):
    return AccessRequest.objects.create(
        requester=engineer, role=role, failover=failover, status=status,
        justification=JUSTIFICATION, ticket="INC-1", duration_minutes=30,
        okta_login=engineer.email,
    )  # fmt: skip


@pytest.mark.parametrize("status", [Status.PENDING, Status.APPROVED, Status.ACTIVE])
def test_the_database_refuses_a_second_open_request(engineer, plan, open_failover, status):
    role = plan.roles[("prod-payments", "RO")]
    row(engineer, role, open_failover, status)
    with pytest.raises(IntegrityError), transaction.atomic():
        row(engineer, role, open_failover, Status.PENDING)


def test_ended_requests_do_not_count(engineer, plan, open_failover):
    role = plan.roles[("prod-payments", "RO")]
    for status in (Status.DENIED, Status.EXPIRED, Status.REVOKED, Status.LAPSED):
        row(engineer, role, open_failover, status)
    row(engineer, role, open_failover, Status.PENDING)
    assert AccessRequest.objects.filter(requester=engineer, role=role).count() == 5


def test_a_filing_that_loses_the_race_is_a_conflict_not_a_500(
    engineer, plan, open_failover, fake_idp, monkeypatch, django_capture_on_commit_callbacks
):
    role = plan.roles[("prod-payments", "RO")]
    row(engineer, role, open_failover, Status.PENDING)
    # The other filing committed after this one looked: the check sees nothing.
    looks = iter([None])  # the first look finds nothing; the one after the refusal does
    real = services._open_request
    monkeypatch.setattr(services, "_open_request", lambda *a: next(looks, None) or real(*a))
    with pytest.raises(Conflict, match="already have request #"):
        services.file_request(
            requester=engineer, role=role, justification=JUSTIFICATION, ticket="INC-2",
            duration_minutes=30,
        )  # fmt: skip
    assert AccessRequest.objects.filter(requester=engineer, role=role).count() == 1
