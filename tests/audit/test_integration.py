"""The integrity badge's "verify now" end to end: the page queues, the real worker verifies."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from portal import audit
from portal.models import AuditEvent, ChainVerification
from tests.harness import wait_for
from tests.tampering import triggers_disabled

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_verify_now_runs_in_the_worker_and_the_badge_shows_it(integration, auditor):
    with transaction.atomic():
        for n in range(5):
            audit.record("test.event", ("thing", n), system="test")
    client = Client()
    client.force_login(auditor)
    response = client.post(reverse("auditor-integrity-verify"), headers={"HX-Request": "true"})
    assert b"Verification running since" in response.content
    run = wait_for(
        lambda: ChainVerification.objects.exclude(outcome="running").first(),
        timeout=60,
        what="the worker to verify the chain",
    )
    assert run.outcome == "intact" and run.events_checked == 5
    assert run.trigger == "verify now (auditor)"
    badge = client.get(reverse("auditor-integrity")).content.decode()
    assert "Audit chain intact." in badge and "5 events up to #5" in badge

    # Tampering shows on the next verification.
    with triggers_disabled():
        AuditEvent.objects.filter(seq=3).update(payload={"forged": True})
    client.post(reverse("auditor-integrity-verify"))
    wait_for(
        lambda: ChainVerification.objects.filter(outcome="broken").exists(),
        timeout=60,
        what="the worker to find the break",
    )
    assert "Audit chain broken at #3" in client.get(reverse("auditor-history")).content.decode()
