"""``/csp-report/``: browsers post Content-Security-Policy violations here; they are logged.

Anyone may post (a browser reports without the user's cookies), so the body is bounded,
parsed defensively and only a few named fields are logged, each cut short.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

log = logging.getLogger("portal.csp")

MAX_REPORT_BYTES = 16 * 1024
FIELDS = ("document-uri", "violated-directive", "effective-directive", "blocked-uri")


def _reports(body: bytes) -> list[dict[str, Any]]:
    data = json.loads(body)
    # application/csp-report: {"csp-report": {...}}; application/reports+json: [{"body": {...}}]
    if isinstance(data, dict) and isinstance(data.get("csp-report"), dict):
        return [data["csp-report"]]
    if isinstance(data, list):
        return [r["body"] for r in data if isinstance(r, dict) and isinstance(r.get("body"), dict)]
    return []


@csrf_exempt  # browsers send reports without a CSRF token; nothing is changed here.
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    if len(request.body) > MAX_REPORT_BYTES:
        return HttpResponse(status=413)
    try:
        reports = _reports(request.body)
    except (ValueError, RecursionError):
        return HttpResponse(status=400)
    for report in reports[:10]:
        fields = {
            name: str(report.get(name) or report.get(_camel(name)) or "")[:200] for name in FIELDS
        }
        log.warning("CSP violation: %s", json.dumps(fields, sort_keys=True))
    return HttpResponse(status=204)


def _camel(name: str) -> str:
    head, *rest = name.split("-")
    return head + "".join(part.title() for part in rest).replace("Uri", "URL")
