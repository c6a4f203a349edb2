"""py-spy attached to a child for a while: where its busy samples went, as report lines.

Used after a scenario's measured samples (never during them: sampling costs the target time).
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType

# Leaf frames of a thread that is waiting, not working.
_IDLE_LEAVES = ("select (selectors.py", "wait (threading.py", "_worker (concurrent/futures/thread.py",
                "readinto (socket.py", "wait_sync (temporalio/common.py", "sleep (", "poll (")
_OURS = re.compile(r"\((zerotouch|workflows|activities|starters|workers)/")
_WATCHED = {
    "yaml parsing (yaml.safe_load)": "safe_load (yaml/__init__.py",
    "workflow sandbox: new workflow instance (re-imports the workflow module)":
        "_create_instance (temporalio/worker/workflow_sandbox/_runner.py",
    "pydantic validation": "validate_python (pydantic",
    "uvicorn HTTP protocol": "(uvicorn/protocols/http/",
    "FastAPI/Starlette routing": "(starlette/",
    "Temporal client RPC (Python side)": "_rpc_call (temporalio/service.py",
    "kubernetes client": "(kubernetes/client/",
}


class Profile:
    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("py-spy") is not None

    def __enter__(self) -> Profile:
        self._process = subprocess.Popen(
            ["py-spy", "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw",
             "--nonblocking", "--threads", "-o", str(self.out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def summary(self, top: int = 6) -> list[str]:
        """Share of busy samples (inclusive) for the watched library hot spots and our own functions."""
        if not self.out.exists():
            return ["py-spy wrote no profile (is ptrace allowed?)"]
        inclusive: collections.Counter[str] = collections.Counter()
        watched: collections.Counter[str] = collections.Counter()
        busy = 0
        for line in self.out.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            frames = stack.split(";")
            if any(marker in frames[-1] for marker in _IDLE_LEAVES):
                continue
            count = int(count_text)
            busy += count
            names = {re.sub(r":\d+\)$", ")", frame) for frame in frames}
            for name in names:
                if _OURS.search(name) and "<module>" not in name and "run (cli/main.py)" not in name:
                    inclusive[name] += count
            for label, marker in _WATCHED.items():
                if any(marker in name for name in names):
                    watched[label] += count
        if not busy:
            return ["no busy samples"]
        lines = [f"{label}: {count / busy:.0%}" for label, count in watched.most_common() if count / busy >= 0.02]
        skip = ("main (cli/main.py)", "invoke (cli/main.py)")
        ours = [(name, count) for name, count in inclusive.most_common() if not name.startswith(skip)][:top]
        lines += [f"`{name}`: {count / busy:.0%}" for name, count in ours]
        return [f"{busy} busy samples at {self.rate} Hz; inclusive shares: " + "; ".join(lines)]
