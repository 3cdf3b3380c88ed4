"""Slack's Approve / Deny buttons: the interactivity endpoint ``/slack/interactivity``.

Only when ``SLACK_SIGNING_SECRET`` is set (404 otherwise). Every request must
carry Slack's signature — ``v0=`` HMAC-SHA256 of ``v0:<timestamp>:<body>`` with the
signing secret, timestamp within 5 minutes of now either way — and must not have
been seen before (timestamp + signature are kept in the shared "replay" cache for as
long as they could be valid); anything else, malformed headers included, is refused
with 401 before the body is read (docs/security.md "Slack").

Only workspaces listed in ``SLACK_TEAM_IDS`` may press buttons (403 otherwise). The
Slack user becomes a portal user only through a ``SlackIdentity`` an admin created
(Slack user id and workspace → portal user); an email in the payload links nobody.
The button then calls the same service as the portal's own button, so the same rules
apply (approvers only, never one's own request, N distinct approvers) and the audit
log names the portal user. Approve works only for the levels in
``SLACK_APPROVAL_LEVELS`` (default RO): a Slack session is no fresh second factor, so
anything more is approved in the portal, after its step-up. The outcome is posted back
to the interaction's ``response_url`` when that is on Slack's own hooks host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from portal import queue
from portal.core.errors import DomainError, NotAllowed
from portal.models import NotificationLog, SlackIdentity
from portal.notify import REASON_ACTION_ID, link
from requests_app import extensions, services
from requests_app.models import AccessRequest, Extension

log = logging.getLogger(__name__)


# Slack's requests are at most this far from now, either way; a signature seen once is
# refused for as long as its timestamp could still pass.
TIMESTAMP_WINDOW_SECONDS = 5 * 60
RESPONSE_URL_HOST = "hooks.slack.com"


def signature_ok(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    """Slack's v0 signature over a timestamp within the window; False for anything odd."""
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    if abs(time.time() - int(timestamp)) > TIMESTAMP_WINDOW_SECONDS:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def first_time_seen(timestamp: str, signature: str) -> bool:
    """Remember the request until it could no longer pass; False when it was seen."""
    ttl = int(timestamp) + TIMESTAMP_WINDOW_SECONDS - int(time.time()) + 1
    key = "slack:" + hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()
    return caches["replay"].add(key, 1, timeout=max(ttl, 1))


def safe_response_url(url: str) -> str:
    """Slack's own hooks host over HTTPS, or "" (nothing is posted back then)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme != "https" or parts.hostname != RESPONSE_URL_HOST:
        return ""
    if port not in (None, 443) or parts.username or parts.password:
        return ""
    return url


def portal_user_for(slack_user: dict[str, Any], team_id: str = "") -> Any | None:
    """The active portal user an admin linked this Slack user to, or None."""
    slack_id = str(slack_user.get("id", ""))
    if not slack_id:
        return None
    identity = SlackIdentity.objects.select_related("user").filter(slack_user_id=slack_id).first()
    if identity is None:
        return None
    if identity.team_id and identity.team_id != team_id:
        return None
    return identity.user if identity.user.is_active else None


def approvable_in_slack(req: AccessRequest) -> bool:
    """Whether settings.SLACK_APPROVAL_LEVELS lets Slack's button approve ``req``'s level."""
    levels = settings.SLACK_APPROVAL_LEVELS
    return "all" in levels or req.role.level.name in levels


def refuse_unless_approvable_in_slack(req: AccessRequest, what: str) -> None:
    if not approvable_in_slack(req):
        raise NotAllowed(
            f"{what} for {req.role.level.name} access is approved in the portal, after a fresh "
            f"sign-in: {link('request-detail', req.pk)}"
        )


def typed_reason(state: Any) -> str:
    """What the approver typed in the message's reason box (``state.values``), or ""."""
    values = state.get("values") if isinstance(state, dict) else None
    for block in values.values() if isinstance(values, dict) else ():
        field = block.get(REASON_ACTION_ID) if isinstance(block, dict) else None
        if isinstance(field, dict) and isinstance(field.get("value"), str):
            return str(field["value"]).strip()[:2000]
    return ""


