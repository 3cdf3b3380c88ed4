"""Every page: the right roles see it, the others are refused, anonymous users sign in first."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.web.conftest import HTMX, signed_in

PAGES = ["dashboard", "request-list", "request-new", "approvals", "failover", "audit-log"]

# role -> pages it may open (all others: 403)
ALLOWED = {
    "engineer": {"dashboard", "request-list", "request-new"},
    "approver": set(PAGES),
    "auditor": {"dashboard", "request-list", "audit-log"},
}


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_users_are_sent_to_sign_in(client, db, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={url}"


def test_anonymous_htmx_polls_are_redirected_by_htmx_not_swapped(client, db):
    response = client.get(reverse("dashboard"), headers={**HTMX, "HX-Current-URL": "/"})
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(reverse("account_login"))


@pytest.mark.parametrize("role", sorted(ALLOWED))
@pytest.mark.parametrize("name", PAGES)
def test_pages_render_for_their_roles_and_refuse_the_others(request, plan, role, name):
    client = signed_in(request.getfixturevalue(role))
    response = client.get(reverse(name))
    expected = 200 if name in ALLOWED[role] else 403
    assert response.status_code == expected
    if expected == 403:
        assert b"Not allowed" in response.content


@pytest.mark.parametrize("name", ["request-new", "failover-open", "failover-close"])
def test_auditors_cannot_post_anywhere(as_auditor, plan, open_failover, name):
    response = as_auditor.post(reverse(name), {"reason": "x", "confirm": "on"})
    assert response.status_code == 403


def test_healthz_answers_ok_without_signing_in(client, db):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.content == b"ok"


def test_login_page_is_the_portal_layout(client, db):
    response = client.get(reverse("account_login"))
    assert response.status_code == 200
    assert b"Emergency Access Portal" in response.content
    assert b'name="login"' in response.content
    assert b"sign up" not in response.content.lower()


def test_signing_in_through_the_form_lands_on_the_dashboard(client, engineer):
    response = client.post(
        reverse("account_login"),
        {"login": "engineer", "password": "demo-password-123"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert b"Log out" in response.content


def test_sign_out_is_a_post(as_engineer):
    page = as_engineer.get(reverse("dashboard"))
    assert f'<form method="post" action="{reverse("account_logout")}"'.encode() in page.content
    response = as_engineer.post(reverse("account_logout"))
    assert response.status_code == 302
    assert as_engineer.get(reverse("dashboard")).status_code == 302


def test_allauth_pages_use_the_portal_layout(as_engineer, client, db):
    for response in (
        as_engineer.get(reverse("account_logout")),
        client.get(reverse("account_reset_password")),
    ):
        assert response.status_code == 200
        assert b"Emergency Access Portal" in response.content
        assert b"portal/portal.css" in response.content
