"""A correct emergency-access set-up in moto, built from the rendered plan, and drift:
the demo's own (federation/aws/demo_world.py), under the names the tests use."""

from __future__ import annotations

from federation.aws.demo_world import (  # noqa: F401 - the tests' names for them
    ENV,
    certificate,
    create_emergency_role,
    create_workload_role,
    delete_role,
    iam_of,
    metadata,
    seed,
)
