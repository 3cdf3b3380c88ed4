"""Production defaults (findings 1, 7 and 9 of issue 10): the deployment checklist passes,
HTTPS is enforced, debugging is refused, chatty libraries never log below INFO."""

from __future__ import annotations

import pytest

from tests.security.production import manage, settings_in_production


def test_the_deployment_checklist_passes_at_warning_level():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout


def test_https_defaults():
    got = settings_in_production(
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SECURE_SSL_REDIRECT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_PROXY_SSL_HEADER",
    )
    assert got["SECURE_HSTS_SECONDS"] == 31536000
    assert got["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert got["SECURE_HSTS_PRELOAD"] is False  # opt-in
    assert got["SECURE_SSL_REDIRECT"] is True
    assert got["SESSION_COOKIE_SECURE"] is got["CSRF_COOKIE_SECURE"] is True
    # X-Forwarded-Proto is not believed unless a proxy is declared.
    assert got["SECURE_PROXY_SSL_HEADER"] is None


def test_preload_is_opt_in():
    got = settings_in_production("SECURE_HSTS_PRELOAD", SECURE_HSTS_PRELOAD="true")
    assert got["SECURE_HSTS_PRELOAD"] is True


@pytest.mark.parametrize(("value", "trusted"), [("false", None), ("0", None), ("true", True)])
def test_the_proxy_header_only_when_configured(value, trusted):
    got = settings_in_production("SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER=value)
    assert (got["SECURE_PROXY_SSL_HEADER"] is not None or None) == trusted


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DEBUG": "true"}, "DEBUG must be off"),
        ({"LOG_LEVEL": "DEBUG"}, "LOG_LEVEL=DEBUG is refused"),
        ({"LOG_LEVEL": "debug"}, "LOG_LEVEL=DEBUG is refused"),
        ({"AUDIT_CHECKPOINT_KEY": None}, "AUDIT_CHECKPOINT_KEY must be set"),
        (
            {"AUDIT_CHECKPOINT_KEY": "checkpoint:" + "x" * 60, "SECRET_KEY": "x" * 60},
            "must differ from SECRET_KEY",
        ),
        ({"AUDIT_CHECKPOINT_S3_BUCKET": None}, "Set AUDIT_CHECKPOINT_S3_BUCKET"),
        ({"SLACK_SIGNING_SECRET": "s3cr3t", "SLACK_TEAM_IDS": None}, "SLACK_TEAM_IDS must list"),
        ({"TRUSTED_PROXY_COUNT": "-1"}, "TRUSTED_PROXY_COUNT must be 0 or more"),
    ],
    ids=[
        "debug",
        "log-debug",
        "log-debug-lower",
        "no-checkpoint-key",
        "derived-key",
        "no-dest",
        "slack-without-teams",
        "negative-proxies",
    ],
)
def test_production_refuses(overrides, message):
    with pytest.raises(RuntimeError, match=message):
        settings_in_production("DEBUG", **overrides)


def test_a_checkpoint_directory_is_an_explicit_destination(tmp_path):
    got = settings_in_production(
        "AUDIT_CHECKPOINT_DIR", AUDIT_CHECKPOINT_S3_BUCKET=None, AUDIT_CHECKPOINT_DIR=str(tmp_path)
    )
    assert got["AUDIT_CHECKPOINT_DIR"] == str(tmp_path)


@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_chatty_libraries_never_below_info(level):
    loggers = settings_in_production("LOGGING", LOG_LEVEL=level)["_loggers"]
    assert all(got in {"INFO", level, "CRITICAL"} for got in loggers.values()), loggers
    assert loggers["botocore.endpoint"] == loggers["urllib3"] == level


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("false", False)])
def test_failover_confirmation_on_by_default_single_approver_mode_opt_in(value, expected):
    got = settings_in_production(
        "REQUIRE_FAILOVER_CONFIRMATION", REQUIRE_FAILOVER_CONFIRMATION=value
    )
    assert got["REQUIRE_FAILOVER_CONFIRMATION"] is expected


def test_the_demo_keeps_its_defaults():
    got = settings_in_production(
        "SECURE_SSL_REDIRECT", "REQUIRE_FAILOVER_CONFIRMATION", PORTAL_ENV="demo"
    )
    assert got["SECURE_SSL_REDIRECT"] is False
    assert got["REQUIRE_FAILOVER_CONFIRMATION"] is False


@pytest.mark.parametrize(
    ("url", "kept", "overrides"),
    [
        # PostgreSQL: one connection per thread, kept and health-checked (issue 13: a new
        # connection per request cost ~33 ms of an incident's load).
        ("postgres://portal_app@127.0.0.1:5432/portal", 60, {}),
        ("postgres://portal_app@127.0.0.1:5432/portal", 0, {"DATABASE_CONN_MAX_AGE": "0"}),
        # Any spelling dj-database-url reads as PostgreSQL (pgsql:// was left at 0).
        ("pgsql://portal_app@127.0.0.1:5432/portal", 60, {}),
        ("postgresql://portal_app@127.0.0.1:5432/portal", 60, {}),
        # SQLite (the demo) opens a connection cheaply: none kept.
        ("sqlite:////tmp/portal-settings-test.sqlite3", 0, {}),
    ],
)
def test_database_connections_are_kept_and_checked_on_postgresql(url, kept, overrides):
    got = settings_in_production("DATABASES", DATABASE_URL=url, **overrides)
    assert got["DATABASES"]["default"]["CONN_MAX_AGE"] == kept
    assert got["DATABASES"]["default"]["CONN_HEALTH_CHECKS"] is True
