"""Figures of a benchmark run: percentiles, a printed table, JSON under var/bench/, PNGs."""

from __future__ import annotations

import json
import math
import platform
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.stack import ROOT

OUT = ROOT / "var" / "bench"


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values; NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> dict[str, float]:
    """n, median, p95, p99 and max of values (milliseconds or seconds, as given)."""
    return {
        "n": len(values),
        "median": statistics.median(values) if values else math.nan,
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
    }


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "commit": commit,
    }


def table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def fmt(value: float, digits: int = 1) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def write(name: str, quick: bool, result: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}{'-quick' if quick else ''}.json"
    result = {"benchmark": name, "quick": quick, "machine": machine(), **result}
    path.write_text(json.dumps(result, indent=2, default=str))
    return path


def png_path(name: str, quick: bool) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    return OUT / f"{name}{'-quick' if quick else ''}.png"


def pyplot() -> Any:
    """matplotlib's pyplot (Agg), or None when matplotlib is not installed."""
    try:
        import matplotlib  # optional: only for the pictures (requirements-bench.txt)
    except ImportError:
        print("  (matplotlib is not installed: no PNG; pip install -r requirements-bench.txt)")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
