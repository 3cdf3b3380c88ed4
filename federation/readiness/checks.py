"""Readiness: check the real AWS accounts and Okta org against the access plan.

The AWS guide's preparation is done once and must stay right for years; what
breaks it does so silently (a role edited by hand, a group assigned elsewhere,
an expiring certificate, a revoked API token). :func:`run_checks` reads the real
world and returns one :class:`CheckResult` per check -- ``pass``, ``fail``,
``warn`` or ``unknown`` (could not check) -- each with the fix.

* AWS (boto3, endpoint ``settings.AWS_ENDPOINT_URL``): every account is read
  through its read-only audit role (``arn:aws:iam::<id>:role/<AWS_AUDIT_ROLE_NAME>``,
  created by the CloudFormation templates). Policies are compared as policies
  (:func:`federation.plan.iam.policies_equivalent`), never as text.
* Okta, through the identity-provider port only.

Runs are stored as :class:`~federation.models.ReadinessRun` rows (the dashboard
and the Readiness page show the last one) by the service functions at the end.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from cryptography import x509
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from federation import pagerduty, queue
from federation.idp import (
    IdentityProvider,
    IdpError,
    IdpNotFound,
    IdpPermanentError,
    get_identity_provider,
)
from federation.models import Failover, Level, ReadinessRun, ReadinessStatus, WorkloadAccount
from federation.plan import PlanError, cloudformation, current_plan, iam
from federation.plan.cloudformation import EMERGENCY_TEMPLATE, WORKLOAD_TEMPLATE
from federation.readiness import messages
from portal import audit
from portal.core import access, aws
from portal.core.errors import Conflict, NotAllowed
from portal.core.types import User

log = logging.getLogger(__name__)

PASS, FAIL, WARN, UNKNOWN = "pass", "fail", "warn", "unknown"
STATUSES = (PASS, WARN, FAIL, UNKNOWN)
# A run that has not finished after this long was lost (a worker died): a new one may start.
STALE_RUN = dt.timedelta(minutes=30)
SESSION_NAME = "emergency-access-readiness"
AREA_EMERGENCY = "AWS emergency account"
AREA_WORKLOAD = "AWS workload account"
AREA_OKTA = "Okta"
AREA_PLAN = "Plan"
AREA_PAGERDUTY = "PagerDuty"


@dataclass(frozen=True)
class CheckResult:
    """One check: what was checked, its outcome, and what to do about it."""

    name: str
    status: str  # pass | fail | warn | unknown
    detail: str
    fix: str = ""
    area: str = ""
    subject: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def overall_status(results: list[CheckResult] | list[dict[str, Any]]) -> str:
    """fail if anything fails; else unknown if anything could not be checked; else warn/pass."""
    found = {r.status if isinstance(r, CheckResult) else r["status"] for r in results}
    for status in (FAIL, UNKNOWN, WARN):
        if status in found:
            return status
    return PASS


def exit_status(status: str) -> int:
    """``verify_readiness``'s exit status: 0 all pass (warnings too), 1 some fail, 2 could not."""
    return {FAIL: 1, UNKNOWN: 2}.get(status, 0)


def counts(results: list[CheckResult]) -> dict[str, int]:
    return {status: sum(1 for r in results if r.status == status) for status in STATUSES}


# --- Reading AWS --------------------------------------------------------------------------


class CouldNotCheck(Exception):
    """AWS or Okta gave no usable answer: the check's outcome is unknown."""


def _boto_client(service: aws.Service, **credentials: Any) -> Any:
    return aws.client(service, use="readiness", region=settings.AWS_READINESS_REGION, **credentials)


def audit_role_arn(account_id: str) -> str:
    return iam.role_arn(account_id, settings.AWS_AUDIT_ROLE_NAME)


def _aws_problem(what: str, exc: Exception) -> CouldNotCheck:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return CouldNotCheck(f"{what}: AWS answered {error.get('Code')}: {error.get('Message')}")
    return CouldNotCheck(f"{what}: {type(exc).__name__}: {exc}")


