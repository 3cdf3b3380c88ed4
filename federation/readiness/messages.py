"""What the portal tells the admins when the prepared set-up is not ready."""

from __future__ import annotations

from typing import Any

from portal.notify import link, notify, staff_emails


def readiness_failed(run: Any) -> None:
    """The daily readiness check found the prepared set-up broken, or could not check it."""
    bad = [r for r in run.results if r.get("status") in ("fail", "unknown")]
    failing = sum(1 for r in bad if r["status"] == "fail")
    subject = (
        f"Emergency access is not ready: {failing} check{'s' if failing != 1 else ''} failing"
        if failing
        else "Emergency access readiness could not be checked"
    )
    lines = "\n".join(
        f"- [{r['status']}] {r['name']} {r.get('subject', '')}: {r['detail']}"
        + (f"\n  Fix: {r['fix']}" if r.get("fix") else "")
        for r in bad[:20]
    )
    more = f"\n… and {len(bad) - 20} more." if len(bad) > 20 else ""
    text = f"{run}:\n{lines}{more}"
    notify("readiness.failed", subject, text, link("readiness"), staff_emails())
