"""Production settings in a child process: dummy but valid values for every required knob.

Used by tests/security/test_production_settings.py and, the same values, by .ci/test's
``check --deploy`` gate (it sources ``.ci/production.env``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / ".ci" / "production.env"


def production_env(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "LOG_LEVEL"}}
    for line in ENV_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name.removeprefix("export ").strip()] = value.strip()
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(*args: str, **overrides: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=production_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


PRINT_SETTINGS = """
import json, logging, django
from django.conf import settings
django.setup()
names = {names!r}
out = {{n: getattr(settings, n, None) for n in names}}
chatty = ("botocore", "botocore.endpoint", "urllib3", "okta", "okta-sdk-python")
out["_loggers"] = {{n: logging.getLevelName(logging.getLogger(n).getEffectiveLevel())
                   for n in chatty}}
print(json.dumps(out, default=str))
"""


def settings_in_production(*names: str, **overrides: str | None) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS.format(names=list(names))],
        cwd=ROOT,
        env={**production_env(**overrides), "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip().splitlines()[-1])
    return json.loads(result.stdout)
