"""The audit log page: events, filters, and the chain's status."""

from __future__ import annotations

from django.urls import reverse

from portal.audit import integrity
from portal.models import AuditEvent
from tests.tampering import triggers_disabled

URL = reverse("audit-log")


def test_lists_events_newest_first_with_chain_intact(as_auditor, engineer, file_request):
    req = file_request(engineer)
    integrity.run("test")  # the badge shows the last verification (portal/integrity.py)
    response = as_auditor.get(URL)
    content = response.content.decode()
    assert "Audit chain intact." in content
    table = content.split("<table")[1]
    assert table.index("request.filed") < table.index("failover.opened")
    assert f"accessrequest:{req.pk}" in content
    assert "ticket: INC-1234" in content


def test_filter_by_action_prefix_and_target(as_approver, engineer, file_request):
    req = file_request(engineer)
    events = as_approver.get(URL, {"action": "failover."}).context["page_obj"].object_list
    assert {e.action for e in events} == {"failover.opened"}
    events = as_approver.get(URL, {"target": f"accessrequest:{req.pk}"}).context["page_obj"]
    assert [e.action for e in events.object_list] == ["request.filed"]
    events = as_approver.get(URL, {"target": "failover"}).context["page_obj"].object_list
    assert {e.target_type for e in events} == {"failover"}


def test_a_broken_chain_is_shown(as_auditor, engineer, file_request):
    file_request(engineer)
    with triggers_disabled():
        AuditEvent.objects.filter(seq=1).update(payload={"reason": "tampered"})
    integrity.run("test")
    content = as_auditor.get(URL).content.decode()
    assert "Audit chain broken at #1" in content


def test_paginated(as_auditor, open_failover, django_assert_max_num_queries):
    from django.db import transaction

    from portal import audit

    with transaction.atomic():
        for n in range(60):
            audit.record("test.event", ("thing", n), system="test")
    with django_assert_max_num_queries(12):
        response = as_auditor.get(URL)
    assert len(response.context["page_obj"].object_list) == 50
    assert response.context["page_obj"].paginator.num_pages == 2
    assert as_auditor.get(URL, {"page": 2}).status_code == 200


def test_engineers_cannot_read_it(as_engineer, plan):
    assert as_engineer.get(URL).status_code == 403
