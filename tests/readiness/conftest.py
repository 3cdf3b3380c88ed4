"""Readiness against a moto server holding a correct set-up, and Okta through the fake.

The AWS world is seeded once per session (an account's IAM in moto loads every
AWS managed policy on first use: seconds, not milliseconds). A test that drifts
it does so through ``drift``, which puts everything back afterwards, so every
test starts from the correct set-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from federation.models import Level
from federation.plan import iam, parse_plan
from tests import awsworld
from tests.conftest import build_plan

DEMO_TEXT = (Path(settings.BASE_DIR) / "plans" / "demo.toml").read_text()


def name_approvers() -> None:
    """A complete plan says who may decide (the eligibility check warns otherwise)."""
    Level.objects.update(approvers=["sre-leads"])


@pytest.fixture
def plan(db: Any) -> Any:
    """The shared plan, with eligibility: readiness passes only on a complete plan."""
    found = build_plan()
    name_approvers()
    return found


def demo_plan() -> iam.RenderedPlan:
    """The rendered demo plan: the same accounts and levels as the ``plan`` fixture."""
    return iam.render(parse_plan(DEMO_TEXT))


@pytest.fixture(scope="session")
def seeded_world(moto_endpoint: str) -> str:
    import urllib.request

    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=60).close()
    awsworld.seed(moto_endpoint, demo_plan())
    return moto_endpoint


@pytest.fixture
def aws(seeded_world: str, settings, monkeypatch) -> str:
    """Settings pointing readiness at the seeded moto server."""
    for name, value in awsworld.ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.AWS_ENDPOINT_URL = seeded_world
    settings.AWS_AUDIT_ROLE_NAME = "EmergencyAccessAudit"
    return seeded_world


class Drift:
    """Change the seeded world; every change is undone when the test ends."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.plan = demo_plan()
        self._undo: list[Callable[[], Any]] = []

    def iam(self, account_id: str) -> Any:
        return awsworld.iam_of(self.endpoint, account_id)

    def change(self, do: Callable[[], Any], undo: Callable[[], Any]) -> None:
        do()
        self._undo.append(undo)

    def undo_all(self) -> None:
        while self._undo:
            self._undo.pop()()


@pytest.fixture
def drift(aws: str) -> Iterator[Drift]:
    found = Drift(aws)
    yield found
    found.undo_all()


@pytest.fixture
def okta_ready(fake_idp, settings):
    """The fake org as prepared: every group assigned to the (inactive) app, no members."""
    for role in fake_idp.__class__._groups.values():
        fake_idp.assign_group_to_app(settings.OKTA_AWS_APP_ID, role.id)
    return fake_idp
