"""Pages of the access-request journey. Views check who may look; services decide the rest."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from federation.models import Failover, FailoverStatus
from portal.accounts.stepup import step_up
from portal.audit import events_for
from portal.core import access
from portal.core.errors import DomainError, NotAllowed
from portal.core.types import SignedInRequest
from portal.core.web import page, refused, require
from requests_app import break_glass, console, eligibility, extensions, permissions, services
from requests_app.evidence import SignOutEvidence, sign_out_status
from requests_app.forms import AccessRequestForm, ActionForm, ExtensionForm
from requests_app.models import (
    ENDED_GRANT_STATUSES,
    AccessRequest,
    Extension,
    ExtensionStatus,
    Status,
)

LIST_PAGE_SIZE = 25

# action name in the URL -> the service call, given the request, the actor and the comment.
ACTIONS: dict[str, Callable[[AccessRequest, Any, str], AccessRequest]] = {
    "approve": lambda req, actor, text: services.approve(req, actor=actor, comment=text),
    "deny": lambda req, actor, text: services.deny(req, actor=actor, reason=text),
    "cancel": lambda req, actor, text: services.cancel(req, actor=actor, reason=text),
    "revoke": lambda req, actor, text: services.revoke(req, actor=actor, reason=text),
    "end": lambda req, actor, text: services.end_own_grant(req, actor=actor, reason=text),
    "signed-out": lambda req, actor, text: services.confirm_signed_out(req, actor),
}


@dataclass(frozen=True)
class Row:
    """One request in the approvers' queue, with the buttons this approver may use."""

    req: AccessRequest
    actions: frozenset[str]


def is_live(req: AccessRequest) -> bool:
    """Still changing: open, or ended but Okta has not yet confirmed the member is gone."""
    return req.is_open or (req.status in ENDED_GRANT_STATUSES and req.membership_removed_at is None)


def visible_request(user: Any, pk: int, *, for_page: bool = True) -> AccessRequest:
    """The request, or 404 when it does not exist or is not the user's to see. With
    ``for_page=False`` only what a poll's 204 is decided from comes along (the failover;
    the emergency account, whose session length the sign-out evidence needs)."""
    requests = AccessRequest.objects.visible_to(user)
    if for_page:
        requests = requests.with_related()
    else:
        requests = requests.select_related("failover", "role__emergency_account")
    req = requests.filter(pk=pk).first()
    if req is None:
        raise Http404("No such request.")
    return req


# --- Filing ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@page
@require(access.can_request, "Auditors have read-only access: they cannot file requests.")
def request_new(request: SignedInRequest) -> HttpResponse:
    offered = eligibility.requestable_roles(request.user)
    form = AccessRequestForm(request.POST or None, offered=offered)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        roles = list(data.pop("role"))
        try:
            filed = services.file_requests(requester=request.user, roles=roles, **data)
        except NotAllowed as exc:
            return refused(request, str(exc))
        except (ValidationError, DomainError) as exc:
            form.add_service_error(exc)
        else:
            if len(filed) == 1:
                messages.success(
                    request, f"Request #{filed[0].pk} filed. Approvers have been told."
                )
                return redirect("request-detail", pk=filed[0].pk)
            numbers = ", ".join(f"#{req.pk}" for req in filed)
            messages.success(
                request,
                f"Requests {numbers} filed, one per role; each is decided on its own. "
                "Approvers have been told.",
            )
            return redirect(reverse("request-list") + "?mine=1")
    failover = Failover.objects.open().first()
    return render(request, "requests_app/request_new.html", {"form": form, "failover": failover})


# --- Reading ----------------------------------------------------------------------------


@require_GET
@page
def request_list(request: SignedInRequest) -> HttpResponse:
    requests = AccessRequest.objects.visible_to(request.user).with_related()
    status = request.GET.get("status", "")
    if status in Status.values:
        requests = requests.filter(status=status)
    mine = request.GET.get("mine") == "1"
    if mine:
        requests = requests.filter(requester=request.user)
    page_obj = Paginator(requests, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page_obj": page_obj,
        "status": status if status in Status.values else "",
        "statuses": Status.choices,
        "mine": mine,
        "sees_all": access.can_see_all_requests(request.user),
    }
    return render(request, "requests_app/request_list.html", context)


