"""Issue 12 (clear under stress), the parts a Django test client can see: each numbered
defect that is about words, server-side rules or markup, and the engineer's moment.
The browser tests (tests/browser/test_issue12_*.py) cover what needs a real page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from federation.failover import services as failover_services
from federation.idp import IdpRetryableError
from federation.idp.memory import InMemoryIdentityProvider
from federation.models import Failover, FailoverStatus
from portal import audit
from portal.audit import events_for
from portal.core.errors import NotAllowed
from portal.templatetags.portal_tags import payload_summary
from requests_app import extensions, services
from requests_app.models import AccessRequest, Status
from requests_app.tasks import provision_grant
from tests.runbook.conftest import seen_signing_in

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(client: Client, url: str, **kwargs) -> str:
    response = client.get(url, **kwargs)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def returning(approver, capture) -> Failover:
    with capture(execute=False):
        return failover_services.start_return(
            actor=approver, override_reason="AWS Health: resolved"
        )


def missing_described_by(html: str) -> set[str]:
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    refs = set()
    for value in re.findall(r'aria-(?:describedby|labelledby|controls)="([^"]*)"', html):
        refs.update(value.split())
    return refs - ids


# --- Defect 4: the new-request page during the return to normal ------------------------------


def test_the_new_request_page_says_the_failover_is_returning(
    approver, engineer, grant, django_capture_on_commit_callbacks
):
    held = grant(engineer)
    failover = returning(approver, django_capture_on_commit_callbacks)
    html = page(as_user(engineer), reverse("request-new"))
    assert "No failover is open" not in html
    assert f"Failover #{failover.pk} is returning to normal" in html
    assert reverse("request-detail", args=[held.pk]) in html


# --- Defect 5: during the return to normal the request page leads with "sign out now" ----------


def test_the_request_page_leads_with_sign_out_now_while_returning(
    approver, engineer, grant, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    returning(approver, django_capture_on_commit_callbacks)
    html = page(as_user(engineer), reverse("request-detail", args=[req.pk]))
    lead = html.index("Sign out of the AWS console now")
    assert lead < html.index('id="status-title"')
    assert lead < html.index("I have signed out of AWS") < html.index('id="status-title"')
    assert "Sign in through the Okta" not in html
    assert "Switch role" not in html
    # The banner leads to the request that holds access, and the portal's own button is
    # "Log out" (sign in / sign out are the AWS console's words).
    banner = html[html.index('class="banner') : html.index("</div>", html.index('class="banner'))]
    assert reverse("request-detail", args=[req.pk]) in banner
    assert ">Log out</button>" in html and ">Sign out</button>" not in html


# --- Defect 6: the failover page polls ---------------------------------------------------------


def test_the_failover_page_polls_and_shows_the_activation(
    approver, plan, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        failover = failover_services.open_failover(actor=approver, reason="IdC down", drill=True)
    client = as_user(approver)
    html = page(client, reverse("failover"))
    assert 'id="failover-live"' in html and 'hx-trigger="every 5s"' in html
    assert "Being activated" in html
    version = re.search(r'hx-get="/failover/\?v=([0-9a-f]+)"', html).group(1)
    unchanged = client.get(reverse("failover") + f"?v={version}", headers=HTMX)
    assert unchanged.status_code == 204
    failover_services.confirm_app_activated(failover.pk)
    changed = client.get(reverse("failover") + f"?v={version}", headers=HTMX)
    assert changed.status_code == 200
    fragment = changed.content.decode()
    assert fragment.lstrip().startswith('<div id="failover-live"')
    assert "Activated (confirmed" in fragment and "<html" not in fragment


# --- Defect 7: decisions that cannot be undone ask first, and deny/revoke need a reason --------


def test_deny_and_revoke_need_a_reason_the_engineer_sees(
    approver, engineer, oncall, grant, pending, django_capture_on_commit_callbacks
):
    waiting = pending(oncall)
    client = as_user(approver)
    deny = reverse("request-action", args=[waiting.pk, "deny"])
    refused = client.post(deny, {"comment": "  "}, headers=HTMX)
    assert refused.status_code == 400
    assert "Give a reason" in refused.content.decode()
    assert AccessRequest.objects.get(pk=waiting.pk).status == Status.PENDING
    with django_capture_on_commit_callbacks(execute=False):
        client.post(deny, {"comment": "Use the read-only role instead."})
    assert AccessRequest.objects.get(pk=waiting.pk).status == Status.DENIED
    assert "Use the read-only role instead." in page(
        as_user(oncall), reverse("request-detail", args=[waiting.pk])
    )

    held = grant(engineer)
    revoke = reverse("request-action", args=[held.pk, "revoke"])
    client.post(revoke, {"comment": ""})
    assert AccessRequest.objects.get(pk=held.pk).status == Status.ACTIVE


def test_irreversible_buttons_carry_a_confirmation(
    approver, engineer, oncall, grant, pending, django_capture_on_commit_callbacks
):
    held = grant(engineer)
    pending(oncall)
    client = as_user(approver)
    detail = page(client, reverse("request-detail", args=[held.pk]))
    assert re.search(r"data-confirm=\"[^\"]+\"[^>]*data-confirm-reason=\"comment\">Revoke", detail)
    queue = page(client, reverse("approvals"))
    assert re.search(r'data-confirm-reason="comment">Deny', queue)
    failover_page = page(client, reverse("failover"))
    assert re.search(r'data-confirm="[^"]+"[^>]*>Close the failover', failover_page)
    returning(approver, django_capture_on_commit_callbacks)
    wizard = page(client, reverse("failover-return"))
    assert re.search(r'data-confirm="[^"]+"[^>]*>Deactivate now', wizard)
    # One dialog, in the page, no inline script or handler (a strict CSP is coming).
    assert wizard.count('<dialog id="confirm-dialog"') == 1
    assert "<script>" not in wizard and " onclick=" not in wizard and "confirm(" not in wizard


# --- Defect 8: one vocabulary; no wrong or misleading facts ----------------------------------


def test_a_sign_in_before_the_grant_is_not_shown_beside_it(engineer, grant):
    req = grant(engineer)
    seen_signing_in(req, at=req.activated_at - dt.timedelta(minutes=10))
    html = page(as_user(engineer), reverse("request-detail", args=[req.pk]))
    evidence = html[html.index('id="sign-out-evidence"') :]
    assert "Not signed in" in evidence[: evidence.index("</dl>")]
    seen_signing_in(req, at=timezone.now())
    html = page(as_user(engineer), reverse("request-detail", args=[req.pk]))
    evidence = html[html.index('id="sign-out-evidence"') :]
    assert "<strong>Signed in</strong>" in evidence[: evidence.index("</dl>")]
    assert "Console session ends by" in html and "can last until then" in html


def test_requests_never_granted_show_no_granted_minutes_and_ended_ones_no_until(
    approver, engineer, oncall, grant, pending, django_capture_on_commit_callbacks
):
    denied = pending(oncall)
    with django_capture_on_commit_callbacks(execute=False):
        services.deny(denied, actor=approver, reason="Not needed")
        ended = grant(engineer)
        services.revoke(ended, actor=approver, reason="Done")
    listing = page(as_user(approver), reverse("request-list"))
    assert "Until" not in listing
    assert "never granted" in listing and "ended " in listing
    failover = Failover.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        failover_services.close_failover(actor=approver, force=True, reason="done")
        failover_services.confirm_closed(failover.pk, removed_members=0, sessions_ended=[])
    report = page(as_user(approver), reverse("failover-report", args=[failover.pk]))
    row = report[report.index(f">#{denied.pk}</a>") :]
    row = row[: row.index("</tr>")]
    assert "granted)" not in row and "never granted" in row


def test_the_timeline_says_which_sessions_really_ended(engineer, grant):
    req = grant(engineer)
    with transaction.atomic():
        audit.record(
            "request.sessions_ended",
            req,
            system="worker",
            payload={"okta_sessions": "kept (another live grant)", "aws_session_deny": ""},
        )
    html = page(as_user(engineer), reverse("request-detail", args=[req.pk]))
    assert "Okta sessions kept (another live grant)" in html
    assert "Open sessions ended" not in html


# --- Defect 9: internal names do not reach people -----------------------------------------------


def test_human_names_not_internal_ones(approver, plan, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        failover = failover_services.open_failover(actor=approver, reason="IdC down", drill=False)
    assert str(failover) == f"Failover #{failover.pk}"
    assert payload_summary({"drill": False, "reason": "x", "okta_detail": "00u1 00g2"}) == (
        "drill: no · reason: x"
    )
    client = as_user(approver)
    response = client.post(reverse("readiness-run"), follow=True)
    text = response.content.decode()
    assert "Readiness check #" in text and "(Running)" not in text and "queued" not in text


def test_okta_errors_name_people_and_groups_and_say_what_happens_next(
    approver, engineer, pending, fake_idp, monkeypatch, django_capture_on_commit_callbacks
):
    req = pending(engineer)
    with django_capture_on_commit_callbacks(execute=False):
        services.approve(req, actor=approver)

    def fails(self, group_id, user_id):
        raise IdpRetryableError(
            f"add {user_id} to {group_id}: Okta answered 500 E0000009", status=500, code="E0000009"
        )

    monkeypatch.setattr(InMemoryIdentityProvider, "add_group_member", fails)
    monkeypatch.setattr("requests_app.tasks.provision_grant.retry", lambda **kw: RuntimeError())
    with pytest.raises(RuntimeError):
        provision_grant.apply(args=[req.pk], throw=True)
    req.refresh_from_db()
    assert "engineer@example.com" in req.last_error and req.role.okta_group_name in req.last_error
    assert "tries again" in req.last_error and "00u" not in req.last_error
    html = page(as_user(engineer), reverse("request-detail", args=[req.pk]))
    assert "00u" not in html.split('id="request-timeline"')[0]
    event = events_for(req).get(action="request.okta_error")
    assert "add " in event.payload["okta_detail"]  # Okta's own words, for the audit log


# --- Defect 10: tokens page, 405 page ------------------------------------------------------------


def test_a_get_on_an_action_url_explains_itself(approver, engineer, pending):
    req = pending(engineer)
    response = as_user(approver).get(reverse("request-action", args=[req.pk, "deny"]))
    assert response.status_code == 405
    assert "Nothing to show at this address" in response.content.decode()
    assert response["Allow"] == "POST"


def test_the_tokens_page_has_a_copy_button_and_a_phone_table(engineer):
    client = as_user(engineer)
    response = client.post(reverse("tokens"), {"name": "laptop script"})
    html = response.content.decode()
    assert 'data-copy="new-token"' in html
    assert 'class="prose muted"' not in html
    assert '<table class="stack">' in html and 'data-label="Last used"' in html
    assert not missing_described_by(html)


# --- Defect 11: accessibility in the markup ------------------------------------------------------


def test_skip_link_and_every_aria_reference_exists(
    approver, engineer, grant, pending, oncall, plan, django_capture_on_commit_callbacks
):
    held = grant(engineer)
    pending(oncall)
    urls = [
        reverse("dashboard"),
        reverse("request-new"),
        reverse("request-list"),
        reverse("request-detail", args=[held.pk]),
        reverse("approvals"),
        reverse("failover"),
        reverse("tokens"),
        reverse("readiness"),
        reverse("audit-log"),
    ]
    for who in (approver, engineer):
        client = as_user(who)
        for url in urls:
            response = client.get(url)
            if response.status_code != 200:
                continue
            html = response.content.decode()
            assert '<a class="skip-link" href="#main">' in html, url
            assert not missing_described_by(html), (who, url, missing_described_by(html))
    # A fieldset's error is linked to it.
    client = as_user(engineer)
    response = client.post(reverse("request-new"), {"justification": "x"})
    html = response.content.decode()
    assert 'aria-describedby="id_role_helptext id_role_error"' in html
    assert 'id="id_role_error"' in html


# --- The engineer's moment ------------------------------------------------------------------------


def test_an_active_grant_shows_countdown_switch_role_and_end_my_access(engineer, grant):
    req = grant(engineer)
    grant(engineer, account="prod-data")
    html = page(as_user(engineer), reverse("request-detail", args=[req.pk]))
    assert "Your access is active" in html
    assert re.search(r'<time class="countdown" data-countdown datetime="[^"]+">until ', html)
    links = re.findall(r'href="(https://signin\.aws\.amazon\.com/switchrole\?[^"]+)"', html)
    assert links[0] == (
        "https://signin.aws.amazon.com/switchrole?roleName=EmergencyAccess_RO"
        "&amp;account=111111111111&amp;displayName=prod-payments+%2F+RO"
    )
    assert len(links) == 2  # the other active grant of the same person too
    assert "End my access now" in html


def test_the_requester_ends_their_own_grant(
    approver, engineer, oncall, grant, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    with pytest.raises(NotAllowed):
        services.end_own_grant(req, actor=oncall)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        as_user(engineer).post(reverse("request-action", args=[req.pk, "end"]), {"comment": ""})
    req.refresh_from_db()
    assert req.status == Status.REVOKED and req.ended_by == engineer
    event = events_for(req).get(action="request.revoked")
    assert event.payload["ended_by_requester"] is True and event.actor == engineer
    assert queued  # the deprovisioning (and the email) wait for the commit
    html = page(as_user(engineer), reverse("request-detail", args=[req.pk]))
    assert "Ended early by the requester" in html


def test_the_menu_counts_what_waits_for_this_approver(
    approver, approver2, engineer, oncall, pending, django_capture_on_commit_callbacks
):
    pending(engineer)
    ops = pending(oncall, level="Ops")
    with django_capture_on_commit_callbacks(execute=False):
        services.approve(ops, actor=approver2)
    html = page(as_user(approver), reverse("dashboard"))
    assert re.search(r'id="pending-count">2<', html)
    queue = page(as_user(approver), reverse("approvals"))
    assert "Approved by approver2" in queue
    assert "Higher risk: 2 approvers" in queue and "level-high" in queue
    # approver2 already approved the Ops one: one left for them.
    assert re.search(r'id="pending-count">1<', page(as_user(approver2), reverse("dashboard")))


def test_extension_requests_are_decided_inline_in_the_queue(
    approver, engineer, grant, django_capture_on_commit_callbacks
):
    req = grant(engineer)
    with django_capture_on_commit_callbacks(execute=False):
        ext = extensions.request_extension(
            req, actor=engineer, minutes=15, justification="The restore is still running here."
        )
    client = as_user(approver)
    queue = page(client, reverse("approvals"))
    action = reverse("extension-action", args=[req.pk, ext.pk, "approve"])
    assert f'action="{action}"' in queue
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(action, {"comment": "ok", "next": reverse("approvals")})
    assert response["Location"] == reverse("approvals")
    ext.refresh_from_db()
    assert ext.status == "approved"


def test_returning_failover_status_is_in_the_request_page_version(
    approver, engineer, grant, django_capture_on_commit_callbacks
):
    """The request page follows the failover into the return to normal by itself."""
    req = grant(engineer)
    client = as_user(engineer)
    html = page(client, reverse("request-detail", args=[req.pk]))
    version = re.search(r"status/\?v=([^\"]+)\"", html).group(1)
    returning(approver, django_capture_on_commit_callbacks)
    assert Failover.objects.get().status == FailoverStatus.RETURNING
    live = client.get(reverse("request-status", args=[req.pk]) + f"?v={version}", headers=HTMX)
    assert live.status_code == 200
    assert "Sign out of the AWS console now" in live.content.decode()
