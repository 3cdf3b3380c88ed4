"""Issue 9: who may act. One test (at least) per numbered finding, through the real
pages and API; each fails on the commit before this work."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from unittest import mock

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal.accounts import roles, tokens
from portal.core.access import APPROVERS, AUDITORS
from portal.core.errors import NotAllowed
from portal.models import ApiToken, AuditEvent
from requests_app import services
from requests_app.models import AccessRequest, Status
from tests.api.conftest import ApiClient, as_user, request_body
from tests.conftest import give_authenticator, make_user, stepped_up

pytestmark = pytest.mark.django_db

PASSWORD = "demo-password-123"


@pytest.fixture
def ro_role(plan):
    return plan.roles[("prod-payments", "RO")]


@pytest.fixture
def ops_role(plan):
    return plan.roles[("prod-payments", "Ops")]


def pending(engineer, role, failover) -> AccessRequest:
    return AccessRequest.objects.create(
        requester=engineer,
        role=role,
        failover=failover,
        justification="Identity Center is down and payments are failing.",
        ticket="INC-9",
        duration_minutes=30,
        okta_login=engineer.email,
    )


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def actions(name: str) -> list[str]:
    return list(AuditEvent.objects.filter(action=name).values_list("target_id", flat=True))


# --- 1. MFA mandatory for approvers, auditors and staff; one sign-in for the admin ----------


def test_approver_without_a_second_factor_can_only_set_one_up(db, plan):
    approver = make_user("approver9", "approver9@example.com", APPROVERS, mfa=False)
    client = signed_in(approver)

    for path in ["/", "/approvals/", "/failover/", "/tokens/", "/admin/"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == reverse("mfa_index")
    assert client.get(reverse("mfa_index")).status_code == 200
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200


def test_approver_without_mfa_is_refused_by_the_api_session_too(db):
    approver = make_user("approver9", "approver9@example.com", APPROVERS, mfa=False)
    response = signed_in(approver).get("/api/v1/roles")
    assert response.status_code == 403


@pytest.mark.parametrize("groups,staff", [((AUDITORS,), False), ((), True)])
def test_auditors_and_staff_need_mfa_too(db, groups, staff):
    user = make_user("someone", "someone@example.com", *groups, mfa=False)
    user.is_staff = staff
    user.save()
    assert signed_in(user).get("/").status_code == 302
    give_authenticator(user)
    assert signed_in(user).get("/").status_code == 200


def test_engineers_need_mfa_only_when_the_setting_says_all(db, engineer, settings):
    assert signed_in(engineer).get("/").status_code == 200
    settings.MFA_REQUIRED_FOR = ["all"]
    assert signed_in(engineer).get("/")["Location"] == reverse("mfa_index")


def test_admin_login_is_the_portal_sign_in(db, client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    # A password posted straight at the admin's form signs nobody in.
    make_user("staff", "staff@example.com", mfa=True).__class__.objects.filter(
        username="staff"
    ).update(is_staff=True, is_superuser=True)
    client.post("/admin/login/", {"username": "staff", "password": PASSWORD})
    assert "_auth_user_id" not in client.session


# --- 2. Auditors read-only in the admin, superuser or not; admin changes audited ------------


def test_a_superuser_auditor_cannot_change_anything_in_the_admin(db, auditor, approver):
    type(auditor).objects.filter(pk=auditor.pk).update(is_staff=True, is_superuser=True)
    client = signed_in(auditor)
    group = Group.objects.get(name=AUDITORS)

    renamed = client.post(
        reverse("admin:auth_group_change", args=[group.pk]), {"name": "not-auditors"}
    )
    added = client.post(
        reverse("admin:account_emailaddress_add"),
        {"user": approver.pk, "email": "evil@attacker.test", "verified": "on", "primary": "on"},
    )

    assert renamed.status_code == 403 and added.status_code == 403
    assert Group.objects.filter(name=AUDITORS).exists()
    assert not EmailAddress.objects.filter(email="evil@attacker.test").exists()
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 200


def test_auditor_and_superuser_are_mutually_exclusive(db, admin_client, auditor, engineer):
    engineer.is_superuser = True
    engineer.save()
    with pytest.raises(NotAllowed):
        roles.grant_role(engineer, "auditor")
    auditors = Group.objects.get(name=AUDITORS)
    response = admin_client.post(
        reverse("admin:auth_user_change", args=[engineer.pk]),
        {
            "username": "engineer",
            "email": "engineer@example.com",
            "is_active": "on",
            "is_superuser": "on",
            "groups": [auditors.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "an auditor cannot be a superuser" in response.content.decode()
    assert not engineer.groups.filter(name=AUDITORS).exists()


def test_admin_changes_to_groups_email_addresses_and_slack_identities_are_audited(
    db, admin_client, engineer
):
    admin_client.post(reverse("admin:auth_group_add"), {"name": "on-call"})
    admin_client.post(
        reverse("admin:account_emailaddress_add"),
        {"user": engineer.pk, "email": "other@example.com", "verified": "on"},
    )
    admin_client.post(
        reverse("admin:portal_slackidentity_add"),
        {"user": engineer.pk, "slack_user_id": "U123", "team_id": "T1"},
    )
    models = [e.payload["model"] for e in AuditEvent.objects.filter(action="admin.added")]
    assert models == ["auth.group", "account.emailaddress", "portal.slackidentity"]


# --- 3. The two-person rule counts only current approvers ---------------------------------


def test_an_approval_from_someone_who_lost_the_role_does_not_count(
    db, engineer, approver, approver2, ops_role, open_failover, django_capture_on_commit_callbacks
):
    req = pending(engineer, ops_role, open_failover)
    services.approve(req, actor=approver)
    roles.revoke_role(approver, "approver")

    with django_capture_on_commit_callbacks(execute=False):
        services.approve(req, actor=approver2)

    req.refresh_from_db()
    assert req.status == Status.PENDING
    assert [a.approver for a in req.approvals.all()] == [approver2]
    voided = AuditEvent.objects.get(action="request.approval_voided")
    assert voided.payload["approver"] == "approver1"


def test_deactivating_an_approver_voids_their_pending_approvals(
    db, admin_client, engineer, approver, ops_role, open_failover
):
    req = pending(engineer, ops_role, open_failover)
    services.approve(req, actor=approver)
    before = roles.flags_of(approver)
    approver.is_active = False
    approver.save()
    roles.record_flag_changes(approver, before, actor=None, via="test")
    assert req.approvals.count() == 0


def test_an_approval_by_a_since_deactivated_approver_is_not_counted_at_decision(
    db, engineer, approver, approver2, ops_role, open_failover, django_capture_on_commit_callbacks
):
    req = pending(engineer, ops_role, open_failover)
    services.approve(req, actor=approver)
    type(approver).objects.filter(pk=approver.pk).update(is_active=False)  # behind our back
    with django_capture_on_commit_callbacks(execute=False):
        services.approve(req, actor=approver2)
    req.refresh_from_db()
    assert req.status == Status.PENDING


# --- 4. Lockout per account in the shared cache, real client IP, admin login included -----


@pytest.mark.real_sign_in
def test_failed_logins_lock_one_account_not_everyone(db, engineer, oncall, settings, mailoutbox):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    make_user("staff", "staff@example.com", mfa=True).__class__.objects.filter(
        username="staff"
    ).update(is_staff=True)
    proxy = Client(REMOTE_ADDR="10.0.0.1")  # every request arrives through the TLS proxy
    url = reverse("account_login")
    for n in range(6):
        proxy.post(
            url,
            {"login": "engineer", "password": "wrong"},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        )
    locked = proxy.post(
        url,
        {"login": "engineer", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.9"},
    )
    assert locked.status_code == 200 and "_auth_user_id" not in proxy.session
    # Everyone else behind the same proxy still signs in.
    other = proxy.post(
        url, {"login": "oncall", "password": PASSWORD}, headers={"X-Forwarded-For": "203.0.113.5"}
    )
    assert other.status_code == 302
    event = AuditEvent.objects.get(action="account.locked_out")
    assert event.payload["login"] == "engineer"
    assert event.payload["client_ip"].startswith("198.51.100.")
    from portal.models import NotificationLog

    alert = NotificationLog.objects.get(event="account.locked_out")
    assert alert.recipients == ["staff@example.com"]


@pytest.mark.real_sign_in
def test_bad_logins_behind_the_proxy_do_not_lock_everyone_out(db, oncall):
    """The finding as it happened: a dozen bad logins in a minute through the TLS proxy
    (one address for everyone when no trusted proxy is configured) paused every sign-in;
    with a generous per-IP limit and the strict limit per account, others still sign in."""
    proxy = Client(REMOTE_ADDR="10.0.0.1")
    url = reverse("account_login")
    for n in range(12):
        proxy.post(
            url,
            {"login": f"someone{n}", "password": "wrong"},
            headers={"X-Forwarded-For": "198.51.100.66"},
        )
    other = proxy.post(
        url, {"login": "oncall", "password": PASSWORD}, headers={"X-Forwarded-For": "203.0.113.5"}
    )
    assert other.status_code == 302
    assert proxy.session["_auth_user_id"] == str(oncall.pk)


def test_the_proxy_setting_gives_the_rate_limits_the_real_client_ip(settings):
    """What an operator sets (TRUSTED_PROXY_COUNT) reaches allauth's rate limits: they
    count the client's address from X-Forwarded-For, not the proxy's."""
    script = (
        "import django; django.setup()\n"
        "from django.test import RequestFactory\n"
        "from allauth.account.adapter import get_adapter\n"
        "r = RequestFactory().post('/accounts/login/', REMOTE_ADDR='10.0.0.1',"
        " HTTP_X_FORWARDED_FOR='198.51.100.66')\n"
        "print(get_adapter().get_client_ip(r))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "TRUSTED_PROXY_COUNT": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "198.51.100.66"


def test_rate_limits_are_counted_in_the_shared_redis_cache(settings):
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    cache.set("probe", 1)
    assert cache.get("probe") == 1


# --- 5. Sessions: absolute and idle limits, ended on role removal; step-up -----------------


@pytest.mark.parametrize(
    "key,age", [("portal_signed_in_at", 13 * 3600), ("portal_seen_at", 31 * 60)]
)
def test_old_or_idle_sessions_end(db, engineer, key, age):
    client = signed_in(engineer)
    assert client.get("/").status_code == 200
    session = client.session
    session[key] = time.time() - age
    session.save()
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_removing_the_role_ends_sessions_and_tokens(db, approver):
    client = signed_in(approver)
    _, raw = tokens.create_token(approver, "bot", approver)
    assert client.get("/approvals/").status_code == 200
    time.sleep(0.01)
    roles.revoke_role(approver, "approver")
    assert client.get("/")["Location"].startswith("/accounts/login/")
    assert tokens.authenticate(raw) is None


def test_no_remember_me(client):
    page = client.get(reverse("account_login")).content.decode()
    assert 'name="remember"' not in page


@pytest.mark.real_sign_in
def test_approving_on_a_page_needs_a_recent_sign_in(db, engineer, approver, ro_role, open_failover):
    req = pending(engineer, ro_role, open_failover)
    client = Client()
    client.force_login(approver)  # signed in long ago, as far as the session knows

    response = client.post(f"/requests/{req.pk}/approve/", {"comment": ""})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    req.refresh_from_db()
    assert req.status == Status.PENDING
    session = client.session
    stepped_up(session, approver)
    session.save()
    assert client.post(f"/requests/{req.pk}/deny/", {"comment": "not now"}).status_code == 302
    req.refresh_from_db()
    assert req.status == Status.DENIED


@pytest.mark.real_sign_in
def test_the_api_needs_no_step_up(db, engineer, approver, ro_role, open_failover):
    req = pending(engineer, ro_role, open_failover)
    response = as_user(approver).post(f"/requests/{req.pk}/deny", {"reason": "no"})
    assert response.status_code == 200


# --- 6. API tokens: expiry, read-only scope, last use, revoked on password change ----------


def test_tokens_expire(db, engineer):
    token, raw = tokens.create_token(engineer, "bot", engineer, days=1)
    assert tokens.authenticate(raw) == engineer
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert tokens.authenticate(raw) is None


def test_token_lifetime_defaults_to_30_days_and_is_capped(db, engineer):
    from django.core.exceptions import ValidationError

    token, _ = tokens.create_token(engineer, "bot", engineer)
    assert token.expires_at - timezone.now() > dt.timedelta(days=29, hours=23)
    with pytest.raises(ValidationError):
        tokens.create_token(engineer, "bot", engineer, days=91)


def test_read_only_tokens_cannot_write(db, engineer, ro_role, open_failover, fake_idp):
    _, raw = tokens.create_token(engineer, "bot", engineer, read_only=True)
    api = ApiClient(token=raw)
    assert api.get("/roles").status_code == 200
    assert api.post("/requests", request_body(ro_role)).status_code == 403


def _token_from_the_page(user, **fields: str) -> str:
    response = signed_in(user).post("/tokens/", {"name": "bot", **fields})
    assert response.status_code == 200, response.content
    return response.context["new_raw"]


def test_a_token_made_on_the_page_for_one_day_stops_working_after_it(db, engineer):
    api = ApiClient(token=_token_from_the_page(engineer, expires_in_days="1"))
    assert api.get("/roles").status_code == 200
    later = timezone.now() + dt.timedelta(days=1, minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert api.get("/roles").status_code == 401


def test_a_read_only_token_made_on_the_page_cannot_write(
    db, engineer, ro_role, open_failover, fake_idp
):
    api = ApiClient(token=_token_from_the_page(engineer, read_only="on"))
    assert api.get("/roles").status_code == 200
    assert api.post("/requests", request_body(ro_role)).status_code == 403
    assert not AccessRequest.objects.exists()


def test_last_use_and_ip_are_shown(db, engineer):
    _, raw = tokens.create_token(engineer, "bot", engineer)
    ApiClient(token=raw).client.get(
        "/api/v1/roles", headers={"Authorization": f"Bearer {raw}"}, REMOTE_ADDR="192.0.2.7"
    )
    page = signed_in(engineer).get("/tokens/").content.decode()
    assert "192.0.2.7" in page


def test_password_change_revokes_tokens(db, engineer):
    _, raw = tokens.create_token(engineer, "bot", engineer)
    engineer.set_password("another-password-456")
    engineer.save()
    assert tokens.authenticate(raw) is None


def test_the_owner_is_emailed_when_a_token_is_created(db, engineer):
    from portal.models import NotificationLog

    tokens.create_token(engineer, "bot", engineer)
    note = NotificationLog.objects.get(event="api_token.created")
    assert note.recipients == ["engineer@example.com"]


@pytest.mark.real_sign_in
def test_creating_a_token_on_the_page_needs_a_recent_sign_in(db, engineer):
    client = Client()
    client.force_login(engineer)
    response = client.post("/tokens/", {"name": "bot"})
    assert response.status_code == 302
    assert not ApiToken.objects.exists()


# --- 7. No self-service email changes; the Okta login is shown and bound by admins --------


def test_users_cannot_add_or_change_their_email(db, engineer):
    client = signed_in(engineer)
    response = client.post(
        "/accounts/email/", {"action_add": "", "email": "someone-else@example.com"}
    )
    assert response.status_code == 403
    assert not EmailAddress.objects.filter(email="someone-else@example.com").exists()


def test_the_okta_login_is_bound_by_an_admin_audited_and_used(
    db, admin_client, engineer, ro_role, open_failover, fake_idp
):
    from federation.idp.memory import InMemoryIdentityProvider

    InMemoryIdentityProvider.add_user("eng.okta@example.com")
    response = admin_client.post(
        reverse("admin:portal_portalaccount_add"),
        {"user": engineer.pk, "okta_login": "eng.okta@example.com", "okta_user_id": ""},
    )
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="user.okta_login_bound").actor_label == "admin"
    body = as_user(engineer).post("/requests", request_body(ro_role)).json()
    assert body["okta_login"] == "eng.okta@example.com"
    req = AccessRequest.objects.get()
    assert "eng.okta@example.com" in signed_in_approver_page(req)


def signed_in_approver_page(req) -> str:
    approver = make_user("approver7", "approver7@example.com", APPROVERS)
    return signed_in(approver).get(f"/requests/{req.pk}/").content.decode()


# --- 8. Nobody denies their own request -----------------------------------------------------


def test_an_approver_cannot_deny_their_own_request(db, approver, ro_role, open_failover):
    req = pending(approver, ro_role, open_failover)
    api = as_user(approver)
    assert api.post(f"/requests/{req.pk}/deny", {"reason": "mine"}).status_code == 403
    page = signed_in(approver).post(f"/requests/{req.pk}/deny/", {"comment": "mine"})
    assert page.status_code == 403
    req.refresh_from_db()
    assert req.status == Status.PENDING


def test_a_password_change_ends_the_other_sessions(db, engineer):
    other = signed_in(engineer)
    assert other.get("/").status_code == 200
    engineer.set_password("another-password-456")
    engineer.save()
    assert other.get("/")["Location"].startswith("/accounts/login/")


def test_deactivating_an_account_in_the_admin_ends_its_sessions_and_tokens(
    db, admin_client, engineer
):
    client = signed_in(engineer)
    _, raw = tokens.create_token(engineer, "bot", engineer)
    response = admin_client.post(
        reverse("admin:auth_user_change", args=[engineer.pk]),
        {
            "username": "engineer",
            "email": "engineer@example.com",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302
    assert client.get("/")["Location"].startswith("/accounts/login/")
    assert tokens.authenticate(raw) is None
    assert AuditEvent.objects.filter(action="user.sessions_ended").exists()


def test_security_keys_and_recovery_codes_are_offered(db, approver):
    client = signed_in(approver)
    assert client.get("/accounts/2fa/webauthn/add/").status_code == 200
    assert client.get("/accounts/2fa/recovery-codes/generate/").status_code == 200


@pytest.mark.real_sign_in
def test_a_stale_htmx_approval_is_sent_to_sign_in_again_as_a_full_page(
    db, engineer, approver, ro_role, open_failover
):
    req = pending(engineer, ro_role, open_failover)
    client = Client()
    client.force_login(approver)
    response = client.post(
        f"/requests/{req.pk}/approve/",
        {"comment": ""},
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/approvals/"},
    )
    assert response["HX-Redirect"].startswith(reverse("account_reauthenticate"))
    req.refresh_from_db()
    assert req.status == Status.PENDING


def test_the_demo_without_redis_counts_in_a_file_cache(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    env.update(PORTAL_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="portal.settings")
    out = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.CACHES)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "FileBasedCache" in out and str(tmp_path) in out