def extension_context(
    user: Any, req: AccessRequest, form: ExtensionForm | None = None
) -> dict[str, Any]:
    """What the request page shows about extensions, and the buttons this user may use."""
    rows = [
        (ext, permissions.extension_actions(user, ext))
        for ext in req.extensions.select_related("requested_by", "decided_by").prefetch_related(
            "approvals"
        )
    ]
    has_pending = any(ext.status == ExtensionStatus.PENDING for ext, _ in rows)
    granted = extensions.granted_minutes(req)
    left = extensions.remaining_minutes(req, granted) if req.activated_at else 0
    can_ask = (
        permissions.can_ask_extension(user, req)
        and req.failover.status == FailoverStatus.ACTIVE
        and not has_pending
        and left > 0
    )
    return {
        "extension_rows": rows,
        "can_extend": can_ask,
        "extension_left": left,
        "extension_form": form or ExtensionForm(initial={"minutes": min(30, left) or None}),
        "granted_minutes": granted,
    }


def live_version(req: AccessRequest, last_seq: int, sign_out: SignOutEvidence | None) -> str:
    """Changes whenever anything happens to the request (an audit event), its failover
    starts the return to normal, or new sign-in evidence arrives: polls answer 204 until
    then."""
    seen = ""
    if sign_out is not None:
        moments = (sign_out.last_sign_in, sign_out.at)
        seen = "".join(f".{int(m.timestamp()) if m else 0}" for m in moments)
    return f"{req.status}.{req.failover.status}.{last_seq}{seen}"


def _sign_out(req: AccessRequest) -> SignOutEvidence | None:
    # Sign-in / sign-out evidence of a grant (new System Log events change the version too).
    return sign_out_status(req) if req.activated_at else None


def detail_context(
    user: Any, req: AccessRequest, sign_out: SignOutEvidence | None = None
) -> dict[str, Any]:
    """The request page's context; ``sign_out`` when the caller has just computed it."""
    events = list(events_for(req).order_by("seq"))
    sign_out = sign_out if sign_out is not None else _sign_out(req)
    mine = req.requester_id == user.pk
    review = getattr(req, "break_glass_review", None) if req.break_glass else None
    return {
        "req": req,
        "break_glass_state": break_glass.availability(req)
        if req.status == Status.PENDING
        else None,
        "can_break_glass": break_glass.can_break_glass(user, req),
        "review": review,
        "can_review": review is not None and break_glass.may_review(user, review),
        "events": events,
        "actions": permissions.request_actions(user, req),
        "live": is_live(req),
        "sign_out": sign_out,
        "can_confirm_signed_out": permissions.can_confirm_signed_out(user, req),
        "is_mine": mine,
        # Identity Center is back: the requester's page leads with "sign out now".
        "returning": req.failover.status == FailoverStatus.RETURNING,
        "switch_roles": console.switch_roles_for(req)
        if mine and req.status == Status.ACTIVE
        else [],
        **extension_context(user, req),
        "version": live_version(req, events[-1].seq if events else 0, sign_out),
    }


@require_GET
@page
def request_detail(request: SignedInRequest, pk: int) -> HttpResponse:
    context = detail_context(request.user, visible_request(request.user, pk))
    return render(request, "requests_app/request_detail.html", context)


@require_GET
@never_cache
@page
def request_status(request: SignedInRequest, pk: int) -> HttpResponse:
    """The live part of the detail page; 204 (nothing to swap) while nothing changed.
    Hundreds of requesters poll this every 3 s in a surge: the 204 is decided from the
    version alone (the newest event's seq, one index-only query), before the page."""
    req = visible_request(request.user, pk, for_page=False)
    last_seq = events_for(req).order_by("-seq").values_list("seq", flat=True).first() or 0
    sign_out = _sign_out(req)
    if request.GET.get("v") == live_version(req, last_seq, sign_out):
        return HttpResponse(status=204)
    context = detail_context(request.user, visible_request(request.user, pk), sign_out)
    return render(request, "requests_app/request_status.html", context)


# --- Acting -----------------------------------------------------------------------------


