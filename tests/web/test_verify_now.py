""" "Verify now" starts work only on a POST carrying the CSRF token (finding 8 of issue 10)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from portal.models import ChainVerification

pytestmark = pytest.mark.django_db
URL = reverse("auditor-integrity-verify")


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr("portal.queue.verify_audit_chain", lambda *a, **k: calls.append(a))
    return calls


@pytest.mark.parametrize("method", ["get", "head", "put", "delete"])
def test_no_other_method_starts_anything(as_auditor, queued, method):
    response = getattr(as_auditor, method)(URL)
    assert response.status_code == 405
    assert not ChainVerification.objects.exists()


def test_a_cross_site_post_without_the_token_is_refused(auditor, queued):
    client = Client(enforce_csrf_checks=True)
    client.force_login(auditor)
    response = client.post(URL, {"next": "/"})
    assert response.status_code == 403
    assert not ChainVerification.objects.exists()


def test_the_badge_posts_with_the_token(auditor, queued, django_capture_on_commit_callbacks):
    client = Client(enforce_csrf_checks=True)
    client.force_login(auditor)
    page = client.get(reverse("auditor-integrity")).content.decode()
    assert 'method="post"' in page and f'action="{URL}"' in page
    token = client.cookies["csrftoken"].value
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"next": "/"}, headers={"X-CSRFToken": token})
    assert response.status_code == 302
    assert ChainVerification.objects.count() == 1 and len(queued) == 1


def test_engineers_cannot(as_engineer, queued):
    assert as_engineer.post(URL).status_code == 403