class AwsAccount:
    """IAM of one account, read through its audit role; ``None`` means "no such entity"."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self._iam: Any = None
        self._credentials: dict[str, str] = {}

    def connect(self) -> None:
        role = audit_role_arn(self.account_id)
        try:
            creds = _boto_client("sts").assume_role(
                RoleArn=role, RoleSessionName=SESSION_NAME, DurationSeconds=900
            )["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            raise _aws_problem(f"cannot assume the audit role {role}", exc) from exc
        self._credentials = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
        self._iam = _boto_client("iam", **self._credentials)

    def events(self, region: str) -> Any:
        """EventBridge of this account in ``region`` (the same audit-role session)."""
        return aws.client("events", use="readiness", region=region, **self._credentials)

    def call(self, what: str, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = getattr(self._iam, operation)(**kwargs)
            return answer
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return None
            raise _aws_problem(what, exc) from exc
        except BotoCoreError as exc:
            raise _aws_problem(what, exc) from exc

    def pages(self, what: str, operation: str, key: str, **kwargs: Any) -> list[Any] | None:
        try:
            paginator = self._iam.get_paginator(operation)
            return [item for page in paginator.paginate(**kwargs) for item in page[key]]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return None
            raise _aws_problem(what, exc) from exc
        except BotoCoreError as exc:
            raise _aws_problem(what, exc) from exc


# --- Shared state of one run --------------------------------------------------------------


@dataclass
class Run:
    plan: iam.RenderedPlan
    failover: Failover | None
    results: list[CheckResult] = field(default_factory=list)
    # What the AWS checks learnt, for the Okta checks: role ARN -> exists (None: unknown).
    role_exists: dict[str, bool | None] = field(default_factory=dict)
    role_max_session: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, status: str, detail: str, fix: str = "", **where: str) -> None:
        self.results.append(
            CheckResult(name, status, detail, fix if status != PASS else "", **where)
        )

    @contextmanager
    def unknown_on_error(self, name: str, fix: str, **where: str) -> Iterator[None]:
        """Turn a failure to read into an ``unknown`` result for ``name``."""
        try:
            yield
        except (CouldNotCheck, IdpError) as exc:
            self.add(name, UNKNOWN, f"could not check: {exc}", fix, **where)


def _deploy_emergency(plan: iam.RenderedPlan) -> str:
    return (
        f"Deploy {EMERGENCY_TEMPLATE} (Plan page, or `manage.py render_plan --format "
        f"cloudformation`) in the emergency account {plan.emergency_account_id}."
    )


def _deploy_workload(account_id: str) -> str:
    return (
        f"Deploy {WORKLOAD_TEMPLATE} (the StackSet template from the Plan page) to workload "
        f"account {account_id}."
    )


def _audit_role_fix(account_id: str) -> str:
    return (
        f"Create the read-only audit role {audit_role_arn(account_id)} trusting the portal's "
        "AWS identity: deploy the template with AuditPrincipalArn set."
    )


# --- AWS: the emergency account -----------------------------------------------------------

_CERT_RE = re.compile(
    r"<(?:\w+:)?X509Certificate>\s*([A-Za-z0-9+/=\s]+?)\s*</(?:\w+:)?X509Certificate>"
)
_VALID_UNTIL_RE = re.compile(r"\bvalidUntil\s*=\s*[\"']([^\"']+)[\"']")


def certificate_expiries(metadata: str) -> list[dt.datetime]:
    """``notAfter`` of every X.509 certificate in a SAML metadata document.

    A regex over the text rather than an XML parser: nothing here needs the tree,
    and no entity is ever expanded.
    """
    found = []
    for blob in _CERT_RE.findall(metadata or ""):
        try:
            der = base64.b64decode(re.sub(r"\s+", "", blob), validate=True)
            found.append(x509.load_der_x509_certificate(der).not_valid_after_utc)
        except (binascii.Error, ValueError):
            continue
    return found


def metadata_valid_until(metadata: str) -> dt.datetime | None:
    match = _VALID_UNTIL_RE.search(metadata or "")
    if not match:
        return None
    try:
        moment = dt.datetime.fromisoformat(match[1].replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def expiry_status(moment: dt.datetime, now: dt.datetime, warn_days: int) -> str:
    if moment <= now:
        return FAIL
    if moment - now <= dt.timedelta(days=warn_days):
        return WARN
    return PASS


def _check_saml_provider(run: Run, aws: AwsAccount) -> None:
    plan = run.plan
    where = {"area": AREA_EMERGENCY, "subject": plan.saml_provider_arn}
    with run.unknown_on_error("aws.saml_provider", _deploy_emergency(plan), **where):
        provider = aws.call(
            "read the SAML provider", "get_saml_provider", SAMLProviderArn=plan.saml_provider_arn
        )
        if provider is None:
            run.add(
                "aws.saml_provider",
                FAIL,
                f"The SAML provider {plan.saml_provider_arn} does not exist: nobody can sign in "
                "to the emergency account through Okta.",
                _deploy_emergency(plan),
                **where,
            )
            return
        run.add("aws.saml_provider", PASS, "The SAML provider exists.", **where)
        _check_saml_expiry(run, provider, where)


def _check_saml_expiry(run: Run, provider: dict[str, Any], where: dict[str, str]) -> None:
    now, warn_days = timezone.now(), settings.READINESS_WARN_DAYS
    fix = (
        "Download the current metadata of Okta's AWS Account Federation app and update the SAML "
        "provider (update-saml-provider, or redeploy the emergency template with it)."
    )
    metadata = provider.get("SAMLMetadataDocument") or ""
    valid_until = provider.get("ValidUntil") or metadata_valid_until(metadata)
    if valid_until is not None:
        if valid_until.tzinfo is None:
            valid_until = valid_until.replace(tzinfo=dt.UTC)
        status = expiry_status(valid_until, now, warn_days)
        verb = "expired" if status == FAIL else "is valid until"
        run.add(
            "aws.saml_metadata_valid_until",
            status,
            f"The SAML provider's metadata {verb} {valid_until:%Y-%m-%d}.",
            fix,
            **where,
        )
    expiries = certificate_expiries(metadata)
    if not expiries:
        run.add(
            "aws.saml_certificate",
            WARN,
            "No signing certificate could be read from the SAML provider's metadata.",
            fix,
            **where,
        )
        return
    soonest = min(expiries)
    status = expiry_status(soonest, now, warn_days)
    days = (soonest - now).days
    detail = (
        f"The IdP signing certificate expired on {soonest:%Y-%m-%d}: AWS rejects every SAML "
        "sign-in."
        if status == FAIL
        else f"The IdP signing certificate expires on {soonest:%Y-%m-%d} (in {days} days)."
    )
    run.add("aws.saml_certificate", status, detail, fix, **where)


def _inline_documents(aws: AwsAccount, role_name: str) -> list[tuple[str, Any]]:
    names = aws.pages(
        f"list the inline policies of {role_name}",
        "list_role_policies",
        "PolicyNames",
        RoleName=role_name,
    )
    documents = []
    for name in names or []:
        found = aws.call(
            f"read the policy {name} of {role_name}",
            "get_role_policy",
            RoleName=role_name,
            PolicyName=name,
        )
        if found is not None:
            documents.append((name, found["PolicyDocument"]))
    return documents


def _attached(aws: AwsAccount, role_name: str) -> list[str]:
    attached = aws.pages(
        f"list the managed policies of {role_name}",
        "list_attached_role_policies",
        "AttachedPolicies",
        RoleName=role_name,
    )
    return [policy["PolicyArn"] for policy in attached or []]


def _union(documents: list[Any]) -> dict[str, Any]:
    statements: list[Any] = []
    for document in documents:
        loaded = iam.load_policy(document)
        found = loaded.get("Statement", [])
        statements.extend(found if isinstance(found, list) else [found])
    return {"Version": iam.VERSION, "Statement": statements}


def _check_emergency_role(run: Run, aws: AwsAccount, role: iam.EmergencyRoleDocs) -> None:
    plan = run.plan
    where = {"area": AREA_EMERGENCY, "subject": role.role_arn}
    fix = _deploy_emergency(plan)
    run.role_exists[role.role_arn] = None
    with run.unknown_on_error("aws.emergency_role", fix, **where):
        found = aws.call(f"read the role {role.role_name}", "get_role", RoleName=role.role_name)
        if found is None:
            run.role_exists[role.role_arn] = False
            run.add(
                "aws.emergency_role",
                FAIL,
                f"The role {role.role_name} does not exist in the emergency account "
                f"{plan.emergency_account_id}: members of {role.okta_group} cannot sign in.",
                fix,
                **where,
            )
            return
        run.role_exists[role.role_arn] = True
        details = found["Role"]
        run.role_max_session[role.role_arn] = int(details.get("MaxSessionDuration") or 3600)
        run.add("aws.emergency_role", PASS, f"{role.role_name} exists.", **where)

        trust = details.get("AssumeRolePolicyDocument") or {}
        if iam.policies_equivalent(role.trust_policy, trust):
            run.add("aws.emergency_role_trust", PASS, "Trust policy as planned.", **where)
        elif iam.policies_equivalent(
            iam.legacy_emergency_role_trust_policy(plan.saml_provider_arn, plan.saml_audiences),
            trust,
        ):
            run.add(
                "aws.emergency_role_trust",
                WARN,
                "The trust policy is the AWS guide's older one-statement form: it puts "
                "sts:SetSourceIdentity under the SAML:aud condition, which IAM does not "
                "document for that action. Sign-in works; the current guide splits it out.",
                fix,
                **where,
            )
        else:
            run.add(
                "aws.emergency_role_trust",
                FAIL,
                "The trust policy differs from the plan: "
                + "; ".join(iam.policy_differences(role.trust_policy, trust)),
                fix,
                **where,
            )

        inline = _inline_documents(aws, role.role_name)
        attached = _attached(aws, role.role_name)
        problems = []
        permissions = _union([d for _, d in inline])
        if not inline:
            problems.append("it has no permissions policy: it cannot switch to the workload role")
        elif not iam.policies_equivalent(role.permissions_policy, permissions):
            problems += iam.policy_differences(role.permissions_policy, permissions)
        if attached:
            problems.append(f"managed policies attached that the plan does not have: {attached}")
        if problems:
            run.add(
                "aws.emergency_role_permissions",
                FAIL,
                "Permissions differ from the plan: " + "; ".join(problems),
                fix,
                **where,
            )
        else:
            run.add(
                "aws.emergency_role_permissions",
                PASS,
                f"May switch to {role.workload_role_arn}, nothing else.",
                **where,
            )


def check_emergency_account(run: Run) -> None:
    plan = run.plan
    aws = AwsAccount(plan.emergency_account_id)
    where = {"area": AREA_EMERGENCY, "subject": audit_role_arn(plan.emergency_account_id)}
    try:
        aws.connect()
    except CouldNotCheck as exc:
        run.add(
            "aws.access",
            UNKNOWN,
            f"could not check the emergency account: {exc}",
            _audit_role_fix(plan.emergency_account_id),
            **where,
        )
        for role in plan.emergency_roles:
            run.role_exists[role.role_arn] = None
        return
    _check_saml_provider(run, aws)
    for role in plan.emergency_roles:
        _check_emergency_role(run, aws, role)
    if alarms_configured():
        for region in cloudformation.sign_in_regions(plan):
            template = (
                EMERGENCY_TEMPLATE
                if region == cloudformation.GLOBAL_EVENTS_REGION
                else cloudformation.REGIONAL_ALARMS_TEMPLATE
            )
            for rule in cloudformation.EMERGENCY_RULES:
                _check_event_rule(run, aws, region, rule, template, AREA_EMERGENCY)


# --- AWS: the EventBridge rules of the AWS-side alarms ---------------------------------------


def alarms_configured() -> bool:
    """The portal takes AWS events (a connection secret is set): the rules must exist."""
    return bool(settings.AWS_EVENTS_SECRET or settings.AWS_EVENTS_SECRET_SHA256)


def _check_event_rule(
    run: Run, aws: AwsAccount, region: str, name: str, template: str, area: str
) -> None:
    """The rule exists, is enabled and targets an API destination (the portal)."""
    subject = f"arn:aws:events:{region}:{aws.account_id}:rule/{name}"
    fix = (
        f"Deploy {template} with AwsEventsSecret (the portal's AWS_EVENTS_SECRET) in "
        f"{region} of account {aws.account_id}; see docs/aws-alarms.md."
    )
    where = {"area": area, "subject": subject}
    with run.unknown_on_error("aws.event_rule", fix, **where):
        client = aws.events(region)
        try:
            names = {
                rule["Name"]
                for rule in client.list_rules(NamePrefix=name).get("Rules", [])
                if "Name" in rule
            }
            if name not in names:
                run.add(
                    "aws.event_rule",
                    FAIL,
                    f"The EventBridge rule {name} does not exist in {region}: uses of the "
                    "emergency roles there raise no alarm in the portal.",
                    fix,
                    **where,
                )
                return
            rule = client.describe_rule(Name=name)
            targets = client.list_targets_by_rule(Rule=name).get("Targets", [])
        except (ClientError, BotoCoreError) as exc:
            raise _aws_problem(f"cannot read the EventBridge rule {name} in {region}", exc) from exc
        if rule.get("State") != "ENABLED":
            run.add(
                "aws.event_rule",
                FAIL,
                f"The EventBridge rule {name} in {region} is {rule.get('State')}.",
                f"Enable it (aws events enable-rule --name {name} --region {region}).",
                **where,
            )
            return
        if not any(":api-destination/" in str(t.get("Arn", "")) for t in targets):
            run.add(
                "aws.event_rule",
                FAIL,
                f"The EventBridge rule {name} in {region} does not target the portal's API "
                "destination.",
                fix,
                **where,
            )
            return
        run.add("aws.event_rule", PASS, f"{name} in {region} forwards to the portal.", **where)


# --- AWS: the workload accounts -----------------------------------------------------------


def _check_workload_role(run: Run, aws: AwsAccount, role: iam.WorkloadRoleDocs) -> None:
    where = {"area": AREA_WORKLOAD, "subject": role.role_arn}
    fix = _deploy_workload(role.account_id)
    with run.unknown_on_error("aws.workload_role", fix, **where):
        found = aws.call(f"read the role {role.role_name}", "get_role", RoleName=role.role_name)
        if found is None:
            run.add(
                "aws.workload_role",
                FAIL,
                f"The role {role.role_name} does not exist in {role.account_name} "
                f"({role.account_id}): {role.level} access there is impossible.",
                fix,
                **where,
            )
            return
        run.add("aws.workload_role", PASS, f"{role.role_name} exists.", **where)

        trust = found["Role"].get("AssumeRolePolicyDocument") or {}
        stale = iam.unresolved_principals(trust)
        if iam.policies_equivalent(role.trust_policy, trust):
            run.add(
                "aws.workload_role_trust", PASS, f"Trusts {role.trusted_principal} only.", **where
            )
        elif stale:
            run.add(
                "aws.workload_role_trust",
                FAIL,
                f"The trust policy names {', '.join(stale)}: the emergency role it trusted was "
                "deleted (and maybe re-created); AWS keeps the old role's unique id, so the "
                "switch from the emergency account fails.",
                f"Redeploy {WORKLOAD_TEMPLATE} to {role.account_id} (re-sets the trust to "
                f"{role.trusted_principal}).",
                **where,
            )
        else:
            run.add(
                "aws.workload_role_trust",
                FAIL,
                "The trust policy differs from the plan: "
                + "; ".join(iam.policy_differences(role.trust_policy, trust)),
                fix,
                **where,
            )

        attached = _attached(aws, role.role_name)
        inline = _inline_documents(aws, role.role_name)
        problems = []
        if role.managed_policy_arn not in attached:
            problems.append(f"{role.managed_policy_arn} is not attached")
        extra = [arn for arn in attached if arn != role.managed_policy_arn]
        if extra:
            problems.append(f"managed policies attached that the plan does not have: {extra}")
        if inline:
            problems.append(f"inline policies the plan does not have: {[n for n, _ in inline]}")
        if problems:
            run.add(
                "aws.workload_role_policy",
                FAIL,
                "Permissions differ from the plan: " + "; ".join(problems),
                fix,
                **where,
            )
        else:
            run.add(
                "aws.workload_role_policy",
                PASS,
                f"{role.managed_policy_arn} attached, nothing else.",
                **where,
            )


def check_workload_accounts(run: Run) -> None:
    accounts = dict.fromkeys(role.account_id for role in run.plan.workload_roles)
    for account_id in accounts:
        aws = AwsAccount(account_id)
        try:
            aws.connect()
        except CouldNotCheck as exc:
            run.add(
                "aws.access",
                UNKNOWN,
                f"could not check workload account {account_id}: {exc}",
                _audit_role_fix(account_id),
                area=AREA_WORKLOAD,
                subject=audit_role_arn(account_id),
            )
            continue
        for role in run.plan.workload_roles_of(account_id):
            _check_workload_role(run, aws, role)
        if alarms_configured():
            for rule in cloudformation.WORKLOAD_RULES:
                _check_event_rule(
                    run,
                    aws,
                    cloudformation.GLOBAL_EVENTS_REGION,
                    rule,
                    WORKLOAD_TEMPLATE,
                    AREA_WORKLOAD,
                )


# --- Okta ---------------------------------------------------------------------------------


def _check_okta_app(run: Run, idp: IdentityProvider, app_id: str) -> bool:
    """The credentials and the app itself; False when nothing more can be read."""
    where = {"area": AREA_OKTA, "subject": f"app {app_id}"}
    try:
        app = idp.get_app(app_id)
    except IdpNotFound:
        run.add("okta.credentials", PASS, "Okta accepts the portal's credentials.", **where)
        run.add(
            "okta.app",
            FAIL,
            f"The federation app {app_id} does not exist in Okta.",
            "Add Okta's AWS Account Federation app (SAML 2.0) and set OKTA_AWS_APP_ID to its id.",
            **where,
        )
        return False
    except IdpPermanentError as exc:
        if exc.status in (401, 403):
            run.add(
                "okta.credentials",
                FAIL,
                f"Okta refused the portal's credentials ({exc}). Nothing in Okta can be changed "
                "by the portal -- no grants, no closing a failover.",
                "Issue a new API token (OKTA_API_TOKEN) or check the OAuth service app "
                "(OKTA_CLIENT_ID, its key and the granted scopes: "
                + ", ".join(settings.OKTA_SCOPES)
                + ").",
                **where,
            )
            return False
        raise
    run.add("okta.credentials", PASS, "Okta accepts the portal's credentials.", **where)
    problems = []
    if app.name != iam.OKTA_APP_NAME:
        problems.append(f"it is a {app.name!r} app, not Okta's {iam.OKTA_APP_NAME!r}")
    if app.sign_on_mode != iam.OKTA_SIGN_ON_MODE:
        problems.append(f"it signs on with {app.sign_on_mode}, not {iam.OKTA_SIGN_ON_MODE}")
    if problems:
        run.add(
            "okta.app",
            FAIL,
            f"The app {app.label!r} is not the AWS Account Federation app: " + "; ".join(problems),
            "Point OKTA_AWS_APP_ID at the AWS Account Federation (SAML 2.0) app.",
            **where,
        )
    else:
        run.add(
            "okta.app", PASS, f"{app.label!r} is a SAML 2.0 AWS Account Federation app.", **where
        )

    failover = run.failover
    if failover is None:
        if app.status == "INACTIVE":
            run.add("okta.app_status", PASS, "Deactivated, as it must be in normal times.", **where)
        else:
            run.add(
                "okta.app_status",
                FAIL,
                f"The federation app is {app.status} while no failover is open: anyone in an "
                "emergency group can sign in to AWS without the portal.",
                "Deactivate the app in Okta (or open a failover if Identity Center is down).",
                **where,
            )
    elif failover.is_open and app.status != "ACTIVE":
        run.add(
            "okta.app_status",
            WARN,
            f"{failover} is open but the app is {app.status}: emergency sign-in does not work.",
            "The failover's worker activates the app; see the Failover page for its last error.",
            **where,
        )
    else:
        run.add("okta.app_status", PASS, f"{app.status} during {failover}.", **where)
    return True


def _check_okta_settings(run: Run, idp: IdentityProvider, app_id: str) -> Any:
    plan, okta = run.plan, run.plan.okta
    where = {"area": AREA_OKTA, "subject": f"app {app_id}"}
    fix = "Edit the app's Sign On settings in Okta to match the Plan page."
    found = idp.get_app_settings(app_id)
    if found.use_group_mapping is False:
        run.add(
            "okta.group_mapping",
            FAIL,
            "Use Group Mapping is off: the Group Filter and Role Value Pattern are ignored.",
            fix,
            **where,
        )
    if found.app_filter and found.app_filter != okta.app_filter:
        run.add(
            "okta.app_filter",
            WARN,
            f"App Filter is {found.app_filter!r}: groups from those sources can map to AWS "
            f"roles too (the plan says {okta.app_filter!r}: Okta groups only).",
            fix,
            **where,
        )
    planned = plan.session_duration_seconds
    if found.session_duration != planned:
        run.add(
            "okta.session_duration",
            FAIL,
            f"SessionDuration is {found.session_duration}, the plan says {planned} seconds.",
            fix,
            **where,
        )
    else:
        too_short = {
            arn: seconds for arn, seconds in run.role_max_session.items() if seconds < planned
        }
        if too_short:
            run.add(
                "okta.session_duration",
                FAIL,
                f"SessionDuration {planned} s exceeds the MaxSessionDuration of "
                f"{sorted(too_short)}: AWS refuses those sign-ins.",
                _deploy_emergency(plan),
                **where,
            )
        else:
            run.add("okta.session_duration", PASS, f"SessionDuration is {planned} s.", **where)
    if found.identity_provider_arn and found.identity_provider_arn != plan.saml_provider_arn:
        run.add(
            "okta.identity_provider_arn",
            WARN,
            f"Identity Provider ARN is {found.identity_provider_arn}, not "
            f"{plan.saml_provider_arn}.",
            fix,
            **where,
        )
    return found


def _check_okta_group(
    run: Run,
    idp: IdentityProvider,
    role: iam.EmergencyRoleDocs,
    app_groups: set[str],
    app_settings: Any,
) -> None:
    where = {"area": AREA_OKTA, "subject": role.okta_group}
    fix_create = "Run `manage.py verify_readiness --fix` (creates the group and assigns it)."
    with run.unknown_on_error("okta.group", fix_create, **where):
        try:
            group = idp.find_group(role.okta_group)
        except IdpNotFound:
            run.add(
                "okta.group",
                FAIL,
                f"The group {role.okta_group} does not exist: {role.role_name} cannot be granted.",
                fix_create,
                **where,
            )
            return
        if group.type != "OKTA_GROUP":
            run.add(
                "okta.group",
                FAIL,
                f"{role.okta_group} is an {group.type} group: its members come from elsewhere "
                "and the portal cannot add or remove them.",
                "Delete it where it comes from and let the portal create an Okta group.",
                **where,
            )
        else:
            run.add("okta.group", PASS, "Exists, an Okta group.", **where)

        if group.id in app_groups:
            run.add("okta.group_assigned", PASS, "Assigned to the federation app.", **where)
        else:
            run.add(
                "okta.group_assigned",
                FAIL,
                f"{role.okta_group} is not assigned to the federation app: its members would "
                "not see AWS in Okta.",
                "Run `manage.py verify_readiness --fix` (assigns it).",
                **where,
            )

        _check_group_members(run, idp, role, group.id, where)

    _check_mapping(run, role, app_settings, where)


def _check_group_members(
    run: Run,
    idp: IdentityProvider,
    role: iam.EmergencyRoleDocs,
    group_id: str,
    where: dict[str, Any],
) -> None:
    with run.unknown_on_error("okta.group_members", "", **where):
        members = idp.list_group_members(group_id)
        logins = ", ".join(sorted(m.login for m in members)[:10])
        if not members:
            run.add("okta.group_members", PASS, "No members.", **where)
        elif run.failover is None:
            run.add(
                "okta.group_members",
                FAIL,
                f"{role.okta_group} has {len(members)} member(s) while no failover is open "
                f"({logins}): they keep emergency access the moment the app is activated.",
                "The portal's reconciler removes members nobody holds a grant for every "
                "few minutes (audited as okta.unexpected_member_removed); if they stay, it "
                "is not running: remove them in Okta and check the Celery worker and beat.",
                **where,
            )
        else:
            run.add(
                "okta.group_members",
                PASS,
                f"{len(members)} member(s) during {run.failover} ({logins}).",
                **where,
            )


def _check_mapping(
    run: Run, role: iam.EmergencyRoleDocs, app_settings: Any, where: dict[str, Any]
) -> None:
    if app_settings is None:
        return
    fix = "Set the app's Group Filter and Role Value Pattern as on the Plan page."
    mapping = iam.map_group(
        role.okta_group, app_settings.group_filter, app_settings.role_value_pattern
    )
    problems = []
    if mapping.problem:
        problems.append(mapping.problem)
    else:
        if mapping.role_arn != role.role_arn:
            problems.append(f"maps to {mapping.role_arn}, not {role.role_arn}")
        if mapping.saml_provider_arn != run.plan.saml_provider_arn:
            problems.append(
                f"names the provider {mapping.saml_provider_arn}, not {run.plan.saml_provider_arn}"
            )
    if problems:
        run.add("okta.group_role_mapping", FAIL, "; ".join(problems), fix, **where)
        return
    exists = run.role_exists.get(role.role_arn)
    if exists is False:
        run.add(
            "okta.group_role_mapping",
            FAIL,
            f"Maps to {role.role_arn}, which does not exist in AWS.",
            _deploy_emergency(run.plan),
            **where,
        )
    else:
        note = "" if exists else " (its existence in AWS could not be checked)"
        run.add("okta.group_role_mapping", PASS, f"Maps to {role.role_arn}{note}.", **where)


def _check_rate_limits(run: Run, idp: IdentityProvider, app_id: str) -> None:
    warn_below = settings.READINESS_RATE_LIMIT_WARN_PERCENT
    with run.unknown_on_error("okta.rate_limit", "", area=AREA_OKTA, subject="rate limits"):
        for bucket in idp.rate_limits(app_id):
            where = {"area": AREA_OKTA, "subject": f"rate limit: {bucket.bucket}"}
            share = 100 * bucket.remaining / bucket.limit if bucket.limit else 0
            detail = f"{bucket.remaining} of {bucket.limit} requests left this minute."
            if share < warn_below:
                run.add(
                    "okta.rate_limit",
                    WARN,
                    f"{detail} Something else is using this org's {bucket.bucket} budget: "
                    "granting access during a failover may be slowed down.",
                    "Find the other client in Okta's System Log / rate limit dashboard, or ask "
                    "Okta for a higher limit.",
                    **where,
                )
            else:
                run.add("okta.rate_limit", PASS, detail, **where)


def check_okta(run: Run) -> None:
    idp = get_identity_provider()
    app_id = settings.OKTA_AWS_APP_ID
    where = {"area": AREA_OKTA, "subject": f"app {app_id}"}
    try:
        reachable = _check_okta_app(run, idp, app_id)
    except IdpError as exc:
        run.add(
            "okta.credentials",
            UNKNOWN,
            f"could not reach Okta: {exc}",
            "Check OKTA_ORG_URL and the network path to Okta.",
            **where,
        )
        return
    if not reachable:
        return
    app_settings = None
    with run.unknown_on_error("okta.app_settings", "", **where):
        app_settings = _check_okta_settings(run, idp, app_id)
    app_groups: set[str] = set()
    with run.unknown_on_error("okta.group_assigned", "", **where):
        app_groups = set(idp.list_app_group_ids(app_id))
    for role in run.plan.emergency_roles:
        _check_okta_group(run, idp, role, app_groups, app_settings)
    _check_rate_limits(run, idp, app_id)


# --- Running the checks -------------------------------------------------------------------


def check_eligibility(run: Run) -> None:
    """The plan's eligibility (requesters / approvers): without it anyone may ask for
    every role and every approver decides everything, the open behaviour."""
    accounts = sum(1 for a in WorkloadAccount.objects.all() if a.requesters or a.approvers)
    levels = sum(1 for lv in Level.objects.all() if lv.requesters or lv.approvers)
    fix = (
        "List requesters and approvers (portal groups) per workload account or level in the "
        "access plan, and map Okta groups to them in [okta_groups] (docs/plan.md)."
    )
    if not accounts and not levels:
        run.add(
            "eligibility",
            WARN,
            "the plan names no requesters or approvers: every user may request every role "
            "and every approver decides every request",
            fix,
            area=AREA_PLAN,
        )
        return
    run.add(
        "eligibility",
        PASS,
        f"requesters / approvers listed on {accounts} workload account(s) and {levels} level(s)",
        area=AREA_PLAN,
    )


def check_pagerduty(run: Run) -> None:
    """PagerDuty, when the portal is set up to use it (a routing key, an API token or an
    on-call rule in the plan): the token works, each rule's schedule has someone on call
    now, the approvers can be paged. Nothing configured: nothing to say."""
    schedules = sorted({lv.oncall_schedule for lv in Level.objects.all() if lv.oncall_schedule})
    if not (schedules or pagerduty.rest_configured() or pagerduty.events_configured()):
        return
    fix = "Set PAGERDUTY_API_TOKEN (a read-only REST API key) and PAGERDUTY_ROUTING_KEY."
    if not pagerduty.rest_configured():
        run.add(
            "pagerduty.credentials",
            FAIL if schedules else WARN,
            "no PAGERDUTY_API_TOKEN: the on-call rule cannot look anyone up (every lookup "
            "falls back to human approval)",
            fix,
            area=AREA_PAGERDUTY,
        )
    else:
        try:
            pagerduty.check_credentials()
        except pagerduty.PagerDutyError as exc:
            run.add("pagerduty.credentials", UNKNOWN, f"could not check: {exc}", fix,
                    area=AREA_PAGERDUTY)  # fmt: skip
            schedules = []
        else:
            run.add("pagerduty.credentials", PASS, "the REST API answers the token",
                    area=AREA_PAGERDUTY)  # fmt: skip
        for schedule in schedules:
            try:
                on_call = pagerduty.oncalls(schedule_ids=[schedule])
            except pagerduty.PagerDutyError as exc:
                run.add("pagerduty.schedule", UNKNOWN, f"could not check: {exc}",
                        area=AREA_PAGERDUTY, subject=schedule)  # fmt: skip
                continue
            if on_call:
                run.add("pagerduty.schedule", PASS, f"{len(on_call)} on call now",
                        area=AREA_PAGERDUTY, subject=schedule)  # fmt: skip
            else:
                run.add(
                    "pagerduty.schedule",
                    WARN,
                    "nobody is on call in it now (or it does not exist): the on-call rule "
                    "approves nobody",
                    "Check the schedule id in the plan's oncall_schedule.",
                    area=AREA_PAGERDUTY,
                    subject=schedule,
                )
    if pagerduty.events_configured():
        run.add(
            "pagerduty.paging",
            PASS,
            f"approvers are paged after {settings.PAGERDUTY_PAGE_AFTER_MINUTES} min of waiting",
            area=AREA_PAGERDUTY,
        )
    else:
        run.add(
            "pagerduty.paging",
            WARN,
            "no PAGERDUTY_ROUTING_KEY: nobody is paged when requests wait",
            "Set PAGERDUTY_ROUTING_KEY to the Events API v2 integration key of the "
            "approvers' service.",
            area=AREA_PAGERDUTY,
        )


def run_checks(
    *, aws: bool = True, okta: bool = True, plan: iam.RenderedPlan | None = None
) -> list[CheckResult]:
    """Check everything (or one side) against the plan; never raises for the outside world."""
    if plan is None:
        try:
            plan = iam.render(current_plan())
        except PlanError as exc:
            return [
                CheckResult(
                    "plan",
                    UNKNOWN,
                    "could not check: " + "; ".join(exc.errors),
                    "Import the access plan (manage.py import_plan FILE).",
                    AREA_PLAN,
                )
            ]
    failover = Failover.objects.current()
    if failover is not None and failover.status == "proposed":
        # A proposed failover waits for its confirmation: nothing may be switched on yet.
        failover = None
    run = Run(plan=plan, failover=failover)
    steps: list[Callable[[Run], None]] = []
    if aws and okta:
        # The plan's own completeness: part of a full run, not of one side's.
        steps += [check_eligibility, check_pagerduty]
    if aws:
        steps += [check_emergency_account, check_workload_accounts]
    if okta:
        steps.append(check_okta)
    for step in steps:
        try:
            step(run)
        except Exception as exc:
            # A bug or an answer nobody foresaw must not lose the other checks.
            log.exception("readiness step %s failed", step.__name__)
            run.add(step.__name__, UNKNOWN, f"could not check: {type(exc).__name__}: {exc}")
    return run.results


def fix_okta_groups(
    results: list[CheckResult],
    *,
    actor: User | None = None,
    system: str = "verify_readiness",
) -> list[str]:
    """Create the missing emergency groups and assign unassigned ones to the app (audited).

    Only what readiness found missing; never members, never the app's state, never AWS.
    """
    plan = iam.render(current_plan())
    roles = {role.okta_group: role for role in plan.emergency_roles}
    missing = {r.subject for r in results if r.name == "okta.group" and r.status == FAIL}
    unassigned = {
        r.subject for r in results if r.name == "okta.group_assigned" and r.status == FAIL
    }
    idp = get_identity_provider()
    app_id = settings.OKTA_AWS_APP_ID
    done = []
    for name in [n for n in roles if n in missing | unassigned]:
        group = None
        if name in missing:
            try:
                existing = idp.find_group(name)
            except IdpNotFound:
                existing = None
            if existing is not None and existing.type != "OKTA_GROUP":
                continue  # not ours to replace: the result says what to do
            group = existing or idp.ensure_group(name, "Emergency access (portal managed)")
            if existing is None:
                _record_fix("readiness.okta_group_created", name, group.id, actor, system)
                done.append(f"created the Okta group {name}")
        group = group or idp.find_group(name)
        idp.assign_group_to_app(app_id, group.id)
        _record_fix("readiness.okta_group_assigned", name, group.id, actor, system)
        done.append(f"assigned {name} to the federation app {app_id}")
    return done


def _record_fix(action: str, name: str, group_id: str, actor: User | None, system: str) -> None:
    with transaction.atomic():
        audit.record(
            action,
            ("okta_group", name),
            actor=actor,
            system=system,
            payload={"group_id": group_id, "app_id": settings.OKTA_AWS_APP_ID},
        )


# --- Stored runs (the services behind the page, the API, the task and the command) --------


def latest_finished() -> ReadinessRun | None:
    return (
        ReadinessRun.objects.exclude(status=ReadinessStatus.RUNNING)
        .select_related("requested_by")
        .order_by("-finished_at", "-pk")
        .first()
    )


def running() -> ReadinessRun | None:
    """A run still in progress (one older than STALE_RUN was lost and does not count)."""
    return (
        ReadinessRun.objects.filter(
            status=ReadinessStatus.RUNNING, started_at__gte=timezone.now() - STALE_RUN
        )
        .order_by("-started_at")
        .first()
    )


def start_run(trigger: str, *, actor: User | None = None) -> ReadinessRun:
    return ReadinessRun.objects.create(trigger=trigger, requested_by=actor)


def request_run(*, actor: User) -> ReadinessRun:
    """ "Run now" from the page or the API: an approver queues a check (one at a time)."""
    if not access.can_run_readiness(actor):
        raise NotAllowed("Only approvers can run the readiness checks.")
    with transaction.atomic():
        # Waits for a click that is starting a run right now, so it sees that run. (Two
        # first clicks in the same instant may both start one: harmless, checks only read.)
        audit.lock_chain()  # the lock order: the audit chain, then rows
        list(ReadinessRun.objects.select_for_update().filter(status=ReadinessStatus.RUNNING))
        current = running()
        if current is not None:
            raise Conflict(f"{current} started at {current.started_at:%H:%M} is still running.")
        run = start_run(ReadinessRun.Trigger.MANUAL, actor=actor)
        audit.record("readiness.requested", run, actor=actor)
        queue.verify_readiness(run.pk)
    return run


def finish_run(run_id: int, results: list[CheckResult]) -> ReadinessRun:
    """Store a run's results, audit the outcome, and tell the admins when it is not good."""
    status = overall_status(results)
    with transaction.atomic():
        audit.lock_chain()  # the lock order: the audit chain, then rows
        run = ReadinessRun.objects.select_for_update().get(pk=run_id)
        if run.is_finished:
            return run
        run.status = status
        run.finished_at = timezone.now()
        run.results = [result.as_dict() for result in results]
        run.counts = counts(results)
        run.save(update_fields=["status", "finished_at", "results", "counts"])
        audit.record(
            "readiness.checked",
            run,
            actor=run.requested_by,
            system="readiness",
            payload={
                "status": status,
                "counts": run.counts,
                "failing": [
                    f"{r.name} {r.subject}".strip() for r in results if r.status in (FAIL, UNKNOWN)
                ][:50],
            },
        )
        if status in (FAIL, UNKNOWN):
            messages.readiness_failed(run)
    return run


def execute_run(run_id: int) -> ReadinessRun | None:
    """Check and store; idempotent (a finished run is left alone)."""
    run = ReadinessRun.objects.filter(pk=run_id).first()
    if run is None or run.is_finished:
        return run
    return finish_run(run_id, run_checks())


def run_now(trigger: str, *, actor: User | None = None) -> ReadinessRun:
    """Create a run and execute it in this process (the command and the schedule)."""
    run = start_run(trigger, actor=actor)
    return finish_run(run.pk, run_checks())


def results_of(run: ReadinessRun) -> list[CheckResult]:
    return [CheckResult(**item) for item in run.results]
