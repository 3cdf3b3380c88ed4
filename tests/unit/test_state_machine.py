"""Every transition of the access-request state machine, and every guard."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from portal.audit import events_for, verify_chain
from portal.core.errors import Conflict, InvalidTransition, NotAllowed
from portal.models import AuditEvent
from requests_app import break_glass, services
from requests_app.models import TRANSITION_ACTIONS, TRANSITIONS, AccessRequest, Status

FAR_FUTURE = timezone.now() + dt.timedelta(days=3650)


def make_request(engineer, role, failover, status=Status.PENDING, **fields) -> AccessRequest:
    defaults = {
        "justification": "Identity Center is down and payments are failing.",
        "ticket": "INC-1",
        "duration_minutes": 30,
        "okta_login": engineer.email,
    }
    if status == Status.ACTIVE:
        defaults["expires_at"] = timezone.now() - dt.timedelta(seconds=1)
    return AccessRequest.objects.create(
        requester=engineer, role=role, failover=failover, status=status, **{**defaults, **fields}
    )


@pytest.fixture
def ro_role(plan):
    return plan.roles[("prod-payments", "RO")]


@pytest.fixture
def ops_role(plan):
    return plan.roles[("prod-payments", "Ops")]


def run_transition(name, req, *, engineer, approver):
    """Call the one service that performs `name`; worker-side ones are no-ops when not allowed."""
    calls = {
        "approve": lambda: services.approve(req, actor=approver),
        "deny": lambda: services.deny(req, actor=approver, reason="no"),
        "cancel": lambda: services.cancel(req, actor=engineer),
        "revoke": lambda: services.revoke(req, actor=approver, reason="done"),
        "end": lambda: services.end_own_grant(req, actor=engineer, reason="done early"),
        "lapse": lambda: services.lapse(req.pk, reason="nobody answered"),
        "activate": lambda: services.activate(req.pk, okta_user_id="00u123"),
        "fail": lambda: services.fail(req.pk, error="Okta said no"),
        "expire": lambda: services.expire(req.pk, now=FAR_FUTURE),
        "break_glass": lambda: break_glass.activate(
            req,
            actor=engineer,
            confirmation=f"break glass #{req.pk}",
            ticket="INC-1",
            now=FAR_FUTURE,
        ),
    }
    return calls[name]()


WORKER_SIDE = {"lapse", "activate", "fail", "expire"}


@pytest.mark.parametrize("transition", sorted(TRANSITIONS))
@pytest.mark.parametrize("start", [s.value for s in Status])
def test_transition_table(
    transition, start, engineer, approver, ro_role, open_failover,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    sources, target = TRANSITIONS[transition]
    req = make_request(engineer, ro_role, open_failover, status=start)
    events_before = events_for(req).count()
    with django_capture_on_commit_callbacks(execute=False):
        if start in sources:
            run_transition(transition, req, engineer=engineer, approver=approver)
            req.refresh_from_db()
            assert req.status == target
            actions = list(events_for(req).values_list("action", flat=True))
            assert TRANSITION_ACTIONS.get(transition, f"request.{target}") in actions
        elif transition in WORKER_SIDE:
            assert run_transition(transition, req, engineer=engineer, approver=approver) is None
            req.refresh_from_db()
            assert req.status == start
            assert events_for(req).count() == events_before
        else:
            with pytest.raises(InvalidTransition):
                run_transition(transition, req, engineer=engineer, approver=approver)
            req.refresh_from_db()
            assert req.status == start
            assert events_for(req).count() == events_before
    assert verify_chain() is None


def test_self_approval_refused(engineer, approver, ro_role, open_failover):
    req = make_request(approver, ro_role, open_failover, okta_login=approver.email)
    with pytest.raises(NotAllowed, match="own request"):
        services.approve(req, actor=approver)
    req.refresh_from_db()
    assert req.status == Status.PENDING
    assert req.approvals.count() == 0


def test_ops_needs_two_distinct_approvers(
    engineer, approver, approver2, ops_role, open_failover, monkeypatch,
    django_capture_on_commit_callbacks,
):  # fmt: skip

    queued: list[int] = []
    monkeypatch.setattr("requests_app.queue.provision_grant", queued.append)
    monkeypatch.setattr("portal.queue.send_email", lambda *a: None)
    req = make_request(engineer, ops_role, open_failover)
    with django_capture_on_commit_callbacks(execute=True):
        services.approve(req, actor=approver, comment="ok")
    req.refresh_from_db()
    assert req.status == Status.PENDING
    assert queued == []
    with pytest.raises(NotAllowed, match="already approved"):
        services.approve(req, actor=approver)
    assert req.approvals.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.approve(req, actor=approver2, comment="ok too")
    req.refresh_from_db()
    assert req.status == Status.APPROVED
    assert req.decided_by == approver2
    assert list(req.approvals.values_list("approver__username", flat=True)) == [
        "approver1",
        "approver2",
    ]
    # Provisioning is queued once, after commit, by the deciding approval only.
    assert queued == [req.pk]


def test_approve_after_cancel_refused(engineer, approver, ro_role, open_failover):
    req = make_request(engineer, ro_role, open_failover)
    services.cancel(req, actor=engineer)
    with pytest.raises(InvalidTransition):
        services.approve(req, actor=approver)
    req.refresh_from_db()
    assert req.status == Status.CANCELLED
    assert req.approvals.count() == 0


def test_only_approvers_decide(engineer, oncall, auditor, ro_role, open_failover):
    req = make_request(engineer, ro_role, open_failover)
    for actor in (oncall, auditor, engineer):
        with pytest.raises(NotAllowed):
            services.approve(req, actor=actor)
        with pytest.raises(NotAllowed):
            services.deny(req, actor=actor, reason="Not needed.")
    req.refresh_from_db()
    assert req.status == Status.PENDING


def test_only_requester_cancels(engineer, oncall, approver, ro_role, open_failover):
    req = make_request(engineer, ro_role, open_failover)
    for actor in (oncall, approver):
        with pytest.raises(NotAllowed):
            services.cancel(req, actor=actor)


def test_revoke_needs_an_approver(engineer, ro_role, open_failover):
    req = make_request(engineer, ro_role, open_failover, status=Status.ACTIVE)
    with pytest.raises(NotAllowed):
        services.revoke(req, actor=engineer, reason="Done.")


def test_expire_only_when_due(engineer, ro_role, open_failover):
    req = make_request(
        engineer, ro_role, open_failover, status=Status.ACTIVE,
        expires_at=timezone.now() + dt.timedelta(minutes=5),
    )  # fmt: skip
    assert services.expire(req.pk) is None
    assert services.expire(req.pk, now=timezone.now() + dt.timedelta(minutes=6)) is not None


def test_activate_starts_the_clock(engineer, ro_role, open_failover):
    req = make_request(engineer, ro_role, open_failover, status=Status.APPROVED)
    before = timezone.now()
    services.activate(req.pk, okta_user_id="00uabc")
    req.refresh_from_db()
    assert req.activated_at >= before
    assert req.expires_at == req.activated_at + dt.timedelta(minutes=req.duration_minutes)
    assert req.okta_user_id == "00uabc"


class TestFiling:
    def file(self, user, role, **overrides):
        data = {
            "justification": "Identity Center is down and I must restart the payment workers.",
            "ticket": "INC-42",
            "duration_minutes": 60,
        }
        return services.file_request(requester=user, role=role, **{**data, **overrides})

    def test_files_a_pending_request(self, fake_idp, engineer, ro_role, open_failover):
        req = self.file(engineer, ro_role)
        assert req.status == Status.PENDING
        assert req.failover == open_failover
        assert req.okta_user_id == fake_idp.find_user("engineer@example.com").id
        assert [e.action for e in events_for(req)] == ["request.filed"]

    def test_refused_without_an_open_failover(self, fake_idp, engineer, ro_role):
        with pytest.raises(Conflict, match="No failover is open"):
            self.file(engineer, ro_role)
        assert AccessRequest.objects.count() == 0

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"justification": ""}, "justification"),
            ({"justification": "urgent"}, "justification"),
            ({"ticket": "  "}, "ticket"),
            ({"duration_minutes": 241}, "duration_minutes"),
            ({"duration_minutes": 0}, "duration_minutes"),
        ],
    )
    def test_bad_input_writes_nothing(
        self, fake_idp, engineer, ro_role, open_failover, overrides, field
    ):
        with pytest.raises(ValidationError) as exc:
            self.file(engineer, ro_role, **overrides)
        assert field in exc.value.message_dict
        assert AccessRequest.objects.count() == 0

    def test_user_without_okta_account(self, fake_idp, ro_role, open_failover):
        from tests.conftest import make_user

        stranger = make_user("stranger", "stranger@example.com")
        with pytest.raises(ValidationError, match="no Okta account"):
            self.file(stranger, ro_role)
        assert AccessRequest.objects.count() == 0

    def test_auditor_cannot_file(self, fake_idp, auditor, ro_role, open_failover):
        with pytest.raises(NotAllowed):
            self.file(auditor, ro_role)

    def test_one_open_request_per_role(self, fake_idp, engineer, ro_role, open_failover):
        self.file(engineer, ro_role)
        with pytest.raises(Conflict, match="already have request"):
            self.file(engineer, ro_role)


@pytest.mark.parametrize("blank", ["", "   \n"])
def test_deny_and_revoke_need_a_reason_whatever_the_entry_point(
    blank, engineer, approver, ro_role, open_failover
):
    """The rule lives in the services, so the page, the API and Slack all keep it."""
    pending = make_request(engineer, ro_role, open_failover)
    with pytest.raises(ValidationError) as denied:
        services.deny(pending, actor=approver, reason=blank)
    assert denied.value.message_dict == {
        "reason": ["Give a reason for the denial: the engineer is told it."]
    }
    active = make_request(approver, ro_role, open_failover, status=Status.ACTIVE)
    with pytest.raises(ValidationError) as revoked:
        services.revoke(active, actor=approver, reason=blank)
    assert revoked.value.message_dict == {
        "reason": ["Give a reason for revoking: the engineer is told it."]
    }
    assert AccessRequest.objects.get(pk=pending.pk).status == Status.PENDING
    assert AccessRequest.objects.get(pk=active.pk).status == Status.ACTIVE
    assert not AuditEvent.objects.filter(action__in=["request.denied", "request.revoked"]).exists()
