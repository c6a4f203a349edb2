"""Part of scenario 1: is the embedded default's dev-server setting the fastest durable one?

Raw signal-with-start rates against three dev servers side by side, rounds interleaved:
SQLite file with Temporal's default pragmas, the embedded default (WAL + synchronous=normal),
and in-memory SQLite (fast, not durable).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from bench.alerts import RESTART_ALERT, labels_for
from bench.procs import Child
from bench.report import Goal, Section
from bench.scenarios.ingest import _raw
from bench.stack import _connect
from bench.stats import median, spread
from embedded.devserver import SQLITE_PRAGMAS, dev_server_command
from zerotouch.ports import free_port

VARIANTS = {
    "SQLite file, Temporal's default pragmas (durable)": "default",
    "SQLite file, WAL + synchronous=normal (embedded default, durable)": "wal",
    "in-memory SQLite (not durable)": "memory",
}


def _command(kind: str, workdir: Path, port: int) -> list[str]:
    command = dev_server_command(db_file=workdir / f"{kind}.db", port=port, headless=True)
    if kind in ("default", "memory"):
        for pragma in SQLITE_PRAGMAS:
            index = command.index(pragma)
            del command[index - 1:index + 1]
    if kind == "memory":
        index = command.index("--db-filename")
        del command[index:index + 2]
    return command


async def run(workdir: Path, *, quick: bool) -> Section:
    rounds, size = (2, 40) if quick else (3, 500)
    workdir.mkdir(parents=True, exist_ok=True)
    rates: dict[str, list[float]] = {label: [] for label in VARIANTS}
    children: list[Child] = []
    try:
        clients = {}
        for label, kind in VARIANTS.items():
            port = free_port()
            child = Child(f"temporal-{kind}", _command(kind, workdir, port), workdir)
            children.append(child)
            clients[label] = await _connect(child, f"127.0.0.1:{port}")
        for label, client in clients.items():  # warm each
            await _raw(client, [labels_for(RESTART_ALERT, f"warm-{VARIANTS[label]}", f"d{i}") for i in range(20)])
        for round_no in range(rounds):
            order = list(VARIANTS) if round_no % 2 == 0 else list(reversed(VARIANTS))
            for label in order:
                labels = [labels_for(RESTART_ALERT, f"dev-{round_no}-{VARIANTS[label]}", f"d{i}") for i in range(size)]
                rates[label].append(await _raw(clients[label], labels))
    finally:
        for child in children:
            with contextlib.suppress(Exception):
                child.stop()
    durable = {label: median(values) for label, values in rates.items() if "not durable" not in label}
    fastest = max(durable, key=lambda label: durable[label])
    return Section(
        title="1b. Dev-server persistence settings",
        how=(f"Raw signal-with-start of new incidents (as in scenario 1, {size} per round, {rounds} rounds, the "
             "order alternating) against three dev servers running side by side, each with the embedded default's "
             "command except for its persistence flags. No worker runs."),
        table=[["dev server", "starts/s median (min-max)"],
               *[[label, spread(values)] for label, values in rates.items()]],
        goals=[Goal("embedded default is the fastest durable setting", "embedded default" in fastest,
                    f"{median(rates[next(iter(VARIANTS))]):.0f} / {durable[fastest]:.0f} / "
                    f"{median(rates[list(VARIANTS)[2]]):.0f} starts/s (default / WAL / memory)")],
        data={"rates": rates},
    )
