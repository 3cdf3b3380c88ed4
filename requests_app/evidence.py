"""Sign-in and sign-out evidence, and ending sessions for real.

AWS does not record a console sign-out, so "has this person signed out?" is
answered from the best evidence there is, and every answer says which evidence
it rests on (``SignOutEvidence.how``):

* ``self-reported``: the person pressed "I have signed out" (or called the API);
* ``okta-session-ended``: Okta's System Log shows them signing out of Okta
  (``user.session.end``) -- their own act, though it does not close an AWS
  console tab by itself;
* ``sessions-revoked``: AWS's "revoke older sessions" deny was attached to the
  role after their last sign-in (:mod:`federation.aws.session_denies`); revoking
  their *Okta* sessions alone is shown as a note, not as a sign-out, because it
  does not end an AWS console session;
* ``session-expired``: the longest possible console session has run out: the
  last sign-in (Okta ``user.authentication.sso`` to the federation app, or a
  CloudTrail ``ConsoleLogin``) plus the plan's SAML ``SessionDuration``; with no
  sign-in seen, the end of the grant plus that duration (nobody can sign in
  after the Okta membership is gone).

Only evidence later than the last sign-in counts, and the earliest such
evidence is when they signed out. ``signed_out`` is False both for someone
still signed in and for someone never seen signing in: use ``signed_in``
(``last_sign_in`` set and no sign-out evidence) to list who is still in.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from federation.aws import session_denies
from federation.evidence_models import EvidenceKind, RoleSessionDeny, SignInEvidence
from federation.idp import IdentityProvider, IdpNotFound, get_identity_provider
from federation.models import Failover
from portal import audit
from requests_app.models import HOLDING_STATUSES, AccessRequest

log = logging.getLogger(__name__)

SELF_REPORTED = "self-reported"
OKTA_SESSION_ENDED = "okta-session-ended"
SESSION_EXPIRED = "session-expired"
SESSIONS_REVOKED = "sessions-revoked"

HOW_LABELS = {
    SELF_REPORTED: "they said so in the portal",
    OKTA_SESSION_ENDED: "they signed out of Okta",
    SESSION_EXPIRED: "the longest console session ran out",
    SESSIONS_REVOKED: "AWS sessions revoked (deny on the role)",
    "": "",
}
# A sign-in can be logged a little before the portal recorded the approval.
CLOCK_SKEW = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class SignOutEvidence:
    signed_out: bool
    how: str  # "self-reported" | "okta-session-ended" | "session-expired" | "sessions-revoked" | ""
    at: dt.datetime | None
    last_sign_in: dt.datetime | None
    console_session_ends_by: dt.datetime | None
    # What else is known, in words, for the page (e.g. "Okta sessions revoked 14:02").
    notes: tuple[str, ...] = ()

    @property
    def signed_in(self) -> bool:
        """Seen signing in, and nothing since says they left."""
        return self.last_sign_in is not None and not self.signed_out

    @property
    def how_label(self) -> str:
        return HOW_LABELS.get(self.how, self.how)


def session_duration(req: AccessRequest) -> dt.timedelta:
    """The plan's SAML SessionDuration: the longest console session after a sign-in."""
    return dt.timedelta(seconds=req.role.emergency_account.session_duration_seconds)


def _window(req: AccessRequest) -> tuple[dt.datetime, dt.datetime | None]:
    """When the person could sign in with this grant: Okta membership added .. removed.
    (Nobody signs in with a grant before Okta has added them: an earlier sign-in belongs
    to another grant and is not shown beside this one.)"""
    start = (req.activated_at or req.decided_at or req.created_at) - CLOCK_SKEW
    end = req.membership_removed_at or req.ended_at
    return start, (end + CLOCK_SKEW if end else None)


def _status(
    req: AccessRequest,
    evidence: Iterable[SignInEvidence],
    deny: RoleSessionDeny | None,
    now: dt.datetime,
) -> SignOutEvidence:
    start, end = _window(req)
    login = req.okta_login.lower()
    rows = [e for e in evidence if e.login == login]
    sign_ins = [
        e.at
        for e in rows
        # AWS's own record of the role being used (EventBridge / CloudTrail) is a sign-in too.
        if e.kind in (EvidenceKind.SIGN_IN, EvidenceKind.AWS_ROLE_USE)
        and e.at >= start
        and (end is None or e.at <= end)
        # CloudTrail names the role; Okta's sign-in carries all of the person's roles.
        and (e.role_id is None or e.role_id == req.role_id)
    ]
    last_sign_in = max(sign_ins, default=None)
    since = last_sign_in or start
    duration = session_duration(req)
    candidates: list[tuple[dt.datetime, str]] = []
    notes: list[str] = []
    for e in rows:
        if e.at < since:
            continue
        if e.kind == EvidenceKind.SELF_REPORTED:
            candidates.append((e.at, SELF_REPORTED))
        elif e.kind == EvidenceKind.OKTA_SESSION_END:
            candidates.append((e.at, OKTA_SESSION_ENDED))
        elif e.kind == EvidenceKind.SESSIONS_REVOKED and e.request_id == req.pk:
            okta = e.detail.get("okta", "")
            notes.append(f"Okta sessions: {okta} ({timezone.localtime(e.at):%H:%M})")
    if deny is not None and deny.attached_at and deny.issued_before > since:
        candidates.append((deny.attached_at, SESSIONS_REVOKED))
    elif deny is not None and deny.pending and deny.issued_before > since:
        notes.append("AWS session deny not attached yet (retrying)")
    ends_by = None
    if last_sign_in is not None:
        ends_by = last_sign_in + duration
    elif end is not None:
        # Nobody can sign in once the membership is gone: a bound without a sign-in seen.
        ends_by = end - CLOCK_SKEW + duration
        notes.append("no sign-in seen")
    if ends_by is not None and ends_by <= now:
        candidates.append((ends_by, SESSION_EXPIRED))
    if not candidates:
        return SignOutEvidence(False, "", None, last_sign_in, ends_by, tuple(notes))
    at, how = min(candidates)
    return SignOutEvidence(True, how, at, last_sign_in, ends_by, tuple(notes))


