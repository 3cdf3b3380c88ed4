"""Template helpers for the auditor pages: the integrity badge and short hashes."""

from __future__ import annotations

from typing import Any

from django import template

from portal.audit import integrity

register = template.Library()


@register.inclusion_tag("portal/auditor/integrity_badge.html", takes_context=True)
def integrity_badge(context: template.Context) -> dict[str, Any]:
    """The audit chain's last verification (one query), with "verify now"."""
    return {"badge": integrity.badge(), "request": context.get("request")}


@register.filter
def short_hash(value: str | None) -> str:
    return f"{value[:10]}…" if value else ""


@register.filter
def get_item(row: dict[str, Any], key: str) -> Any:
    """``row[key]`` for the generic report sections (keys are data, not attribute names)."""
    return row.get(key) if isinstance(row, dict) else None
