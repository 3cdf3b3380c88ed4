"""The demo controls (staff only, demo only): play what the demo cannot do by itself --
Identity Center disrupted and back, an engineer signing in to AWS, Okta going down."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from federation import queue
from federation.aws import demo_world
from federation.plan import iam, parse_plan
from federation.sandbox import control
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
    context = {**_state(), "logins": logins, "demo_aws": _demo_aws()}
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
        else:
            raise Http404("No such demo control.")
    except control.SandboxUnavailable as exc:
        messages.error(request, f"The sandbox Okta org did not answer: {exc}.")
    return redirect("demo-controls")
