"""The demo's AWS (issue 12): a moto server seeded with the demo plan's roles and SAML
provider, so readiness passes in ``make demo``. (The seeding itself is what the
readiness tests run against: tests/awsworld.py uses federation/aws/demo_world.py.)"""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from portal.management.commands.run_demo import Command as RunDemo


def test_the_children_talk_to_moto_only_with_an_aws_port():
    env = RunDemo._child_env(8711, 8712, 8713)
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:8713"
    assert env["AWS_AUDIT_ROLE_NAME"] == "EmergencyAccessAudit"
    assert env["MOTO_IAM_LOAD_MANAGED_POLICIES"] == "true"
    assert env["AWS_ACCESS_PORTAL_URL"] == (
        "http://127.0.0.1:8712/__sandbox__/identity-center/start"
    )
    assert RunDemo._child_env(8711, 8712).get("AWS_ENDPOINT_URL") != "http://127.0.0.1:8713"


def test_seed_demo_aws_only_seeds_a_local_moto_server():
    with pytest.raises(CommandError, match="on this machine"):
        call_command("seed_demo_aws", endpoint="https://iam.amazonaws.com")


def test_run_demo_refuses_an_aws_port_that_is_taken():
    with pytest.raises(CommandError, match="--aws-port must differ"):
        call_command("run_demo", "--port", "8711", "--okta-port", "8712", "--aws-port", "8712")
