"""A strict Content-Security-Policy and a Permissions-Policy on every page (finding 2)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

ROOT = Path(settings.BASE_DIR)
STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    # the TOTP set-up's QR code is a data: image
    "img-src": "'self' data:",
    "frame-ancestors": "'none'",
    # "Sign in with Okta" is redirected on to Okta's authorize page (the demo's sandbox)
    "form-action": "'self' http://127.0.0.1:8100",
    "base-uri": "'none'",
}
# Inline script, inline style blocks, style="" attributes and on*="" handlers: all
# refused by the policy, so none may appear in a template.
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>"
    r"|<style\b|\sstyle\s*=|\son[a-z]+\s*=|javascript:|hx-on[:-]",
    re.IGNORECASE,
)
EVAL_LIKE = re.compile(r"\beval\(|new Function\(|setAttribute\(\s*[\"']style|\.innerHTML\s*=")


def _policy(header: str) -> dict[str, str]:
    parts = (p.strip().split(None, 1) for p in header.split(";") if p.strip())
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/healthz", "/api/v1/openapi.json"])
def test_every_answer_carries_the_strict_policy(client, engineer, path):
    client.force_login(engineer)
    response = client.get(path)
    policy = _policy(response["Content-Security-Policy"])
    assert {k: v for k, v in policy.items() if k in STRICT} == STRICT
    assert policy["report-uri"] == "/csp-report/"
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]


def _templates() -> list[Path]:
    dirs = [ROOT / "templates", *ROOT.glob("*/templates")]
    return sorted(p for d in dirs for p in d.rglob("*.html"))


def test_no_template_has_inline_script_style_or_handlers():
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _templates()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if INLINE.search(line)
    ]
    assert len(_templates()) > 20
    assert found == []


def test_our_static_scripts_need_no_unsafe_inline_or_eval():
    scripts = [p for p in ROOT.glob("*/static/**/*.js") if not p.name.endswith(".min.js")]
    assert scripts
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in scripts
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if EVAL_LIKE.search(line)
    ]
    assert found == []


def test_htmx_is_told_not_to_inject_styles_or_eval():
    base = (ROOT / "templates" / "base.html").read_text()
    config = json.loads(re.search(r"name=\"htmx-config\" content='([^']+)'", base).group(1))
    assert config["includeIndicatorStyles"] is False
    assert config["allowEval"] is False


class TestReportEndpoint:
    def test_a_report_is_logged(self, client, caplog):
        caplog.set_level(logging.WARNING, logger="portal.csp")
        report = {
            "csp-report": {
                "document-uri": "https://portal.example.com/",
                "violated-directive": "style-src 'self'",
                "blocked-uri": "inline",
            }
        }
        response = client.post(
            reverse("csp-report"), json.dumps(report), content_type="application/csp-report"
        )
        assert response.status_code == 204
        assert "CSP violation" in caplog.text and "style-src" in caplog.text

    def test_the_reporting_api_shape_too(self, client, caplog):
        caplog.set_level(logging.WARNING, logger="portal.csp")
        report = [{"type": "csp-violation", "body": {"effectiveDirective": "script-src-elem"}}]
        response = client.post(
            reverse("csp-report"), json.dumps(report), content_type="application/reports+json"
        )
        assert response.status_code == 204
        assert "script-src-elem" in caplog.text

    @pytest.mark.parametrize(
        ("body", "status"),
        [(b"not json", 400), (b"\xff\xfe", 400), (b"[" * 20000, 413), (b"[" * 15000, 400)],
    )
    def test_garbage_is_refused_without_a_500(self, client, body, status):
        response = client.post(reverse("csp-report"), body, content_type="application/csp-report")
        assert response.status_code == status

    def test_only_post(self, client):
        assert client.get(reverse("csp-report")).status_code == 405
