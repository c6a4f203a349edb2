"""Delivery fixtures: a Temporal dev server of the test's own, on a SQLite file, killable and restartable."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client

from tests.support.processes import ChildProcess, TemporalDevServer, wait_http, zerotouch_command

TOKEN = "delivery-" + uuid.uuid4().hex
REPORT_ENV = "ZEROTOUCH_DELIVERY_REPORT"


@dataclass
class Temporal:
    server: TemporalDevServer
    client: Client


@pytest_asyncio.fixture
async def temporal(tmp_path: Path) -> AsyncIterator[Temporal]:
    """A dev server only this test uses, so counting incidents counts this test's alone."""
    server = TemporalDevServer(tmp_path)
    try:
        yield Temporal(server, await server.start())
    finally:
        await server.stop()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "relay-token"
    path.write_text(TOKEN + "\n")
    return path


def report(test: str, figures: dict[str, Any]) -> None:
    """Print the measured figures (pytest -s shows them); append them as JSON to $ZEROTOUCH_DELIVERY_REPORT."""
    line = json.dumps({"test": test, **figures}, sort_keys=True)
    print(f"\nDELIVERY {line}")
    target = os.environ.get(REPORT_ENV)
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(line + "\n")


async def start_relay(temporal: Temporal, port: int, token_file: Path, log: Path, *extra: str,
                      env: dict[str, str] | None = None) -> ChildProcess:
    """`zerotouch relay` as its own process on ``port``, returned once it answers /healthz."""
    relay = await ChildProcess.start(
        zerotouch_command("relay", "--address", temporal.server.address, "--host", "127.0.0.1",
                          "--port", str(port), "--token-file", str(token_file), *extra),
        log=log, name="relay", env=env,
    )
    try:
        await wait_http(f"http://127.0.0.1:{port}/healthz", relay)
    except BaseException:
        await relay.stop()
        raise
    return relay
