"""PagerDuty fixtures: the sandbox PagerDuty (https, its own certificate), this process's
settings pointed at it (the real worker of the integration tests is already)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import pagerduty_env


@pytest.fixture
def pd(sandbox_pagerduty, settings) -> Any:
    """The sandbox PagerDuty, reset; nobody on call until the test says so."""
    for name, value in pagerduty_env(sandbox_pagerduty).items():
        setattr(settings, name, int(value) if value.isdigit() else value)
    sandbox_pagerduty.state.reset()
    yield sandbox_pagerduty
    sandbox_pagerduty.state.reset()
