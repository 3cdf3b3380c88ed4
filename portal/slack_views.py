"""Slack's Approve / Deny buttons: the interactivity endpoint ``/slack/interactivity``.

Only when ``SLACK_SIGNING_SECRET`` is set (404 otherwise). Every request must
carry Slack's signature — ``v0=`` HMAC-SHA256 of ``v0:<timestamp>:<body>`` with the
signing secret, timestamp at most 5 minutes old (slack_sdk's SignatureVerifier) —
or it is refused with 401 before anything is read.

The Slack user becomes a portal user through a stored ``SlackIdentity`` (Slack
user id → portal user), or, when Slack includes it, the email in the payload
(then remembered); anyone else is refused. The button then calls the same
service as the portal's own button, so the same rules apply (approvers only,
never one's own request, N distinct approvers) and the audit log names the
portal user. The outcome is posted back to the interaction's ``response_url``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from slack_sdk.signature import SignatureVerifier

from portal import queue
from portal.core.errors import DomainError
from portal.models import NotificationLog, SlackIdentity
from requests_app import extensions, services
from requests_app.models import AccessRequest, Extension

log = logging.getLogger(__name__)


def portal_user_for(slack_user: dict[str, Any], team_id: str = "") -> Any | None:
    """The active portal user a Slack user is, or None when unknown."""
    slack_id = str(slack_user.get("id", ""))
    if slack_id:
        identity = (
            SlackIdentity.objects.select_related("user").filter(slack_user_id=slack_id).first()
        )
        if identity is not None:
            if identity.team_id and team_id and identity.team_id != team_id:
                return None
            return identity.user if identity.user.is_active else None
    email = str(slack_user.get("email", "")).strip()
    if not email or not slack_id:
        return None
    users = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
    if len(users) != 1:
        return None
    SlackIdentity.objects.get_or_create(
        slack_user_id=slack_id, defaults={"user": users[0], "team_id": team_id}
    )
    return users[0]


def _apply(action_id: str, value: str, user: Any) -> str:
    """Run the button's service call as ``user``; the answer to show in Slack."""
    kind = action_id.partition("_")[2]
    verb = action_id.partition("_")[0]
    if kind == "request" and verb in {"approve", "deny"}:
        req = AccessRequest.objects.filter(pk=int(value)).first()
        if req is None:
            return f"Request #{value} does not exist."
        if verb == "approve":
            req = services.approve(req, actor=user, comment="Approved in Slack.")
            if req.status == "pending":
                return (
                    f"{user.get_username()} approved request #{req.pk}; it needs "
                    f"{req.approvals_needed()} more approval(s)."
                )
            return f"{user.get_username()} approved request #{req.pk}: access is being granted."
        services.deny(req, actor=user, reason="Denied in Slack.")
        return f"{user.get_username()} denied request #{req.pk}."
    if kind == "extension" and verb in {"approve", "deny"}:
        request_id, _, ext_id = value.partition(":")
        ext = Extension.objects.filter(pk=int(ext_id), request_id=int(request_id)).first()
        if ext is None:
            return f"Extension #{ext_id} of request #{request_id} does not exist."
        if verb == "approve":
            extensions.approve_extension(ext, actor=user, comment="Approved in Slack.")
            return f"{user.get_username()} approved {ext.minutes} more minutes on #{request_id}."
        extensions.deny_extension(ext, actor=user, reason="Denied in Slack.")
        return f"{user.get_username()} denied the extension of #{request_id}."
    return f"Unknown action {action_id!r}."


def _answer(text: str, response_url: str, *, ephemeral: bool) -> JsonResponse:
    message = {
        "text": text,
        "response_type": "ephemeral" if ephemeral else "in_channel",
        "replace_original": False,
    }
    if response_url:
        with transaction.atomic():
            row = NotificationLog.objects.create(
                channel=NotificationLog.Channel.SLACK,
                event="slack.response",
                subject=text[:255],
                recipients=["slack:response_url"],
            )
            queue.send_slack(message, row.pk, response_url)
    return JsonResponse(message)


@csrf_exempt  # Slack cannot send Django's CSRF token; its request signature stands in.
@require_POST
def interactivity(request: HttpRequest) -> HttpResponse:
    secret = settings.SLACK_SIGNING_SECRET
    if not secret:
        raise Http404("Slack interactivity is not configured.")
    body = request.body
    if not SignatureVerifier(secret).is_valid_request(body, dict(request.headers)):
        log.warning(
            "Slack interactivity: bad or stale signature from %s", request.META.get("REMOTE_ADDR")
        )
        return JsonResponse({"error": "invalid signature"}, status=401)
    try:
        payload = json.loads(request.POST.get("payload", ""))
        actions = payload.get("actions") or []
        response_url = str(payload.get("response_url", ""))
        slack_user = payload.get("user") or {}
        team_id = str((payload.get("team") or {}).get("id", "") or slack_user.get("team_id", ""))
    except (ValueError, AttributeError):
        return JsonResponse({"error": "the payload is not Slack's JSON"}, status=400)
    if payload.get("type") != "block_actions" or not actions:
        return HttpResponse(status=200)  # nothing for the portal to do
    user = portal_user_for(slack_user, team_id)
    if user is None:
        return _answer(
            "Your Slack account is not linked to a portal user: decide in the portal, or ask an "
            "admin to link it (Slack identities).",
            response_url,
            ephemeral=True,
        )
    action = actions[0]
    try:
        text = _apply(str(action.get("action_id", "")), str(action.get("value", "")), user)
    except (DomainError, ValidationError) as exc:
        message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
        return _answer(f"Refused: {message}", response_url, ephemeral=True)
    except (TypeError, ValueError):
        return _answer(
            "That button's value is not one the portal made.", response_url, ephemeral=True
        )
    return _answer(text, response_url, ephemeral=False)
