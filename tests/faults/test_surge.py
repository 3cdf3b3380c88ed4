"""A surge: 20 clients file, approve and see provisioned 200 requests at once over HTTP,
on PostgreSQL, with a real worker and the sandbox Okta org. Issue 11 saw a deadlock
(file_requests -> audit.record -> the chain lock, while holding the failover row lock)
answer 500; now there is one lock order and a lost race is retried transparently."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest

from federation.failover import services as failover_services
from federation.models import Failover
from portal.accounts.tokens import create_token
from portal.audit import verify_chain
from requests_app.models import AccessRequest, Status
from tests.conftest import make_user
from tests.harness import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

CLIENTS, EACH = 20, 10
JUSTIFICATION = "Identity Center is down and payments are failing for customers."


def _call(base: str, token: str, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {"body": exc.read().decode(errors="replace")[:500]}


def test_200_requests_from_20_clients_file_approve_and_provision_without_an_error(
    integration, live_portal, prepared_plan, approver, approver2
):
    org = integration
    failover = failover_services.open_failover(actor=approver, reason="IdC down", drill=False)
    wait_for(
        lambda: Failover.objects.get(pk=failover.pk).app_activated_at,
        what="the worker to activate the federation app",
    )
    roles = [r for (_, level), r in prepared_plan.roles.items() if level == "RO"]
    engineers = []
    for n in range(CLIENTS * EACH):
        login = f"surge{n}@example.com"
        engineers.append((make_user(f"surge{n}", login), login))
    for _, login in engineers:
        org.create_user(login, "Surge", "Engineer")
    tokens = [create_token(user, "surge", user)[1] for user, _ in engineers]
    approver_tokens = [create_token(a, "surge", a)[1] for a in (approver, approver2)]

    statuses: Counter[int] = Counter()
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(c: int) -> None:
        start.wait()
        for i in range(EACH):
            n = c * EACH + i
            code, body = _call(
                live_portal,
                tokens[n],
                "/requests",
                {"role": roles[n % len(roles)].pk, "justification": JUSTIFICATION,
                 "ticket": f"INC-{n}", "duration_minutes": 60},
            )  # fmt: skip
            with lock:
                statuses[code] += 1
                if code != 201:
                    failures.append(f"file {n}: {code} {body}")
                    continue
            code, body = _call(
                live_portal, approver_tokens[n % 2], f"/requests/{body['id']}/approve", {}
            )
            with lock:
                statuses[code] += 1
                if code != 200:
                    failures.append(f"approve {n}: {code} {body}")

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert not failures, failures[:5]
    assert statuses == Counter({201: CLIENTS * EACH, 200: CLIENTS * EACH})
    wait_for(
        lambda: AccessRequest.objects.filter(status=Status.ACTIVE).count() == CLIENTS * EACH,
        timeout=180,
        interval=1,
        what="every grant to become active",
    )
    for role in roles:
        holders = set(
            AccessRequest.objects.filter(role=role, status=Status.ACTIVE).values_list(
                "okta_login", flat=True
            )
        )
        assert set(org.member_logins(role.okta_group_name)) == holders
    assert verify_chain() is None
