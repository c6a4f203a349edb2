"""`python -m sandbox`: run a sandbox cluster in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from typing import Any

from .faults import KINDS
from .server import SandboxCluster


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Run a local fake Kubernetes API server (plain HTTP, no auth) with demo "
                    "workloads and fault injection. Point kubectl at it with "
                    "`kubectl --server=http://HOST:PORT ...`.",
        epilog=f"Fault kinds: {', '.join(KINDS)}. Inject with "
               "`curl -XPOST URL/sandbox/v1/faults -d '{\"kind\":\"crashloop\","
               "\"namespace\":\"shop\",\"deployment\":\"web\"}'`.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=6443,
                        help="port to listen on; 0 picks a free one (default: 6443)")
    parser.add_argument("--tick", type=float, default=0.2, dest="tick_seconds",
                        help="controller loop period in seconds (default: 0.2)")
    parser.add_argument("--state-file", default=None,
                        help="JSON file to load the cluster from and save it to, so a "
                             "restarted sandbox keeps its state")
    parser.add_argument("--inject", action="append", default=[], metavar="KIND:NS/DEPLOY",
                        help="inject a fault at start, e.g. crashloop:shop/web (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    cluster = SandboxCluster(host=args.host, port=args.port, tick_seconds=args.tick_seconds,
                             state_file=args.state_file)
    for spec in args.inject:
        kind, _, target = spec.partition(":")
        namespace, _, deployment = target.partition("/")
        try:
            cluster.inject(kind, namespace, deployment)
        except ValueError as exc:
            build_parser().error(str(exc))
    done = threading.Event()

    def _stop(*_: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    cluster.start()
    print(f"sandbox cluster at {cluster.url}  (kubectl --server={cluster.url} get pods -A)",
          flush=True)
    try:
        done.wait()
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
