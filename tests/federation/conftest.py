"""The sandbox Okta org in-process, and Django settings pointing the okta adapter at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from federation.sandbox import DEFAULT_APP_ID, SandboxServer, serve

ADAPTER_TOKEN = "adapter-test-token-0123456789"


@pytest.fixture(scope="session")
def adapter_token() -> str:
    # A fixture, not an import: tests/federation is no package (its name would shadow
    # the real ``federation`` package while tests/ itself is not one).
    return ADAPTER_TOKEN


@pytest.fixture(scope="session")
def okta_sandbox() -> Iterator[SandboxServer]:
    server = serve(port=0, token=ADAPTER_TOKEN)
    yield server
    server.shutdown()


@pytest.fixture
def sandbox(okta_sandbox: SandboxServer, settings) -> Iterator[SandboxServer]:
    """A fresh sandbox org, and settings for the SSWS-token adapter pointing at it."""
    okta_sandbox.reset()
    settings.OKTA_ORG_URL = okta_sandbox.url
    settings.OKTA_API_TOKEN = ADAPTER_TOKEN
    settings.OKTA_CLIENT_ID = None
    settings.OKTA_PRIVATE_KEY = None
    settings.OKTA_KEY_ID = None
    settings.OKTA_AWS_APP_ID = DEFAULT_APP_ID
    settings.OKTA_ALLOW_HTTP = True
    settings.OKTA_REQUEST_TIMEOUT = 5
    settings.OKTA_SDK_MAX_RETRIES = 1
    yield okta_sandbox
    okta_sandbox.clear_faults()
