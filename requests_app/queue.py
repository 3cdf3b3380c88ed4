"""The background work the access-request services start: one function per task, sent by
name after the transaction commits. Tests patch these functions, nothing else."""

from __future__ import annotations

from portal.celery import send_on_commit

PROVISION_GRANT = "requests_app.provision_grant"
DEPROVISION_GRANT = "requests_app.deprovision_grant"


def provision_grant(request_id: int) -> None:
    """Add the requester to the role's Okta group, then activate the grant."""
    send_on_commit(PROVISION_GRANT, [request_id])


def deprovision_grant(request_id: int) -> None:
    """Remove the member from the Okta group (unless another live grant needs it)."""
    send_on_commit(DEPROVISION_GRANT, [request_id])


# Run by beat (portal/settings.py CELERY_BEAT_SCHEDULE), never queued by a service.
ESCALATE_BREAK_GLASS_REVIEWS = "requests_app.escalate_break_glass_reviews"
