"""Child processes for tests that kill and restart servers: asyncio subprocesses, stopped by PID.

Blocking `subprocess` calls would stall workers and relays that run in the test's own
event loop, so everything here awaits. Every process is stopped by its own PID
(SIGTERM, then SIGKILL), never by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
from temporalio.client import Client

from embedded.devserver import dev_server_command
from zerotouch.temporal import data_converter


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from /proc/PID/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid} (a zombie?)")


def zerotouch_command(*args: str) -> list[str]:
    """`zerotouch ARGS` run by this interpreter, so the PID is the Python process itself."""
    return [sys.executable, "-m", "cli.parser", *args]


class ChildProcess:
    """One child process with its output in a log file."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path, name: str) -> None:
        self._process = process
        self.log = log
        self.name = name

    @classmethod
    async def start(cls, command: Sequence[str], *, log: Path, name: str,
                    env: Mapping[str, str] | None = None) -> ChildProcess:
        with log.open("ab") as output:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        return cls(process, log, name)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process.returncode is None

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def check_alive(self) -> None:
        if not self.running:
            raise AssertionError(f"{self.name} (pid {self.pid}) exited with {self._process.returncode}; "
                                 f"log {self.log}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGKILL)
        await self._process.wait()

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._process.wait(), timeout)
            except TimeoutError:
                await self.kill()
        await self._process.wait()


async def wait_http(url: str, process: ChildProcess, *, timeout: float = 60.0, expect: int | None = 200) -> None:
    """Poll ``url`` until it answers (with ``expect``, or anything if None); fail if the process dies."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(timeout=2.0) as http:
        while asyncio.get_running_loop().time() < deadline:
            process.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                answer = await http.get(url)
                if expect is None or answer.status_code == expect:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError(f"{process.name} did not answer {url} within {timeout}s; log:\n{process.tail()}")


class TemporalDevServer:
    """The Temporal dev server on a SQLite file, restartable on the same file and port."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.db_file = workdir / "temporal.db"
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._log = workdir / "temporal.log"
        self.process: ChildProcess | None = None

    async def start(self, timeout: float = 90.0) -> Client:
        """Start (or restart) the server and return a fresh client once it answers."""
        if self.process is not None and self.process.running:
            raise RuntimeError("dev server already running")
        command = dev_server_command(db_file=self.db_file, port=self.port, headless=True)
        self.process = await ChildProcess.start(command, log=self._log, name="temporal dev server")
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            self.process.check_alive()
            try:
                return await Client.connect(self.address, data_converter=data_converter())
            except RuntimeError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def kill(self) -> None:
        if self.process is not None:
            await self.process.kill()

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop()
