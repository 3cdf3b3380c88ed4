"""``python -m federation.sandbox``: serve a sandbox Okta org until SIGTERM / SIGINT."""

from __future__ import annotations

import argparse
import logging

from .faults import DEFAULT_RATE_LIMITS
from .process import serve_until_stopped
from .seed import DEFAULT_TOKEN
from .server import serve


def _rate_limit(text: str) -> tuple[str, int]:
    bucket, _, value = text.partition("=")
    if bucket not in DEFAULT_RATE_LIMITS or not value.isdigit():
        raise argparse.ArgumentTypeError(
            f"expected BUCKET=N with BUCKET in {', '.join(DEFAULT_RATE_LIMITS)}"
        )
    return bucket, int(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m federation.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="keep it on loopback")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the SSWS API token to accept")
    parser.add_argument(
        "--bearer-token", action="append", default=[], help="an accepted Bearer token"
    )
    parser.add_argument("--seed", help="JSON seed file (users / groups / apps)")
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every API request")
    parser.add_argument(
        "--rate-limit", type=_rate_limit, action="append", default=[], metavar="BUCKET=N"
    )
    parser.add_argument("--verbose", action="store_true", help="log each request line")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )

    server = serve(
        args.host,
        args.port,
        token=args.token,
        seed=args.seed,
        latency_ms=args.latency_ms,
        rate_limits=dict(args.rate_limit),
        bearer_tokens=tuple(args.bearer_token),
    )
    serve_until_stopped(server, f"sandbox Okta org listening on {server.url}")


if __name__ == "__main__":
    main()
