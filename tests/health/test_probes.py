"""The health sources against stand-ins: a moto server for sso-admin and identitystore,
botocore's Stubber for the AWS Health API (moto has none), a local HTTP server for the
access portal. Then the derived state from what was recorded."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.stub import Stubber
from django.utils import timezone

from federation.aws import clients as aws_clients
from federation.models import HealthSample, HealthSource
from federation.monitor import health
from federation.monitor.health import DISRUPTED, HEALTHY
from federation.tasks import poll_health

pytestmark = pytest.mark.django_db


@pytest.fixture
def health_api(aws, monkeypatch):
    """The AWS Health client, stubbed; every other client goes to the moto server."""
    real = aws_clients.client
    client = boto3.client(
        "health",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stubber = Stubber(client)
    stubber.activate()

    def pick(service, region=None, **credentials):
        return client if service == "health" else real(service, region, **credentials)

    monkeypatch.setattr(aws_clients, "client", pick)
    yield stubber
    stubber.deactivate()


EXPECTED_FILTER = {
    "filter": {
        "services": ["SSO"],
        "regions": ["eu-west-1"],
        "eventTypeCategories": ["issue"],
        "eventStatusCodes": ["open"],
    },
    "maxResults": 10,
}


def no_issue(stubber):
    stubber.add_response("describe_events", {"events": []}, EXPECTED_FILTER)


def by_source(samples):
    return {s.source: s for s in samples}


def test_every_source_passes_and_the_state_is_healthy(health_api, access_portal):
    no_issue(health_api)
    samples = by_source(health.collect())
    assert set(samples) == {s.value for s in HealthSource}
    assert all(s.ok is True for s in samples.values()), {k: s.error for k, s in samples.items()}
    assert all(s.latency_ms is not None for s in samples.values())
    store = samples[HealthSource.SSO_ADMIN].detail["identity_store_id"]
    assert store.startswith("d-")
    # The identity store probe read the store the instance reported.
    assert samples[HealthSource.IDENTITY_STORE].detail == {"identity_store_id": store}
    assert samples[HealthSource.ACCESS_PORTAL].detail["status"] == 200
    assert health.evaluate().state == HEALTHY
    health_api.assert_no_pending_responses()


def test_aws_health_without_business_support_is_unavailable(health_api, settings):
    settings.AWS_ACCESS_PORTAL_URL = ""
    health_api.add_client_error(
        "describe_events",
        service_error_code="SubscriptionRequiredException",
        service_message="The AWS Premium Support Subscription is required",
        http_status_code=400,
    )
    sample = by_source(health.collect())[HealthSource.AWS_HEALTH]
    assert sample.ok is None
    assert sample.error.startswith("source unavailable (SubscriptionRequiredException")
    # The probes still decide: unavailable never reads as healthy, nor as failing.
    state = health.evaluate()
    assert state.state == HEALTHY
    assert any("AWS Health API: source unavailable" in line for line in state.evidence)


def test_an_open_aws_health_issue_is_recorded_with_its_events(health_api, settings):
    settings.AWS_ACCESS_PORTAL_URL = ""
    health_api.add_response(
        "describe_events",
        {
            "events": [
                {
                    "arn": "arn:aws:health:eu-west-1::event/SSO/AWS_SSO_OPERATIONAL_ISSUE/x",
                    "service": "SSO",
                    "eventTypeCode": "AWS_SSO_OPERATIONAL_ISSUE",
                    "eventTypeCategory": "issue",
                    "region": "eu-west-1",
                    "startTime": dt.datetime(2026, 3, 1, 11, 50, tzinfo=dt.UTC),
                    "statusCode": "open",
                }
            ]
        },
        EXPECTED_FILTER,
    )
    sample = by_source(health.collect())[HealthSource.AWS_HEALTH]
    assert sample.ok is False
    assert sample.error == "1 open issue(s): AWS_SSO_OPERATIONAL_ISSUE"
    assert sample.detail["issues"][0]["region"] == "eu-west-1"
    assert health.evaluate().state == "DEGRADED"


def test_an_unreachable_identity_center_is_disrupted_after_n_polls(
    health_api, access_portal, settings, monkeypatch
):
    no_issue(health_api)
    health.collect()  # healthy once: the identity store id is known from then on
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens: connection refused
    access_portal.status = 503
    told = []
    monkeypatch.setattr(
        "federation.monitor.messages.health_changed", lambda s: told.append(s.state)
    )
    start = timezone.now()
    states = []
    for minute in range(1, 4):
        no_issue(health_api)
        states.append(health.poll(now=start + dt.timedelta(minutes=minute)).state)
    assert states == ["DEGRADED", "DEGRADED", DISRUPTED]
    assert told == [DISRUPTED]
    last = by_source(HealthSample.objects.filter(recorded_at=start + dt.timedelta(minutes=3)))
    assert last[HealthSource.SSO_ADMIN].ok is False
    assert "EndpointConnectionError" in last[HealthSource.SSO_ADMIN].error
    assert last[HealthSource.IDENTITY_STORE].ok is False
    assert last[HealthSource.ACCESS_PORTAL].error == "HTTP 503"
    # The Health API itself (us-east-1) still answered "no open issue".
    assert last[HealthSource.AWS_HEALTH].ok is True


def test_a_wrong_access_portal_url_is_unavailable_not_down(access_portal, settings):
    settings.IDENTITY_CENTER_REGION = ""
    access_portal.status = 404
    sample = by_source(health.collect())[HealthSource.ACCESS_PORTAL]
    assert sample.ok is None
    assert "check AWS_ACCESS_PORTAL_URL" in sample.error


def test_a_refused_access_portal_is_a_failure(settings):
    settings.IDENTITY_CENTER_REGION = ""
    settings.AWS_ACCESS_PORTAL_URL = "http://127.0.0.1:9/start"
    sample = by_source(health.collect())[HealthSource.ACCESS_PORTAL]
    assert sample.ok is False
    assert "refused" in sample.error.lower()


def test_no_credentials_is_unavailable(aws, monkeypatch, settings, tmp_path):
    settings.AWS_ACCESS_PORTAL_URL = ""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    samples = by_source(health.collect())
    assert samples[HealthSource.SSO_ADMIN].ok is None
    assert "Unable to locate credentials" in samples[HealthSource.SSO_ADMIN].error
    assert health.evaluate().state == "UNKNOWN"


def test_a_configured_identity_store_id_is_used(health_api, settings):
    settings.AWS_ACCESS_PORTAL_URL = ""
    settings.IDENTITY_STORE_ID = "d-9999999999"
    no_issue(health_api)
    sample = by_source(health.collect())[HealthSource.IDENTITY_STORE]
    assert sample.ok is True
    assert sample.detail == {"identity_store_id": "d-9999999999"}


def test_a_crashing_probe_does_not_silence_the_others(access_portal, settings, monkeypatch):
    settings.IDENTITY_CENTER_REGION = "eu-west-1"

    def boom():
        raise RuntimeError("bug")

    for name in ("probe_aws_health", "probe_sso_admin"):
        monkeypatch.setattr(health, name, boom)
    monkeypatch.setattr(health, "probe_identity_store", lambda store_id: boom())
    samples = by_source(health.collect())
    assert samples[HealthSource.SSO_ADMIN].ok is None
    assert samples[HealthSource.SSO_ADMIN].error == "probe crashed: RuntimeError: bug"
    assert samples[HealthSource.ACCESS_PORTAL].ok is True


def test_the_beat_task_samples_derives_and_prunes(health_api, access_portal, settings):
    settings.HEALTH_KEEP_DAYS = 7
    old = HealthSample.objects.create(
        source=HealthSource.SSO_ADMIN, ok=True, recorded_at=timezone.now() - dt.timedelta(days=8)
    )
    no_issue(health_api)
    assert poll_health() == HEALTHY
    assert not HealthSample.objects.filter(pk=old.pk).exists()
    assert HealthSample.objects.count() == 4


def test_the_command_samples_once_and_prints_the_evidence(health_api, access_portal):
    from io import StringIO

    from django.core.management import call_command

    no_issue(health_api)
    out = StringIO()
    call_command("identity_center_health", stdout=out)
    assert out.getvalue().startswith("HEALTHY since ")
    assert "sso-admin ListInstances: ok" in out.getvalue()


def test_the_command_lists_health_event_types_to_check_the_service_code(health_api):
    from io import StringIO

    from django.core.management import call_command

    health_api.add_response(
        "describe_event_types",
        {
            "eventTypes": [
                {"service": "SSO", "code": "AWS_SSO_OPERATIONAL_ISSUE", "category": "issue"}
            ]
        },
        {"filter": {"services": ["SSO"]}},
    )
    out = StringIO()
    call_command("identity_center_health", "--event-types", stdout=out)
    assert out.getvalue() == "SSO\tissue\tAWS_SSO_OPERATIONAL_ISSUE\n"
