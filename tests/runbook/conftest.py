"""Helpers for the runbook tests: grants made as the worker makes them, sign-in evidence,
notifications delivered in the test (locmem email, a local Slack webhook receiver)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from federation.models import EvidenceKind, SignInEvidence
from requests_app import services
from requests_app.models import AccessRequest

JUSTIFICATION = "Payments are failing and I need to read the CloudWatch logs to find out why."


def _failover(request: pytest.FixtureRequest) -> None:
    """Use the failover a test opened (a drill), else the shared open_failover fixture."""
    from federation.models import Failover

    if not Failover.objects.open().exists():
        request.getfixturevalue("open_failover")


@pytest.fixture
def grant(
    request, plan, fake_idp, approver, approver2, django_capture_on_commit_callbacks
) -> Callable[..., AccessRequest]:
    """An active grant of ``user`` for (account, level), as Okta confirmed it."""

    def _grant(user, account: str = "prod-payments", level: str = "RO", minutes: int = 60):
        _failover(request)
        role = plan.roles[(account, level)]
        with django_capture_on_commit_callbacks(execute=False):
            req = services.file_request(
                requester=user, role=role, justification=JUSTIFICATION, ticket="INC-9",
                duration_minutes=minutes,
            )  # fmt: skip
            for who in (approver, approver2)[: role.level.approvals_required]:
                services.approve(req, actor=who)
            user_id = fake_idp.find_user(user.email).id
            fake_idp.add_group_member(fake_idp.find_group(role.okta_group_name).id, user_id)
            services.activate(req.pk, okta_user_id=user_id)
        return AccessRequest.objects.with_related().get(pk=req.pk)

    return _grant


@pytest.fixture
def pending(request, plan, fake_idp, django_capture_on_commit_callbacks):
    def _pending(user, account: str = "prod-payments", level: str = "RO"):
        _failover(request)
        with django_capture_on_commit_callbacks(execute=False):
            return services.file_request(
                requester=user, role=plan.roles[(account, level)], justification=JUSTIFICATION,
                ticket="INC-9", duration_minutes=30,
            )  # fmt: skip

    return _pending


def seen_signing_in(req: AccessRequest, at: dt.datetime | None = None) -> SignInEvidence:
    """What the System Log poller records for a user.authentication.sso to the app."""
    at = at or timezone.now()
    return SignInEvidence.objects.create(
        failover_id=req.failover_id,
        login=req.okta_login.lower(),
        kind=EvidenceKind.SIGN_IN,
        at=at,
        source="okta-system-log",
        source_id=f"test-sso-{req.pk}-{at.timestamp()}",
    )


def signs_out(req: AccessRequest, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        services.confirm_signed_out(req, req.requester)


@pytest.fixture
def deliver_now(monkeypatch):
    """Notification tasks run in the test, after commit (Celery's eager apply)."""
    from django.db import transaction

    from portal import tasks

    for task in (tasks.send_email, tasks.send_slack):
        monkeypatch.setattr(
            f"portal.queue.{task.name.split('.')[-1]}",
            lambda *a, _t=task, **k: transaction.on_commit(lambda: _t.apply(args=a, kwargs=k)),
        )


class SlackReceiver:
    """A local stand-in for Slack's incoming webhook: records posts, answers as told."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers to give first (then 200)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append({"path": self.path, "json": json.loads(body)})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                text = b"ok" if status == 200 else b"no_service"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/services/T000/B000/XXXX"

    def texts(self) -> list[str]:
        return [post["json"].get("text", "") for post in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack(settings) -> Iterator[SlackReceiver]:
    receiver = SlackReceiver()
    settings.SLACK_WEBHOOK_URL = receiver.url
    yield receiver
    receiver.close()
