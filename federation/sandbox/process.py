"""Running a sandbox (the Okta org, PagerDuty) as its own process until it is told to stop."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Protocol


class _Server(Protocol):
    def shutdown(self) -> None: ...


def serve_until_stopped(server: _Server, listening: str) -> None:
    """Announce ``listening`` (the demo launcher waits for it), serve until SIGTERM or
    SIGINT, then shut the server down."""
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(listening, flush=True)
    stop.wait()
    server.shutdown()
