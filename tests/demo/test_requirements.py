"""requirements.txt is what runs (the image, `make demo`); requirements-dev.txt adds the tools.

The runtime file must name every third-party distribution the application code
imports (the sandbox Okta org included: the demo runs it), and nothing that only
the tests, linters or type checker use.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

from django.conf import settings
from packaging.requirements import Requirement

ROOT = Path(settings.BASE_DIR)
APPLICATION = ("portal", "requests_app", "federation")
FIRST_PARTY = {*APPLICATION, "manage"}
# Only the tests and tools use these; the production image must not ship them.
TOOLS = {
    "pytest", "pytest-django", "factory-boy", "moto", "cfn-lint", "parliament",
    "openapi-core", "openapi-spec-validator", "openapi-schema-validator", "playwright",
    "ruff", "import-linter", "mypy", "django-stubs", "celery-types", "pyyaml",
}  # fmt: skip
# Runtime requirements no Python module imports by name, and why they are needed.
NOT_IMPORTED = {
    "gunicorn": "the image's web server (Dockerfile CMD)",
    "psycopg": "Django's PostgreSQL backend in production",
    "fido2": "allauth.mfa's WebAuthn (security keys, passkeys) imports it",
    "qrcode": "allauth.mfa draws the TOTP set-up QR code with it",
}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(normalize(Requirement(line).name))
    return names


def imported_modules(tree: ast.AST) -> set[str]:
    """Top-level names of absolute imports, wherever they sit (in functions too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
    return found


@cache
def third_party_imports() -> dict[str, set[str]]:
    """Module -> the application files importing it."""
    users: dict[str, set[str]] = {}
    for package in APPLICATION:
        for path in (ROOT / package).rglob("*.py"):
            for module in imported_modules(ast.parse(path.read_text(), str(path))):
                if module not in sys.stdlib_module_names and module not in FIRST_PARTY:
                    users.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    # Named as strings, imported by Django itself.
    for dotted in (*settings.INSTALLED_APPS, *settings.MIDDLEWARE):
        module = dotted.partition(".")[0]
        if module not in FIRST_PARTY and module != "django":
            users.setdefault(module, set()).add("portal/settings.py")
    users.setdefault("django", set()).add("portal/settings.py")
    return users


def distributions_of(module: str) -> set[str]:
    return {normalize(name) for name in packages_distributions().get(module, [])}


def test_the_runtime_file_holds_no_test_or_tool_package():
    runtime = requirement_names(ROOT / "requirements.txt")

    stubs = [name for name in runtime if name.startswith("types-") or name.endswith("-stubs")]
    assert sorted(set(runtime) & TOOLS) == [] and stubs == []
    assert len(runtime) == len(set(runtime)), "a requirement is listed twice"


def test_the_dev_file_includes_the_runtime_file_and_holds_the_tools():
    lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    dev = set(requirement_names(ROOT / "requirements-dev.txt"))

    assert "-r requirements.txt" in lines
    assert TOOLS - {"factory-boy"} <= dev  # factory_boy is never imported: dropped
    assert not dev & set(requirement_names(ROOT / "requirements.txt")), "listed in both"


def test_every_third_party_import_of_the_application_is_a_runtime_requirement():
    runtime = set(requirement_names(ROOT / "requirements.txt"))
    imports = third_party_imports()

    missing = {
        module: sorted(files)
        for module, files in imports.items()
        if not distributions_of(module) & runtime
    }
    assert missing == {}, "imported by the application but not in requirements.txt"
    assert {"okta", "boto3", "celery", "allauth", "whitenoise"} <= set(imports)  # the scan works


def test_every_runtime_requirement_is_used():
    provided = set().union(*(distributions_of(module) for module in third_party_imports()))

    unused = set(requirement_names(ROOT / "requirements.txt")) - provided - set(NOT_IMPORTED)
    assert unused == set(), "in requirements.txt but never imported: drop it or say why"


def make_dry_run(*args: str) -> list[str]:
    """The commands `make` would run from nothing (-B: as if no stamp existed)."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", *args],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return result.stdout.splitlines()


def test_make_demo_installs_the_runtime_file_and_moto_and_passes_the_ports():
    commands = make_dry_run(
        "demo", "PORT=8123", "OKTA_PORT=8124", "AWS_PORT=8125", "PAGERDUTY_PORT=8126"
    )

    installs = [line for line in commands if "pip install" in line]
    assert len(installs) == 1 and installs[0].endswith("-r requirements-demo.txt")
    demo = (ROOT / "requirements-demo.txt").read_text().splitlines()
    assert "-r requirements.txt" in demo
    assert requirement_names(ROOT / "requirements-demo.txt") == ["moto"]
    assert commands[-1].endswith(
        "manage.py run_demo --port 8123 --okta-port 8124 --aws-port 8125 --pagerduty-port 8126"
    )


def test_make_test_installs_the_dev_file():
    commands = make_dry_run("test")

    installs = [line for line in commands if "pip install" in line]
    assert len(installs) == 1 and installs[0].endswith("-r requirements-dev.txt")
    # Its stamp marks the runtime file installed too: `make demo` afterwards adds nothing.
    assert any(".requirements-installed" in line and line.startswith("touch") for line in commands)