def _after_action(request: SignedInRequest, req: AccessRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("request-detail", args=[req.pk])


def _done_message(action: str, req: AccessRequest) -> str:
    if action == "approve" and req.status == Status.PENDING:
        missing = req.approvals_needed()
        return f"You approved request #{req.pk}; it needs {missing} more approval(s)."
    return {
        "approve": f"Request #{req.pk} approved; Okta access is being granted.",
        "deny": f"Request #{req.pk} denied.",
        "cancel": f"Request #{req.pk} cancelled.",
        "revoke": f"Request #{req.pk} revoked; the Okta membership is being removed.",
        "end": "Your access is ending: the Okta membership is being removed. "
        "Sign out of the AWS console now.",
        "signed-out": "Thank you: your sign-out is recorded.",
    }[action]


def _queue_row(
    request: SignedInRequest,
    req: AccessRequest,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    """The approvals-queue row of ``req`` as it is now, to replace the one that was pressed."""
    req = AccessRequest.objects.with_related().get(pk=req.pk)
    row = Row(req, permissions.request_actions(request.user, req))
    context = {"row": row, "notice": notice, "error": error}
    return render(request, "requests_app/approvals.html#row", context, status=status)


def _refusal(exc: DomainError | ValidationError) -> tuple[int, str]:
    """The status and message of a service's refusal; a missing reason (deny, revoke) is
    the service's ValidationError: 400."""
    if isinstance(exc, ValidationError):
        return 400, exc.messages[0]
    return (403 if isinstance(exc, NotAllowed) else 409), str(exc)


@require_POST
@page
@require(access.can_write, "Auditors have read-only access: they cannot change requests.")
@step_up(unless_action=frozenset({"cancel"}))
def request_action(request: SignedInRequest, pk: int, action: str) -> HttpResponse:
    req = visible_request(request.user, pk)
    form = ActionForm(request.POST)
    if not form.is_valid():
        return refused(request, "The comment is too long (2000 characters at most).", 400)
    text = form.cleaned_data["comment"].strip()
    try:
        req = ACTIONS[action](req, request.user, text)
    except (DomainError, ValidationError) as exc:
        status, error = _refusal(exc)
        if request.htmx:
            return _queue_row(request, req, error=error, status=status)
        if status == 403:
            return refused(request, error)
        messages.error(request, error)
        return redirect(_after_action(request, req))
    if request.htmx:
        return _queue_row(request, req, notice=_done_message(action, req))
    messages.success(request, _done_message(action, req))
    return redirect(_after_action(request, req))


# --- The approvers' queue -----------------------------------------------------------------


def _queue_context(user: Any) -> dict[str, Any]:
    base = AccessRequest.objects.with_related()
    # Only what this approver may decide (the plan's approvers lists).
    mine = eligibility.decidable_filter(user)
    pending = [
        Row(r, permissions.request_actions(user, r))
        for r in base.filter(mine, status=Status.PENDING).order_by("created_at", "pk")
    ]
    granting = [
        Row(r, permissions.request_actions(user, r))
        for r in base.filter(status=Status.APPROVED).order_by("decided_at", "pk")
    ]
    failed = [
        Row(r, frozenset())
        for r in base.filter(status=Status.FAILED)
        .exclude(failover__status=FailoverStatus.CLOSED)
        .order_by("-ended_at")
    ]
    more_time = list(
        Extension.objects.filter(
            eligibility.decidable_filter(user, "request__role__"),
            status=ExtensionStatus.PENDING,
            request__status=Status.ACTIVE,
        )
        .select_related("request__role__workload_account", "request__role__level", "requested_by")
        .order_by("created_at")
    )
    state: list[tuple[object, ...]] = [
        (r.req.pk, r.req.status, len(r.req.approvals.all())) for r in pending + granting
    ]
    state += [(r.req.pk, r.req.status) for r in failed]
    state += [("extension", ext.pk) for ext in more_time]
    return {
        "pending": pending,
        # What "Approve all RO" approves: the RO requests shown that this approver may approve.
        "approvable_ro": [
            r.req.pk for r in pending if "approve" in r.actions and r.req.role.level.name == "RO"
        ],
        "granting": granting,
        "failed": failed,
        "more_time": more_time,
        "version": hashlib.sha256(repr(state).encode()).hexdigest()[:16],
    }


@require_GET
@never_cache
@page
@require(access.is_approver, "Only approvers can see the approvals queue.")
def approvals(request: SignedInRequest) -> HttpResponse:
    context = _queue_context(request.user)
    if not request.htmx:
        return render(request, "requests_app/approvals.html", context)
    if request.GET.get("v") == context["version"]:
        return HttpResponse(status=204)
    return render(request, "requests_app/approvals.html#queue", context)
