"""`python -m bench.tuned_worker KNOBS_JSON <zerotouch worker arguments>`: `zerotouch worker` with knobs turned.

Only the latency investigation (bench/scenarios/knobs.py) runs it; the shipped worker is unchanged.
"""

from __future__ import annotations

import sys

from bench.worker_knobs import Knobs


def main() -> None:
    Knobs.parse(sys.argv[1]).patch_zerotouch_worker()
    from cli.main import run

    sys.argv = ["zerotouch", *sys.argv[2:]]
    run()


if __name__ == "__main__":
    main()
