"""Scenario 11: recovery — a node of N pods drained, and a PostgreSQL primary failed over, several times each.

One dev server (in memory) for the scenario; each run has its own sandbox or PostgreSQL pair and a
cluster name of its own, with every worker in this process (`recovery_env.py`). The node drain is
`recovery_nodes.py`, the failover `recovery_db.py`, the section `recovery_report.py`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench.report import Section
from bench.scenarios.recovery_db import one_failover, server_version
from bench.scenarios.recovery_nodes import one_drain
from bench.scenarios.recovery_report import section
from zerotouch.binaries import temporal_cli
from zerotouch.names import SEARCH_ATTRIBUTES
from zerotouch.ports import free_port
from zerotouch.temporal import data_converter


def sizes(quick: bool) -> tuple[int, int]:
    """(pods on the drained node, runs of each recovery)."""
    return (10, 1) if quick else (30, 5)


async def run(workdir: Path, *, quick: bool) -> Section:
    pods, runs = sizes(quick)
    workdir.mkdir(parents=True, exist_ok=True)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), port=free_port(), search_attributes=SEARCH_ATTRIBUTES,
        data_converter=data_converter())
    try:
        drains = [await one_drain(env.client, workdir / f"drain-{n}", pods) for n in range(1, runs + 1)]
        failovers = [await one_failover(env.client, workdir / f"failover-{n}") for n in range(1, runs + 1)]
    finally:
        await env.shutdown()
    return section(drains, failovers, pods=pods, server=await asyncio.to_thread(server_version))
