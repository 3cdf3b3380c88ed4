"""``python -m bench <name|all> [--quick]``: run benchmarks on the production stack.

Each benchmark starts its own stack (bench/stack.py), prints a table, and
writes ``var/bench/<name>[-quick].json`` (and a PNG where it draws one).
``all`` runs each in its own process, one after the other. ``--quick`` sizes
are for CI: they assert correctness (all granted, none lost), never time.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import time

from bench import BENCHMARKS
from bench.stack import DEFAULT_LATENCY_MS, ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=[*BENCHMARKS, "all"])
    parser.add_argument("--quick", action="store_true", help="CI sizes (correctness only)")
    parser.add_argument(
        "--latency-ms", type=int, default=DEFAULT_LATENCY_MS, help="the Okta org's latency"
    )
    args = parser.parse_args(argv)
    if args.name == "all":
        failed = []
        for name in BENCHMARKS:
            started = time.monotonic()
            command = [sys.executable, "-m", "bench", name, f"--latency-ms={args.latency_ms}"]
            done = subprocess.run(command + (["--quick"] if args.quick else []), cwd=ROOT)
            print(f"[{name}: {'ok' if done.returncode == 0 else 'FAILED'} in "
                  f"{time.monotonic() - started:.0f}s]\n", flush=True)  # fmt: skip
            if done.returncode != 0:
                failed.append(name)
        if failed:
            print(f"failed: {', '.join(failed)}")
        return 1 if failed else 0
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    # SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C: the stack stops its processes
    # and drops its database on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    module = importlib.import_module(f"bench.{args.name}")
    print(f"== {args.name}{' (quick)' if args.quick else ''}: {BENCHMARKS[args.name]}", flush=True)
    started = time.monotonic()
    result = module.run(args.quick, latency_ms=args.latency_ms)
    result["seconds"] = round(time.monotonic() - started, 1)

    from bench import report

    path = report.write(args.name, args.quick, result)
    print(f"-> {path.relative_to(ROOT)} ({result['seconds']:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
