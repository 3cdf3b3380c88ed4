"""Helpers for integration tests: the prepared plan in the sandbox org, and waiting."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.conf import settings

from federation.idp import get_identity_provider
from tests.conftest import build_plan


@pytest.fixture
def prepared_plan(integration) -> SimpleNamespace:
    """The demo plan, with its groups created in Okta and assigned to the federation app
    (what the preparation tasks of the runbook do once, before any disruption)."""
    plan = build_plan()
    idp = get_identity_provider()
    for role in plan.roles.values():
        group = idp.ensure_group(role.okta_group_name, "Emergency access (portal managed)")
        idp.assign_group_to_app(settings.OKTA_AWS_APP_ID, group.id)
    return plan
