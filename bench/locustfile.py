"""The page users of the pages benchmark (bench/pages.py runs this with locust, headless).

From the environment: ``BENCH_LOCUST_PAGES`` (JSON, label -> {"cookie": session key,
"url": path}), ``BENCH_THINK_SECONDS`` (the mean pause between a user's pages) and
``BENCH_LOCUST_MS`` (a file: each request's time in ms per label, and the failures,
written as JSON when locust quits; locust's own percentiles are rounded).

User n starts at page n (mod the pages) and loads them in turn, each with its page's
session cookie; a page is a failure unless it answers 200 itself (no redirect followed).
"""

from __future__ import annotations

import itertools
import json
import os
import random
from pathlib import Path
from typing import Any

import gevent
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

PAGES: dict[str, dict[str, str]] = json.loads(os.environ["BENCH_LOCUST_PAGES"])
THINK_SECONDS = float(os.environ["BENCH_THINK_SECONDS"])
LABELS = list(PAGES)
_numbers = itertools.count()

timings: dict[str, list[float]] = {label: [] for label in LABELS}
failures: list[str] = []


@events.request.add_listener
def _record(name: str, response_time: float, exception: Exception | None, **_: Any) -> None:
    timings.setdefault(name, []).append(response_time)
    if exception is not None:
        failures.append(f"{name}: {exception}")


@events.quitting.add_listener
def _write(**_: Any) -> None:
    Path(os.environ["BENCH_LOCUST_MS"]).write_text(
        json.dumps({"ms": timings, "failures": failures})
    )


class PageUser(FastHttpUser):
    # 0.5-1.5 x THINK_SECONDS between pages: with a fixed pause the users stay in step.
    wait_time = between(0.5 * THINK_SECONDS, 1.5 * THINK_SECONDS)

    def on_start(self) -> None:
        self.turn = next(_numbers)
        # Each starts at a random moment of the first THINK_SECONDS, not all at once.
        gevent.sleep(random.uniform(0, THINK_SECONDS))

    @task
    def page(self) -> None:
        label = LABELS[self.turn % len(LABELS)]
        self.turn += 1
        page = PAGES[label]
        # The Cookie header per request: a user loads pages as two people, and the
        # client's cookie jar adds its own only to a request without one.
        with self.client.get(
            page["url"],
            name=label,
            headers={"Cookie": f"sessionid={page['cookie']}"},
            allow_redirects=False,
            catch_response=True,
        ) as reply:
            if reply.status_code != 200:
                # Where it sent the user (a sign-in page), or what went wrong on the way.
                detail = (reply.headers or {}).get("Location") or getattr(reply, "error", "")
                reply.failure(f"HTTP {reply.status_code} {detail}".strip())