def _apply(action_id: str, value: str, user: Any, reason: str = "") -> str:
    """Run the button's service call as ``user``; the answer to show in Slack. ``reason``
    is what was typed in the reason box: a denial needs one (the service says so)."""
    kind = action_id.partition("_")[2]
    verb = action_id.partition("_")[0]
    if kind == "request" and verb in {"approve", "deny"}:
        req = AccessRequest.objects.filter(pk=int(value)).first()
        if req is None:
            return f"Request #{value} does not exist."
        if verb == "approve":
            refuse_unless_approvable_in_slack(req, f"Request #{req.pk}")
            req = services.approve(req, actor=user, comment=reason or "Approved in Slack.")
            if req.status == "pending":
                return (
                    f"{user.get_username()} approved request #{req.pk}; it needs "
                    f"{req.approvals_needed()} more approval(s)."
                )
            return f"{user.get_username()} approved request #{req.pk}: access is being granted."
        services.deny(req, actor=user, reason=reason)
        return f"{user.get_username()} denied request #{req.pk}."
    if kind == "extension" and verb in {"approve", "deny"}:
        request_id, _, ext_id = value.partition(":")
        ext = Extension.objects.filter(pk=int(ext_id), request_id=int(request_id)).first()
        if ext is None:
            return f"Extension #{ext_id} of request #{request_id} does not exist."
        if verb == "approve":
            refuse_unless_approvable_in_slack(ext.request, f"More time on #{request_id}")
            extensions.approve_extension(ext, actor=user, comment=reason or "Approved in Slack.")
            return f"{user.get_username()} approved {ext.minutes} more minutes on #{request_id}."
        extensions.deny_extension(ext, actor=user, reason=reason or "Denied in Slack.")
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


def _parse(request: HttpRequest) -> dict[str, Any] | None:
    """The interaction payload, with the parts the portal reads of the right types."""
    try:
        payload = json.loads(request.POST.get("payload", ""))
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    actions, user, team = (
        payload.get("actions") or [],
        payload.get("user") or {},
        payload.get("team") or {},
    )
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        return None
    if not isinstance(user, dict) or not isinstance(team, dict):
        return None
    return {
        "type": payload.get("type"),
        "actions": actions,
        "user": user,
        "team_id": str(team.get("id", "") or user.get("team_id", "")),
        "response_url": safe_response_url(str(payload.get("response_url", ""))),
        "reason": typed_reason(payload.get("state")),
    }


@csrf_exempt  # Slack cannot send Django's CSRF token; its request signature stands in.
@require_POST
def interactivity(request: HttpRequest) -> HttpResponse:
    secret = settings.SLACK_SIGNING_SECRET
    if not secret:
        raise Http404("Slack interactivity is not configured.")
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not signature_ok(secret, request.body, timestamp, signature):
        log.warning(
            "Slack interactivity: bad or stale signature from %s", request.META.get("REMOTE_ADDR")
        )
        return JsonResponse({"error": "invalid signature"}, status=401)
    if not first_time_seen(timestamp, signature):
        log.warning(
            "Slack interactivity: replayed request from %s", request.META.get("REMOTE_ADDR")
        )
        return JsonResponse({"error": "replayed request"}, status=401)
    payload = _parse(request)
    if payload is None:
        return JsonResponse({"error": "the payload is not Slack's JSON"}, status=400)
    if payload["team_id"] not in settings.SLACK_TEAM_IDS:
        log.warning("Slack interactivity: workspace %r is not allowed", payload["team_id"][:32])
        return JsonResponse({"error": "this Slack workspace is not allowed"}, status=403)
    if payload["type"] != "block_actions" or not payload["actions"]:
        return HttpResponse(status=200)  # nothing for the portal to do
    response_url = payload["response_url"]
    user = portal_user_for(payload["user"], payload["team_id"])
    if user is None:
        return _answer(
            "Your Slack account is not linked to a portal user: decide in the portal, or ask an "
            "admin to link it (Slack identities).",
            response_url,
            ephemeral=True,
        )
    action = payload["actions"][0]
    try:
        text = _apply(
            str(action.get("action_id", "")), str(action.get("value", "")), user, payload["reason"]
        )
    except ValidationError as exc:
        hint = (
            " Type it in the reason box, then press Deny again."
            if "reason" in getattr(exc, "error_dict", {})
            else ""
        )
        return _answer(f"Refused: {exc.messages[0]}{hint}", response_url, ephemeral=True)
    except DomainError as exc:
        return _answer(f"Refused: {exc}", response_url, ephemeral=True)
    except (TypeError, ValueError):
        return _answer(
            "That button's value is not one the portal made.", response_url, ephemeral=True
        )
    return _answer(text, response_url, ephemeral=False)
