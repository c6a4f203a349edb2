"""Real servers as child processes of the test: started on free loopback ports, killed by PID.

Everything here is asyncio, so a test that kills and restarts a process keeps serving its
in-process workers meanwhile (a blocking wait would starve them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from embedded.devserver import dev_server_command
from zerotouch.names import KUBERNETES_QUEUE
from zerotouch.temporal import data_converter


class ChildProcess:
    """One child process; `kill()` is SIGKILL to its PID, `stop()` asks politely first."""

    def __init__(self, command: Sequence[str], log_file: Path, *, cwd: Path | None = None) -> None:
        self.command = list(command)
        self.log_file = log_file
        self.cwd = cwd
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def spawn(self) -> None:
        with self.log_file.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self.command, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                cwd=self.cwd, start_new_session=True,
            )

    def exited_early(self) -> str | None:
        if self._process is not None and self._process.returncode is not None:
            return f"{self.command[0]} exited with {self._process.returncode}; log: {self.log_file}"
        return None

    async def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, in-flight work is lost exactly as in a crash."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()

    async def stop(self, timeout: float = 15.0) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            await self.kill()


class TemporalDevServer(ChildProcess):
    """The dev server `zerotouch up` runs (SQLite file, WAL pragmas), headless, on a fixed port."""

    def __init__(self, *, db_file: Path, port: int, log_file: Path) -> None:
        super().__init__(dev_server_command(db_file=db_file, port=port, headless=True), log_file)
        self.address = f"127.0.0.1:{port}"

    async def start(self, timeout: float = 90.0) -> Client:
        """Start it and return a client once the frontend answers."""
        await self.spawn()
        return await self.connect(timeout)

    async def connect(self, timeout: float = 90.0) -> Client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_error: Exception | None = None
        while loop.time() < deadline:
            if (exited := self.exited_early()) is not None:
                raise RuntimeError(exited)
            try:
                client = await Client.connect(self.address, data_converter=data_converter())
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
                return client
            except RuntimeError as error:
                last_error = error
                await asyncio.sleep(0.2)
        raise RuntimeError(f"temporal dev server did not answer on {self.address}: {last_error}")


class KubernetesWorkerProcess(ChildProcess):
    """`zerotouch worker --queue zerotouch-kubernetes` as its own OS process, like a pod would run it."""

    def __init__(self, *, address: str, cluster: str, kubernetes_url: str, workdir: Path, index: int) -> None:
        command = [
            sys.executable, "-m", "cli.parser", "worker",
            "--queue", KUBERNETES_QUEUE, "--cluster", cluster,
            "--kubernetes-url", kubernetes_url, "--address", address,
        ]
        super().__init__(command, workdir / f"kubernetes-worker-{index}.log", cwd=workdir)
