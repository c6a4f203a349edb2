"""The Temporal dev server that `zerotouch up` runs: durable SQLite file, WAL, Web UI.

WAL with synchronous=normal is the fastest setting that stays durable across a
process crash (measured ~240 workflow starts/s against ~70-100 with the defaults).
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from temporalio.client import Client

from zerotouch.binaries import temporal_cli
from zerotouch.names import SEARCH_ATTRIBUTES
from zerotouch.temporal import data_converter

SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")
# Every incident asks the one Governor workflow for its grant through an update. The server's
# default of 10 in-flight updates per workflow made an alert storm's grants fail with
# RESOURCE_EXHAUSTED and back off, while holding the observe queue's activity slots that new
# incidents need for `load_policy` (python -m bench, scenario 3).
DYNAMIC_CONFIG = {"history.maxInFlightUpdates": "200"}


def dev_server_command(
    *, db_file: Path, ip: str = "127.0.0.1", port: int = 7233, ui_port: int = 8233, headless: bool = False,
    ui_codec_endpoint: str | None = None,
) -> list[str]:
    """The `temporal server start-dev` command line; ``ui_codec_endpoint`` is where the Web UI's
    browser sends payloads to decode (it may hold a capability token: never log this command)."""
    command = [
        temporal_cli(), "server", "start-dev",
        "--db-filename", str(db_file),
        "--ip", ip, "--port", str(port),
        "--log-level", "warn",
    ]
    command += ["--headless"] if headless else ["--ui-port", str(ui_port)]
    if ui_codec_endpoint and not headless:
        command += ["--ui-codec-endpoint", ui_codec_endpoint]
    for pragma in SQLITE_PRAGMAS:
        command += ["--sqlite-pragma", pragma]
    for setting, value in DYNAMIC_CONFIG.items():
        command += ["--dynamic-config-value", f"{setting}={value}"]
    for key in SEARCH_ATTRIBUTES:
        command += ["--search-attribute", f"{key.name}=Keyword"]
    return command


class DevServer:
    """A dev server child process, started and stopped by PID."""

    def __init__(self, *, db_file: Path, ip: str = "127.0.0.1", port: int = 7233, ui_port: int = 8233,
                 log_file: Path | None = None, headless: bool = False, ui_codec_endpoint: str | None = None) -> None:
        self.address = f"{ip}:{port}"
        self.ui_url = None if headless else f"http://{ip}:{ui_port}"
        self._command = dev_server_command(db_file=db_file, ip=ip, port=port, ui_port=ui_port, headless=headless,
                                           ui_codec_endpoint=ui_codec_endpoint)
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 60.0) -> Client:
        """Start the server and return a client once it answers."""
        log = open(self._log_file, "ab") if self._log_file else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = asyncio.get_running_loop().time() + timeout
        last_error: Exception | None = None
        while asyncio.get_running_loop().time() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"temporal dev server exited with code {self._process.returncode}"
                                   + (f"; see {self._log_file}" if self._log_file else ""))
            try:
                return await Client.connect(self.address, data_converter=data_converter())
            except RuntimeError as error:
                last_error = error
                await asyncio.sleep(0.2)
        self.stop()
        raise RuntimeError(f"temporal dev server did not answer on {self.address}: {last_error}")

    def stop(self, timeout: float = 15.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
