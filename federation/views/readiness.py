"""The Plan page (rendered documents, copy and download) and the Readiness page."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from federation.plan import PlanError, cloudformation, current_plan, export_plan, iam
from federation.plan import files as plan_files
from federation.readiness import checks as readiness
from portal.core import access
from portal.core.errors import DomainError
from portal.core.types import SignedInRequest
from portal.core.web import page, require

READERS = "Only approvers, auditors and admins can see the access plan and its readiness."
ONLY_APPROVERS = "Only approvers can run the readiness checks."


def _rendered() -> tuple[iam.RenderedPlan | None, list[str]]:
    try:
        return iam.render(current_plan()), []
    except PlanError as exc:
        return None, exc.errors


def _doc(title: str, document: Any, doc_id: str, file: str = "") -> dict[str, str]:
    text = document if isinstance(document, str) else iam.dumps(document)
    return {"title": title, "text": text, "doc_id": doc_id, "file": file}


def _documents(plan: iam.RenderedPlan) -> dict[str, Any]:
    """Every document of the page with its element id and download name (plan_files')."""
    emergency = []
    for role in plan.emergency_roles:
        base = f"emergency-account-{plan.emergency_account_id}/{role.role_name}"
        emergency.append(
            {
                "role": role,
                "trust": _doc(
                    "Trust policy",
                    role.trust_policy,
                    f"trust-{role.role_name}",
                    f"{base}.trust-policy.json",
                ),
                "permissions": _doc(
                    "Permissions policy",
                    role.permissions_policy,
                    f"perm-{role.role_name}",
                    f"{base}.permissions-policy.json",
                ),
            }
        )
    workload = []
    for wl_role in plan.workload_roles:
        key = f"{wl_role.account_id}-{wl_role.level}"
        workload.append(
            {
                "role": wl_role,
                "trust": _doc(
                    "Trust policy (the plan's choice)",
                    wl_role.trust_policy,
                    f"wl-{key}",
                    f"workload-account-{wl_role.account_id}/{wl_role.role_name}.trust-policy.json",
                ),
                "other": _doc("The other form", wl_role.alternative_trust_policy, f"alt-{key}"),
            }
        )
    templates = [
        _doc(name, body, f"cfn-{n}", name)
        for n, (name, body) in enumerate(cloudformation.templates(plan).items(), start=1)
    ]
    return {
        "emergency_roles": emergency,
        "workload_roles": workload,
        "templates": templates,
        "stackset_accounts": cloudformation.stackset_accounts(plan),
        "okta_text": _doc(
            "Sign On settings",
            plan_files.okta_settings_text(plan),
            "okta-text",
            "okta-settings.txt",
        ),
        "okta_json": _doc(
            "As JSON (settings.app keys of Okta's Apps API)",
            plan.okta.as_dict(),
            "okta-json",
            "okta.json",
        ),
    }


@require_GET
@page
@require(access.can_read_plan, READERS)
def plan_page(request: SignedInRequest) -> HttpResponse:
    plan, errors = _rendered()
    context: dict[str, Any] = {"plan": plan, "plan_errors": errors}
    if plan is not None:
        context |= _documents(plan)
    return render(request, "federation/plan.html", context)


@require_GET
@page
@require(access.can_read_plan, READERS)
def plan_file(request: SignedInRequest, name: str) -> HttpResponse:
    """One rendered file, as a download (names from plan_files, never the file system)."""
    plan, _ = _rendered()
    if plan is None:
        raise Http404("There is no access plan yet.")
    files = plan_files.all_files(plan)
    # The plan itself, in the format import_plan reads (the admin edits; this exports).
    files["plan.toml"] = export_plan()
    text = files.get(name)
    if text is None:
        raise Http404("No such file in the rendered plan.")
    kind = "application/json" if name.endswith(".json") else "text/plain"
    response = HttpResponse(text, content_type=f"{kind}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name.replace("/", "_")}"'
    return response


def _readiness_context(user: Any) -> dict[str, Any]:
    last = readiness.latest_finished()
    results = readiness.results_of(last) if last is not None else []
    areas: dict[str, list[readiness.CheckResult]] = {}
    for result in results:
        areas.setdefault(result.area or "General", []).append(result)
    return {
        "last": last,
        "areas": areas,
        "running": readiness.running(),
        "can_run": access.can_run_readiness(user),
        "exit_status": readiness.exit_status(last.status) if last is not None else None,
    }


@require_GET
@never_cache
@page
@require(access.can_read_plan, READERS)
def readiness_page(request: SignedInRequest) -> HttpResponse:
    template = "federation/readiness.html"
    if request.htmx:
        template += "#live"
    return render(request, template, _readiness_context(request.user))


@require_POST
@page
@require(access.can_run_readiness, ONLY_APPROVERS)
def readiness_run(request: SignedInRequest) -> HttpResponse:
    try:
        run = readiness.request_run(actor=request.user)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Readiness check #{run.pk} started: a worker is checking AWS and Okta; "
            "this page shows the results as they come.",
        )
    return redirect("readiness")