def _deny_for(role_id: int) -> RoleSessionDeny | None:
    return RoleSessionDeny.objects.filter(role_id=role_id).first()


def sign_out_status(req: AccessRequest, *, now: dt.datetime | None = None) -> SignOutEvidence:
    """The sign-out evidence for one grant (see the module docstring for the rules)."""
    evidence = SignInEvidence.objects.filter(
        failover_id=req.failover_id, login=req.okta_login.lower()
    )
    return _status(req, evidence, _deny_for(req.role_id), now or timezone.now())


def emergency_users(
    failover: Failover, *, now: dt.datetime | None = None
) -> list[tuple[AccessRequest, SignOutEvidence]]:
    """Every grant of the failover that was ever active, with its sign-out evidence
    (a handful of queries, whatever the number of users)."""
    now = now or timezone.now()
    grants = list(
        AccessRequest.objects.filter(failover=failover, activated_at__isnull=False)
        .select_related(
            "requester", "role__workload_account", "role__level", "role__emergency_account"
        )
        .order_by("activated_at", "pk")
    )
    evidence = list(SignInEvidence.objects.filter(failover=failover))
    denies = {
        d.role_id: d
        for d in RoleSessionDeny.objects.filter(role_id__in={g.role_id for g in grants})
    }
    return [(g, _status(g, evidence, denies.get(g.role_id), now)) for g in grants]


# --- Recording evidence -----------------------------------------------------------------


def record_self_reported(req: AccessRequest, *, at: dt.datetime) -> SignInEvidence:
    """The person's own "I have signed out" (called inside the service's transaction)."""
    return SignInEvidence.objects.create(
        failover_id=req.failover_id,
        login=req.okta_login.lower(),
        kind=EvidenceKind.SELF_REPORTED,
        at=at,
        source="portal",
        source_id=f"portal:self-reported:{req.pk}:{at.timestamp():.6f}",
        request=req,
    )


# --- Ending access really ends it ---------------------------------------------------------


def end_sessions(req: AccessRequest, *, idp: IdentityProvider | None = None) -> None:
    """End what removing the group member does not: the person's open sessions.

    Revokes the person's Okta sessions (unless another live grant of theirs still
    needs them) and, with ``AWS_EMERGENCY_IAM_WRITE``, attaches AWS's "revoke
    older sessions" deny to the grant's emergency role (unless they still hold
    that role through another grant). Idempotent: once done for a grant, calling
    it again does nothing. Okta failures raise (the caller's task retries); an
    AWS failure stays pending and the beat sweep retries it.
    """
    req = AccessRequest.objects.select_related("role__emergency_account").get(pk=req.pk)
    if req.activated_at is None:
        return  # never held access: nothing to end
    key = f"portal:sessions-revoked:{req.pk}"
    if SignInEvidence.objects.filter(source_id=key).exists():
        return
    now = timezone.now()
    others = AccessRequest.objects.filter(
        okta_login__iexact=req.okta_login, status__in=HOLDING_STATUSES
    ).exclude(pk=req.pk)
    if others.exists():
        okta = "kept (another live grant)"
    else:
        idp = idp or get_identity_provider()
        try:
            idp.revoke_user_sessions(req.okta_user_id or idp.find_user(req.okta_login).id)
            okta = "revoked"
        except IdpNotFound:
            okta = "no such Okta user"
    aws = ""
    if settings.AWS_EMERGENCY_IAM_WRITE:
        if others.filter(role_id=req.role_id).exists():
            aws = "kept (another live grant of this role)"
        else:
            deny = session_denies.request_deny(req.role, now)
            aws = "deny attached" if not deny.pending else "deny pending"
    try:
        with transaction.atomic():
            SignInEvidence.objects.create(
                failover_id=req.failover_id,
                login=req.okta_login.lower(),
                kind=EvidenceKind.SESSIONS_REVOKED,
                at=now,
                source="portal",
                source_id=key,
                request=req,
                role=req.role,
                detail={"okta": okta, "aws": aws},
            )
            audit.record(
                "request.sessions_ended",
                req,
                system="worker",
                payload={"okta_sessions": okta, "aws_session_deny": aws or "not configured"},
            )
    except IntegrityError:
        log.info("Sessions of request %s were ended concurrently", req.pk)
