"""`zerotouch up --sandbox` for the console tests: free ports, every action waiting for an approver."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.support.policies import fast_policy
from tests.support.processes import interrupt
from zerotouch.ports import free_port


class ConsoleUp:
    """`zerotouch up --sandbox` where every action waits for an approver (mode approve-all), stopped by PID."""

    def __init__(self, workdir: Path) -> None:
        self.state_dir = workdir / "state"
        self.ports = {"temporal": free_port(), "ui": free_port(), "relay": free_port(), "sandbox": free_port()}
        self.ui = f"http://127.0.0.1:{self.ports['ui']}"
        self.temporal = f"127.0.0.1:{self.ports['temporal']}"
        policy = fast_policy(workdir / "policy.yaml")
        document = yaml.safe_load(policy.read_text())
        document["mode"] = "approve-all"
        policy.write_text(yaml.safe_dump(document, sort_keys=False))
        self.log_path = workdir / "up.log"
        command = [sys.executable, "-m", "cli", "up", "--sandbox", "--no-monitoring",
                   "--state-dir", str(self.state_dir), "--policy", str(policy)]
        for name, port in self.ports.items():
            command += [f"--{name}-port", str(port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def wait_up(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not (self.state_dir / "endpoints.json").exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"`zerotouch up` did not come up:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)

    def cli(self, *args: str) -> str:
        """A `zerotouch` command against this `up`; its stdout."""
        result = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "ZEROTOUCH_STATE_DIR": str(self.state_dir)})
        assert result.returncode == 0, f"zerotouch {' '.join(args)} failed: {result.stderr}"
        return result.stdout

    def stop(self) -> int:
        return interrupt(self.process)
