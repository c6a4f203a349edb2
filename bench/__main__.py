"""`python -m bench [--quick] [--out BENCHMARKS.md]`: run every scenario and write the report."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.policy import CHANGES, FAST_CHANGES, bench_policy
from bench.report import Section, render
from bench.scenarios import (
    backups,
    backups_report,
    devserver,
    drills,
    drills_report,
    gdpr,
    gdpr_report,
    ingest,
    latency,
    mttr,
    payload,
    peer,
    recovery,
    recovery_report,
    rotation,
    rotation_report,
    scale,
    stock,
    storm,
)
from embedded.devserver import SQLITE_PRAGMAS
from zerotouch.settings import WorkerSettings

SCENARIOS = ("ingest", "devserver", "latency", "storm", "scale", "peer", "mttr", "stock", "payload", "backups",
             "rotation", "gdpr", "recovery", "drills")
# Goals that are about correctness: --quick fails when one is missed (speed is never asserted).
CORRECTNESS = ("incidents", "actions ≤", "never two", "exactly one action", "checks pass", "RPO measured",
               "ended rotated", "never above", "erased everywhere", "rows untouched", "no pod was deleted",
               "primary rejoined", "canary rows lost", "met its expectation")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="every scenario at a small size: proves the harness works (CI); asserts correctness only")
    parser.add_argument("--out", default="BENCHMARKS.md", help="where to write the report (default BENCHMARKS.md)")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run only these scenarios (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory with every server's log")
    return parser


def _settings() -> list[str]:
    worker = WorkerSettings()
    return [
        "Temporal: the embedded default's dev server command (`embedded/devserver.py`): SQLite file with "
        + ", ".join(f"`--sqlite-pragma {p}`" for p in SQLITE_PRAGMAS)
        + " — the fastest setting that survives a crash of the process; a fresh server per scenario.",
        f"Worker: one `zerotouch worker` process serving all four task queues, "
        f"`max_concurrent_activities={worker.max_concurrent_activities}`; relay: `zerotouch relay` (uvicorn, one "
        "process); sandbox: `python -m sandbox` (controller tick 1 s, 0.2 s in scenario 5). "
        "Every server is a child process on a free 127.0.0.1 port, stopped by PID.",
        "Policy: the shipped `deploy/policy/zerotouch.yaml` with these changes: " + "; ".join(CHANGES + FAST_CHANGES)
        + ".",
        "The machine is shared with other sessions' work; absolute figures can carry their noise, the interleaved "
        "ratios much less.",
    ]


async def _run(args: argparse.Namespace, workdir: Path) -> list[Section]:
    policy_path = bench_policy(workdir / "policy.yaml")
    fast_policy_path = bench_policy(workdir / "policy-fast.yaml", fast_verify=True)
    stock_policy_path = bench_policy(workdir / "policy-stock.yaml", fast_verify=True,
                                     target_cooldown=stock.TARGET_COOLDOWN)
    chosen = args.only or list(SCENARIOS)
    steps: dict[str, Callable[[], Awaitable[Section | list[Section]]]] = {
        "ingest": lambda: ingest.run(workdir / "ingest", policy_path, quick=args.quick),
        "devserver": lambda: devserver.run(workdir / "devserver", quick=args.quick),
        "latency": lambda: latency.run(workdir / "latency", policy_path, quick=args.quick),
        "storm": lambda: storm.run(workdir / "storm", policy_path, quick=args.quick),
        "scale": lambda: scale.run(workdir / "scale", policy_path, quick=args.quick),
        "peer": lambda: peer.run(workdir / "peer", policy_path, quick=args.quick),
        "mttr": lambda: mttr.run(workdir / "mttr", fast_policy_path, quick=args.quick),
        "stock": lambda: stock.run(workdir / "stock", stock_policy_path, quick=args.quick),
        "payload": lambda: payload.run(workdir / "payload", policy_path, quick=args.quick),
        "backups": lambda: backups.run(workdir / "backups", quick=args.quick),
        "rotation": lambda: rotation.run(workdir / "rotation", quick=args.quick),
        "gdpr": lambda: gdpr.run(workdir / "gdpr", quick=args.quick),
        "recovery": lambda: recovery.run(workdir / "recovery", quick=args.quick),
        "drills": lambda: drills.run(workdir / "drills", quick=args.quick),
    }
    titles = {"ingest": "1. Relay ingest throughput", "devserver": "1b. Dev-server persistence settings",
              "latency": "2. Alert → first action latency",
              "storm": "3. Storm", "scale": scale.TITLE, "peer": "4. Peer: Event-Driven Ansible, side by side",
              "mttr": "5. Full loop MTTR",
              "stock": "5b. Full loop with the stock kube-prometheus rules",
              "payload": "7. One large group in one webhook", "backups": backups_report.TITLE,
              "rotation": rotation_report.TITLE, "gdpr": gdpr_report.TITLE,
              "recovery": recovery_report.TITLE, "drills": drills_report.TITLE}
    sections: list[Section] = []
    for name in SCENARIOS:
        if name not in chosen:
            continue
        began = time.monotonic()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        try:
            result = await steps[name]()
        except Exception:
            print(traceback.format_exc(), file=sys.stderr, flush=True)
            result = Section(title=titles[name], how=f"see the logs under {workdir / name}", table=[],
                             error=traceback.format_exc(limit=4))
        found = result if isinstance(result, list) else [result]
        for section in found:
            section.notes.append(f"Scenario wall time: {time.monotonic() - began:.0f} s.")
        sections += found
        print(f"bench: {name} done in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    order = ["1.", "1b.", "2.", "3.", "3b.", "4.", "5.", "5b.", "6.", "7.", "8.", "9.", "10.", "11.", "12."]
    return sorted(sections, key=lambda s: next((i for i, p in enumerate(order) if s.title.startswith(p)), 99))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    started, began = datetime.now(UTC), time.monotonic()
    scratch = tempfile.mkdtemp(prefix="zerotouch-bench-")
    sections = asyncio.run(_run(args, Path(scratch)))
    from bench.findings import findings

    text = render(sections=sections, command=command.strip(), started=started, seconds=time.monotonic() - began,
                  quick=args.quick, settings=_settings(), findings=findings(sections))
    Path(args.out).write_text(text)
    print(f"bench: wrote {args.out} in {time.monotonic() - began:.0f} s", file=sys.stderr)
    if not args.keep:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    else:
        print(f"bench: logs kept in {scratch}", file=sys.stderr)
    failures = [s.title for s in sections if s.error]
    failures += [f"{s.title}: {g.text} ({g.detail})" for s in sections for g in s.goals
                 if g.met is False and any(word in g.text for word in CORRECTNESS)]
    for failure in failures:
        print(f"bench: FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
