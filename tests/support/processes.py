"""Real servers as child processes of the test, for tests that kill and restart them.

Everything here is asyncio: blocking `subprocess` calls would stall the workers and relays
that run in the test's own event loop while a child is killed and restarted. Every process
is stopped by its own PID (SIGTERM, then SIGKILL; or SIGKILL at once, as a crash), never by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from embedded.devserver import dev_server_command
from zerotouch.names import KUBERNETES_QUEUE
from zerotouch.ports import free_port
from zerotouch.temporal import data_converter


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from /proc/PID/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid} (a zombie?)")


def interrupt(process: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    """Stop a `zerotouch up` child as Ctrl-C does (it stops everything it started), then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def zerotouch_command(*args: str) -> list[str]:
    """`zerotouch ARGS` run by this interpreter, so the PID is the Python process itself."""
    return [sys.executable, "-m", "cli", *args]


class ChildProcess:
    """One child process with its output appended to a log file; `spawn()` (re)starts it.

    ``new_session`` puts the child in its own session, so a Ctrl-C meant for pytest does not
    reach it: only the test's own `kill()`/`stop()` ends it.
    """

    def __init__(self, command: Sequence[str], log: Path, *, name: str | None = None, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None, new_session: bool = False) -> None:
        self.command = list(command)
        self.log = log
        self.name = name or Path(self.command[0]).name
        self.cwd = cwd
        self.env = dict(env or {})
        self.new_session = new_session
        self._process: asyncio.subprocess.Process | None = None

    @classmethod
    async def start(cls, command: Sequence[str], *, log: Path, name: str,
                    env: Mapping[str, str] | None = None) -> ChildProcess:
        """Construct and spawn in one step."""
        child = cls(command, log, name=name, env=env)
        await child.spawn()
        return child

    @property
    def log_file(self) -> Path:
        return self.log

    async def spawn(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} (pid {self.pid}) is already running")
        with self.log.open("ab") as output:
            self._process = await asyncio.create_subprocess_exec(
                *self.command, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=asyncio.subprocess.STDOUT,
                cwd=self.cwd, env={**os.environ, **self.env}, start_new_session=self.new_session,
            )

    @property
    def pid(self) -> int:
        assert self._process is not None, f"{self.name} not started"
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def exited_early(self) -> str | None:
        """Why the process is no longer running (None while it runs or before it started)."""
        if self._process is not None and self._process.returncode is not None:
            return f"{self.name} (pid {self.pid}) exited with {self._process.returncode}; log {self.log}"
        return None

    def check_alive(self) -> None:
        if (exited := self.exited_early()) is not None:
            raise AssertionError(f"{exited}:\n{self.tail()}")

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, in-flight work is lost exactly as in a crash."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
        await process.wait()

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                await self.kill()
        await process.wait()


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
    """The dev server `zerotouch up` runs (SQLite file, WAL pragmas), headless, restartable on the same
    file and port. Its files go in ``workdir`` (temporal.db, temporal.log) unless given one by one."""

    def __init__(self, workdir: Path | None = None, *, port: int | None = None, db_file: Path | None = None,
                 log_file: Path | None = None) -> None:
        if workdir is not None:
            db_file = db_file or workdir / "temporal.db"
            log_file = log_file or workdir / "temporal.log"
        if db_file is None or log_file is None:
            raise TypeError("TemporalDevServer needs a workdir, or both db_file and log_file")
        self.db_file = db_file
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process = ChildProcess(dev_server_command(db_file=db_file, port=self.port, headless=True), log_file,
                                    name="temporal dev server", new_session=True)

    async def start(self, timeout: float = 90.0) -> Client:
        """Start (or restart, on the same file and port) and return a client once the frontend answers."""
        await self.spawn()
        return await self.connect(timeout)

    async def spawn(self) -> None:
        await self.process.spawn()

    async def connect(self, timeout: float = 90.0) -> Client:
        """A fresh client once the frontend answers; fails at once if the server exited."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_error: Exception | None = None
        while loop.time() < deadline:
            if (exited := self.process.exited_early()) is not None:
                raise RuntimeError(f"{exited}:\n{self.process.tail()}")
            try:
                client = await Client.connect(self.address, data_converter=data_converter())
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
                return client
            except RuntimeError as error:
                last_error = error
                await asyncio.sleep(0.2)
        raise RuntimeError(f"temporal dev server did not answer on {self.address}: {last_error}")

    async def kill(self) -> None:
        await self.process.kill()

    async def stop(self) -> None:
        await self.process.stop()


class KubernetesWorkerProcess(ChildProcess):
    """`zerotouch worker --queue zerotouch-kubernetes` as its own OS process, like a pod would run it."""

    def __init__(self, *, address: str, cluster: str, kubernetes_url: str, workdir: Path, index: int) -> None:
        super().__init__(
            zerotouch_command("worker", "--queue", KUBERNETES_QUEUE, "--cluster", cluster,
                              "--kubernetes-url", kubernetes_url, "--address", address),
            workdir / f"kubernetes-worker-{index}.log", name=f"kubernetes worker {index}", cwd=workdir,
            new_session=True,
        )
