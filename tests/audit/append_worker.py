"""One writer of the concurrency test: ``python -m tests.audit.append_worker NAME N START``.

Waits for the file START to exist (so all writers begin together), then appends N
events, each in its own transaction, holding the transaction open a moment after
the append so the writers really contend for the chain's head.
"""

from __future__ import annotations

import os
import sys
import time

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from django.db import transaction

    from portal import audit

    name, count, start = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    deadline = time.monotonic() + 60
    while not os.path.exists(start):
        if time.monotonic() > deadline:
            sys.exit("never started")
        time.sleep(0.01)
    for i in range(count):
        with transaction.atomic():
            audit.record("test.concurrent", ("writer", name), system=name, payload={"i": i})
            time.sleep(0.002)


if __name__ == "__main__":
    main()
