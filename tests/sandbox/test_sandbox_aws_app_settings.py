"""The AWS Account Federation app's Sign On settings (``settings.app``) in the sandbox.

Okta's OpenAPI document leaves a SAML app's ``settings.app`` undeclared (each OIN
app has its own keys); the keys here are the amazon_aws app's, as Okta's API and
its Terraform provider name them.
"""

from __future__ import annotations

from federation.sandbox import SandboxServer, merge_seed
from federation.sandbox.org import SandboxOrg

from .conftest import Response, call


def test_app_carries_the_aws_sign_on_settings(sandbox: SandboxServer, ids: dict[str, str]) -> None:
    reply: Response = call(sandbox.url, "GET", f"/api/v1/apps/{ids['app']}")

    app = reply.json
    assert (app["name"], app["signOnMode"]) == ("amazon_aws", "SAML_2_0")
    assert app["settings"]["app"] == {
        "appFilter": "okta",
        "awsEnvironmentType": "aws.amazon",
        "groupFilter": r"^aws\#(?{{role}}[\w\-]+)\#(?{{accountid}}\d+)$",
        "identityProviderArn": "",
        "joinAllRoles": False,
        "loginURL": "https://console.aws.amazon.com/ec2/home",
        "roleValuePattern": "arn:aws:iam::${accountid}:saml-provider/Okta,"
        "arn:aws:iam::${accountid}:role/${role}",
        "sessionDuration": 3600,
        "useGroupMapping": True,
    }
    assert int(reply.headers["X-Rate-Limit-Remaining"]) < int(reply.headers["X-Rate-Limit-Limit"])


def test_control_plane_changes_settings_like_an_admin(
    sandbox: SandboxServer, ids: dict[str, str]
) -> None:
    changed = call(
        sandbox.url,
        "POST",
        f"/__sandbox__/apps/{ids['app']}/settings",
        body={"sessionDuration": 7200},
        authorization=None,
    )

    assert changed.status == 200 and changed.json["sessionDuration"] == 7200
    app = call(sandbox.url, "GET", f"/api/v1/apps/{ids['app']}").json
    assert app["settings"]["app"]["sessionDuration"] == 7200
    sandbox.reset()
    assert sandbox.app(ids["app"])["settings"]["app"]["sessionDuration"] == 3600


def test_seed_overrides_settings_and_sign_on_mode() -> None:
    seed = merge_seed(
        {
            "apps": [
                {
                    "id": "0oaother",
                    "name": "salesforce",
                    "signOnMode": "BOOKMARK",
                    "settings": {"sessionDuration": 900},
                }
            ]
        }
    )
    app = SandboxOrg(seed).app("0oaother")

    assert (app["signOnMode"], app["settings"]["app"]["sessionDuration"]) == ("BOOKMARK", 900)
