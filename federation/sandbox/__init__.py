"""A sandbox Okta org: the subset of Okta's Management API the portal uses, in memory.

Start one in-process for tests::

    from federation.sandbox import serve

    with serve(port=0, token="sandbox-api-token") as server:
        server.url    # http://127.0.0.1:PORT, for OKTA_ORG_URL
        server.org    # the SandboxOrg, for direct assertions

or as a process: ``python -m federation.sandbox --port 8100``. It needs no
Django settings.
"""

from .faults import DEFAULT_RATE_LIMITS, FaultRule
from .org import OktaError, SandboxOrg
from .seed import DEFAULT_APP_ID, DEFAULT_TOKEN, default_seed, load_seed, merge_seed
from .server import SandboxServer, serve

__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_RATE_LIMITS",
    "DEFAULT_TOKEN",
    "FaultRule",
    "OktaError",
    "SandboxOrg",
    "SandboxServer",
    "default_seed",
    "load_seed",
    "merge_seed",
    "serve",
]
