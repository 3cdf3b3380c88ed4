"""Each benchmark at its quick size, on the production stack, as CI runs it.

They assert correctness (every request granted, none lost, every member removed),
never time: `python -m bench NAME --quick` exits non-zero when a check fails.
Figures come from the full sizes (`make bench`, docs/performance.md).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.conf import settings

from bench import BENCHMARKS
from bench.report import OUT

pytestmark = [pytest.mark.bench, pytest.mark.integration]


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_quick_benchmark(name):
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("the benchmarks need PostgreSQL: set DATABASE_URL=postgres://...")
    done = subprocess.run(
        [sys.executable, "-m", "bench", name, "--quick"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    result = json.loads((OUT / f"{name}-quick.json").read_text())
    assert result["benchmark"] == name and result["quick"] is True
    assert result["machine"]["cpus"] >= 1
