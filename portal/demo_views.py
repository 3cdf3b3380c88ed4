"""The demo controls (staff only, demo only): play what the demo cannot do by itself --
Identity Center disrupted and back, an engineer signing in to AWS, Okta going down,
someone using an emergency role in AWS (the AWS-side alarm), who is on call in the
sandbox PagerDuty (and what it was paged with)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from federation import queue
from federation.aws import demo_world
from federation.models import EmergencyRole
from federation.monitor import role_use
from federation.plan import iam, parse_plan
from federation.sandbox import control
from federation.sandbox import pagerduty as sandbox_pagerduty
from portal.core import access
from portal.core.web import page, require
from requests_app.models import AccessRequest, Status

ONLY_STAFF = "Only staff can use the demo controls."


def _is_staff(user: Any) -> bool:
    return bool(user.is_staff)


def _may_play(user: Any) -> bool:
    """Staff who may change things: an auditor changes nothing, even as staff."""
    return _is_staff(user) and access.can_write(user)


def _demo_only() -> None:
    if settings.PRODUCTION:
        raise Http404("There are no demo controls in production.")


def _demo_aws() -> str:
    """The demo's moto server, if the demo runs one (run_demo --aws-port)."""
    endpoint = settings.AWS_ENDPOINT_URL
    return endpoint if endpoint.startswith("http://127.0.0.1:") else ""


def _demo_plan() -> iam.RenderedPlan:
    return iam.render(parse_plan((settings.BASE_DIR / "plans" / "demo.toml").read_text()))


def _demo_pagerduty() -> str:
    """The demo's sandbox PagerDuty (run_demo starts one), or ""."""
    url = settings.PAGERDUTY_API_URL
    return url if url.startswith("https://127.0.0.1:") and settings.PAGERDUTY_CA_BUNDLE else ""


def _pagerduty(method: str, what: str, body: Any = None) -> Any:
    return sandbox_pagerduty.call_control(
        _demo_pagerduty(), settings.PAGERDUTY_CA_BUNDLE, method, what, body
    )


def _pagerduty_state() -> dict[str, Any]:
    if not _demo_pagerduty():
        return {"pagerduty": ""}
    try:
        incidents = _pagerduty("GET", "incidents")
        events = _pagerduty("GET", "events")
    except sandbox_pagerduty.SandboxUnavailable as exc:
        return {"pagerduty": _demo_pagerduty(), "pagerduty_error": str(exc)}
    return {
        "pagerduty": _demo_pagerduty(),
        "incidents": sorted(incidents, key=lambda i: -int(i["number"])),
        "page_events": list(reversed(events))[:10],
    }


def _state() -> dict[str, Any]:
    try:
        return {
            "identity_center_healthy": control.identity_center_healthy(),
            "okta_down": control.okta_is_down(),
            "sandbox_error": "",
        }
    except control.SandboxUnavailable as exc:
        return {"sandbox_error": str(exc)}


@require_GET
@page
@require(_is_staff, ONLY_STAFF)
def demo_controls(request: HttpRequest) -> HttpResponse:
    _demo_only()
    holders = (
        AccessRequest.objects.filter(status=Status.ACTIVE)
        .select_related("requester", "role__workload_account", "role__level")
        .order_by("pk")
    )
    logins = sorted({req.okta_login for req in holders})
    context = {
        **_state(),
        **_pagerduty_state(),
        "logins": logins,
        "demo_aws": _demo_aws(),
        "roles": EmergencyRole.objects.requestable().order_by("pk"),
        "settings_page_after": f"{settings.PAGERDUTY_PAGE_AFTER_MINUTES} min",
        "people": sorted(
            {*logins, "engineer@example.com", "contractor@example.com", "oncall@example.com"}
        ),
    }
    return render(request, "portal/demo_controls.html", context)


@require_POST
@page
@require(_may_play, ONLY_STAFF)
def demo_action(request: HttpRequest, action: str) -> HttpResponse:
    _demo_only()
    try:
        if action == "identity-center":
            healthy = request.POST.get("healthy") == "1"
            control.set_identity_center(healthy=healthy)
            queue.poll_health()
            messages.success(
                request,
                "Identity Center is simulated "
                + ("healthy again" if healthy else "disrupted")
                + f": the health monitor sees it within {settings.HEALTH_FAILURES_FOR_DISRUPTED}"
                f" polls of {settings.HEALTH_POLL_SECONDS} s.",
            )
        elif action == "sign-in":
            login = request.POST.get("login", "").strip()
            if not login:
                messages.error(request, "Choose who signs in to AWS.")
                return redirect("demo-controls")
            control.sign_in_to_aws(login)
            queue.poll_system_log()
            messages.success(
                request,
                f"{login} signed in to AWS through the Okta tile (recorded in the sandbox's "
                "System Log); their request page says “Signed in” once the portal has read it.",
            )
        elif action == "okta":
            if request.POST.get("down") == "1":
                control.okta_down()
                messages.success(request, "Okta is down: every Okta API call answers 503.")
            else:
                control.okta_up()
                messages.success(request, "Okta answers again; the worker catches up by itself.")
        elif action == "aws" and _demo_aws():
            if request.POST.get("drift") == "1":
                arn = demo_world.break_readiness(_demo_aws(), _demo_plan())
                messages.success(
                    request, f"Deleted {arn} in the demo's AWS: the next readiness check fails."
                )
            else:
                arn = demo_world.repair_readiness(_demo_aws(), _demo_plan())
                messages.success(request, f"Re-created {arn}: readiness passes again.")
        elif action == "aws-use":
            _aws_use(request)
        elif action == "oncall" and _demo_pagerduty():
            email = request.POST.get("email", "").strip()
            entries = [{"email": email, "escalation_level": 1}] if email else []
            _pagerduty("POST", "oncalls", entries)
            messages.success(
                request,
                f"{email} is on call now in the approvers' schedule (PSCHED1, level 1)."
                if email
                else "Nobody is on call now: on-call approval falls back to the approvers.",
            )
        else:
            raise Http404("No such demo control.")
    except control.SandboxUnavailable as exc:
        messages.error(request, f"The sandbox Okta org did not answer: {exc}.")
    except sandbox_pagerduty.SandboxUnavailable as exc:
        messages.error(request, f"The sandbox PagerDuty did not answer: {exc}.")
    return redirect("demo-controls")


def _aws_use(request: HttpRequest) -> None:
    """Someone uses an emergency role in AWS: the same path as an EventBridge delivery."""
    login = request.POST.get("login", "").strip()
    raw = request.POST.get("role", "")
    role = EmergencyRole.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
    if not login or role is None or "@" not in login:
        messages.error(request, "Choose a role and who uses it (an Okta login).")
        return
    row = role_use.simulate(role, login)
    if row.alert:
        messages.warning(
            request,
            f"ALERT: {login} used {role.role_name} in AWS — {row.get_alert_display()}. "
            "Approvers and staff were told; the dashboard shows it.",
        )
    else:
        messages.success(
            request,
            f"{login} used {role.role_name} in AWS: matched grant #{row.grant_id} "
            "(on its timeline as AWS-side evidence).",
        )
