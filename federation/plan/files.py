"""The rendered plan as files: what ``render_plan --out DIR`` writes and the Plan page serves.

One dict of ``relative path -> text`` per format; nothing touches the file system
here, so the page can serve any of them by name and the command writes them all.
"""

from __future__ import annotations

from federation.plan import cloudformation, iam

FORMATS = ("json", "cloudformation", "okta")


def _json_files(plan: iam.RenderedPlan) -> dict[str, str]:
    files = {"plan-documents.json": iam.dumps(plan.documents())}
    for role in plan.emergency_roles:
        base = f"emergency-account-{plan.emergency_account_id}/{role.role_name}"
        files[f"{base}.trust-policy.json"] = iam.dumps(role.trust_policy)
        files[f"{base}.permissions-policy.json"] = iam.dumps(role.permissions_policy)
    for workload_role in plan.workload_roles:
        base = f"workload-account-{workload_role.account_id}/{workload_role.role_name}"
        files[f"{base}.trust-policy.json"] = iam.dumps(workload_role.trust_policy)
    return files


def okta_settings_text(plan: iam.RenderedPlan) -> str:
    """The Okta admin console values, field by field (Sign On tab of the app)."""
    okta = plan.okta
    lines = [
        "Okta: Applications > AWS Account Federation (SAML 2.0) > Sign On > Edit",
        "",
        f"Identity Provider ARN:  {okta.identity_provider_arn}",
        f"Session Duration:       {okta.session_duration}",
        "Use Group Mapping:      yes",
        f"App Filter:             {okta.app_filter}",
        f"Group Filter:           {okta.group_filter}",
        f"Role Value Pattern:     {okta.role_value_pattern}",
        "",
        "Groups (Okta groups, assigned to the app, no members outside a failover):",
    ]
    lines += [f"  {group.name}  ->  {group.role_arn}" for group in okta.groups]
    lines += [
        "",
        "Keep the app deactivated: the portal activates it when a failover is opened.",
    ]
    return "\n".join(lines) + "\n"


def files(plan: iam.RenderedPlan, fmt: str) -> dict[str, str]:
    if fmt == "json":
        return _json_files(plan)
    if fmt == "cloudformation":
        return {
            name: iam.dumps(template) for name, template in cloudformation.templates(plan).items()
        }
    if fmt == "okta":
        return {
            "okta.json": iam.dumps(plan.okta.as_dict()),
            "okta-settings.txt": okta_settings_text(plan),
        }
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def all_files(plan: iam.RenderedPlan) -> dict[str, str]:
    found: dict[str, str] = {}
    for fmt in FORMATS:
        found.update(files(plan, fmt))
    return found
