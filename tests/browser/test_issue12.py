"""Issue 12 in a real browser (Debian's Chromium), on the real worker and the sandbox org:

* every page, for each role, at 1366x900 and 390x844: no sideways scrolling, axe-core
  (axe-playwright-python) finds no serious or critical violation, a screenshot of each
  is kept under test-results/screens/;
* a denial asks first in an accessible dialog, needs a reason, and keyboard focus moves
  on to the next row; the failover page follows the worker by itself;
* the engineer's moment: countdown, switch-role links, "End my access now", and during
  the return to normal "Sign out of the AWS console now" first, above the fold on a phone.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from playwright.sync_api import expect

from federation.failover import services as failover_services
from federation.models import Failover, FailoverStatus
from requests_app import services
from requests_app.models import AccessRequest, Status
from tests.browser.conftest import PHONE, nav
from tests.conftest import make_user
from tests.harness import wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

DESKTOP = {"width": 1366, "height": 900}
SIZES = {"desktop": DESKTOP, "phone": PHONE}
BLOCKING = {"serious", "critical"}
JUSTIFICATION = "Payments are failing; I need to read the CloudWatch logs of the workers."
GRANT_TIMEOUT = 45_000  # ms


def file(user, role, minutes: int = 60) -> AccessRequest:
    return services.file_request(
        requester=user, role=role, justification=JUSTIFICATION, ticket="INC-42",
        duration_minutes=minutes,
    )  # fmt: skip


def granted(user, role, approver) -> AccessRequest:
    req = file(user, role)
    services.approve(req, actor=approver)
    wait_for(lambda: AccessRequest.objects.get(pk=req.pk).status == Status.ACTIVE, what="grant")
    return AccessRequest.objects.get(pk=req.pk)


def open_failover(approver, *, drill: bool) -> Failover:
    failover = failover_services.open_failover(
        actor=approver, reason="IdC down (INC-42)", drill=drill
    )
    wait_for(lambda: Failover.objects.get(pk=failover.pk).app_activated_at, what="activation")
    return failover


@pytest.fixture
def story(prepared_plan, engineer, oncall, approver, approver2, auditor) -> SimpleNamespace:
    """A closed drill (with its report), then an open failover with an active grant and
    a pending Ops request: every page has something to show. Made before Playwright's
    event loop starts (the okta SDK runs its own)."""
    roles = prepared_plan.roles
    drill = open_failover(approver, drill=True)
    failover_services.close_failover(actor=approver, force=True, reason="Drill done.")
    wait_for(
        lambda: Failover.objects.get(pk=drill.pk).status == FailoverStatus.CLOSED, what="close"
    )
    failover = open_failover(approver, drill=False)
    grant = granted(engineer, roles[("prod-payments", "RO")], approver)
    waiting = file(oncall, roles[("prod-data", "Ops")])
    staff = make_user("admin", "admin@example.com", mfa=True)  # staff: MFA is mandatory
    staff.is_staff = True
    staff.save()
    return SimpleNamespace(
        drill=drill, failover=failover, grant=grant, waiting=waiting, staff=staff
    )


def pages_for(role: str, story: SimpleNamespace) -> list[str]:
    grant, drill = story.grant.pk, story.drill.pk
    common = [
        reverse("dashboard"),
        reverse("request-list"),
        reverse("request-detail", args=[grant]),
        reverse("tokens"),
        reverse("request-action", args=[grant, "revoke"]),  # a GET: the 405 page
        "/no-such-page/",
    ]
    if role == "engineer":
        return [*common, reverse("request-new")]
    if role == "staff":
        return [reverse("dashboard"), reverse("plan"), reverse("demo-controls")]
    watching = [
        reverse("auditor-history"),
        reverse("audit-log"),
        reverse("auditor-request", args=[grant]),
        reverse("auditor-failovers"),
        reverse("plan"),
        reverse("readiness"),
        reverse("failover-report", args=[drill]),
    ]
    if role == "auditor":
        return [*common, *watching]
    return [
        *common,
        *watching,
        reverse("request-new"),
        reverse("approvals"),
        reverse("failover"),
        reverse("failover-return"),
    ]


def test_every_page_fits_a_phone_and_passes_axe(
    story, engineer, approver, auditor, sign_in, screenshot, live_portal, browser
):
    axe = Axe()
    problems: list[str] = []
    people = {"engineer": engineer, "approver": approver, "auditor": auditor, "staff": story.staff}

    def check(page, name: str, size: str) -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        inner = page.evaluate("window.innerWidth")
        if width > inner:
            problems.append(f"{name} @{size}: scrolls sideways ({width}px > {inner}px)")
        for violation in axe.run(page).response["violations"]:
            if violation["impact"] in BLOCKING:
                where = [n["target"] for n in violation["nodes"][:3]]
                problems.append(
                    f"{name} @{size}: axe {violation['id']} ({violation['impact']}) {where}"
                )
        screenshot(page, f"{name.strip('/').replace('/', '_') or 'home'}-{size}")

    for size, viewport in SIZES.items():
        anonymous = browser.new_context(base_url=live_portal, viewport=viewport)
        login = anonymous.new_page()
        login.goto("/accounts/login/")
        check(login, "login", size)
        anonymous.close()
        for role, user in people.items():
            page = sign_in(user, viewport=viewport)
            for url in pages_for(role, story):
                page.goto(url)
                check(page, f"{role}{url}", size)
            if size == "phone":
                # The skip link is the first Tab stop; the menu folds behind one button.
                page.goto("/")
                page.keyboard.press("Tab")
                expect(page.locator(":focus")).to_have_text("Skip to the content")
                page.keyboard.press("Enter")
                expect(page.locator("main")).to_be_focused()
                toggle = page.get_by_role("button", name=re.compile("^Menu"))
                expect(toggle).to_have_attribute("aria-expanded", "false")
                expect(page.get_by_role("link", name="Dashboard")).to_be_hidden()
                toggle.click()
                expect(toggle).to_have_attribute("aria-expanded", "true")
                expect(page.get_by_role("navigation", name="Main").get_by_role(
                    "link", name="Dashboard")).to_be_visible()  # fmt: skip
            page.context.close()
    assert not problems, "\n".join(problems)


def test_the_failover_page_follows_the_worker(integration, prepared_plan, approver, sign_in):
    """It said "Activation pending" until someone reloaded it (issue 12, defect 6)."""
    integration.add_faults(latency_ms=1500)  # Okta answers slowly: the page sees both states
    desk = sign_in(approver)
    nav(desk, "Failover").click()
    desk.get_by_label("Reason").fill("IAM Identity Center is down in eu-west-1 (INC-42).")
    desk.get_by_role("button", name="Open failover").click()
    expect(desk.locator("#app-state")).to_contain_text("Being activated")
    expect(desk.locator("#app-state")).to_contain_text("Activated (confirmed", timeout=30_000)


@pytest.fixture
def two_waiting(prepared_plan, engineer, oncall, approver) -> tuple[AccessRequest, AccessRequest]:
    roles = prepared_plan.roles
    open_failover(approver, drill=False)
    return file(engineer, roles[("prod-payments", "RO")]), file(oncall, roles[("prod-data", "RO")])


def test_deny_asks_first_needs_a_reason_and_focus_moves_on(
    two_waiting, engineer, approver, sign_in, screenshot
):
    first, second = two_waiting
    desk = sign_in(approver)
    nav(desk, "Approvals").click()
    expect(desk.locator("#pending-count")).to_contain_text("2")
    deny = desk.locator(f"#deny-{first.pk}")
    deny.focus()
    desk.keyboard.press("Enter")
    dialog = desk.get_by_role("dialog", name=f"Deny request #{first.pk}?")
    expect(dialog).to_be_visible()
    reason = dialog.get_by_label("Why")
    expect(reason).to_be_focused()
    # Escape goes back, nothing happens, focus returns to the button.
    desk.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(deny).to_be_focused()
    assert AccessRequest.objects.get(pk=first.pk).status == Status.PENDING

    desk.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Deny the request").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Give a reason")
    expect(dialog).to_be_visible()
    reason.fill("Use the read-only role of prod-data instead.")
    screenshot(desk, "deny-dialog")
    blocking = [v["id"] for v in Axe().run(desk).response["violations"] if v["impact"] in BLOCKING]
    assert not blocking, blocking
    desk.keyboard.press("Tab")  # to "Go back"
    desk.keyboard.press("Tab")  # to "Deny the request"
    desk.keyboard.press("Enter")
    expect(desk.locator(f"#queue-request-{first.pk}")).to_contain_text("denied")
    # Keyboard focus moved to the next row, not lost to <body>.
    expect(desk.locator(f"#comment-{second.pk}")).to_be_focused()
    assert AccessRequest.objects.get(pk=first.pk).status == Status.DENIED

    phone = sign_in(engineer, viewport=PHONE)
    phone.goto(f"/requests/{first.pk}/")
    expect(phone.locator("#request-status")).to_contain_text(
        "Use the read-only role of prod-data instead."
    )


@pytest.fixture
def two_grants(prepared_plan, engineer, approver) -> tuple[AccessRequest, AccessRequest]:
    roles = prepared_plan.roles
    open_failover(approver, drill=False)
    return (
        granted(engineer, roles[("prod-payments", "RO")], approver),
        granted(engineer, roles[("prod-data", "RO")], approver),
    )


def test_the_engineers_moment(two_grants, engineer, approver, sign_in, screenshot):
    mine, other = two_grants
    phone = sign_in(engineer, viewport=PHONE)
    phone.goto(f"/requests/{other.pk}/")
    moment = phone.locator("#moment")
    expect(moment).to_contain_text("Your access is active")
    countdown = moment.locator("[data-countdown]")
    expect(countdown).to_have_text(re.compile(r"^(59|60) min \d\d s left$"))
    before = countdown.inner_text()
    expect(countdown).not_to_have_text(before, timeout=3_000)  # it counts down live
    links = moment.get_by_role("link", name=re.compile("^Switch role"))
    expect(links).to_have_count(2)
    href = links.first.get_attribute("href")
    assert href.startswith("https://signin.aws.amazon.com/switchrole?")
    assert "roleName=EmergencyAccess_RO" in href and "account=222222222222" in href
    screenshot(phone, "engineer-moment-active")

    # "End my access now" asks first, then the grant ends (the worker removes the member).
    moment.get_by_role("button", name="End my access now").click()
    phone.get_by_role("dialog").get_by_role("button", name="End my access now").click()
    expect(phone.locator(".messages")).to_contain_text("Your access is ending")
    expect(phone.locator("#request-status .status-line .badge")).to_have_text("Revoked")
    expect(phone.locator("#request-status")).to_contain_text(
        "Membership removed", timeout=GRANT_TIMEOUT
    )

    # The approver starts the return to normal; the engineer's other page, untouched,
    # turns into "Sign out of the AWS console now", with the button above the fold.
    phone.goto(f"/requests/{mine.pk}/")
    expect(moment).to_contain_text("Your access is active")
    failover_services.start_return(actor=approver, override_reason="AWS Health: resolved.")
    expect(moment.get_by_role("heading")).to_have_text(
        "Sign out of the AWS console now", timeout=15_000
    )
    button = moment.get_by_role("button", name="I have signed out of AWS")
    expect(button).to_be_in_viewport()
    phone.reload()  # the banner is not live; after a reload it leads to this request
    expect(button).to_be_in_viewport()
    banner = phone.locator(".banner")
    expect(banner.get_by_role("link")).to_have_attribute("href", f"/requests/{mine.pk}/")
    screenshot(phone, "engineer-moment-sign-out-now")
    button.click()
    expect(phone.locator(".messages")).to_contain_text("sign-out is recorded")
