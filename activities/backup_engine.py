"""What every backup engine (PostgreSQL, MongoDB, Kubernetes objects) provides, and how it runs tools.

An engine writes a backup's files into a directory the repository gives it and reports what it
recorded (`EngineBackup`); it restores a backup into a scratch place named by the verification
(a throwaway cluster, database or namespace), runs its checks and reports them
(`EngineVerification`); and it removes a scratch place left behind by a killed worker
(`sweep`), which every verification attempt calls first and last. Tools run through
`run_tool`: an argument list (never a shell), a deadline, and the child killed if the calling
thread is interrupted (an activity cancelled or timed out).
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from zerotouch.backup_models import BackupManifest, EngineBackup, EngineVerification
from zerotouch.backups import BackupTarget

OUTPUT_LIMIT = 4000  # characters of a tool's output kept as evidence


class ToolFailed(RuntimeError):
    """A tool exited non-zero; the message holds its command name, status and the end of its output."""

    def __init__(self, command: Sequence[str], returncode: int, output: str) -> None:
        self.command, self.returncode, self.output = list(command), returncode, output
        super().__init__(f"{Path(command[0]).name} exited with status {returncode}: {output[-OUTPUT_LIMIT:].strip()}")


class BackupEngine(Protocol):
    def backup(self, target: BackupTarget, into: Path) -> EngineBackup:
        """Write the backup's files under ``into`` (empty, inside the repository's staging area)."""
        ...

    def verify(self, target: BackupTarget, manifest: BackupManifest, data: Path, *, scratch: Path,
               recovery_target_time: datetime | None) -> EngineVerification:
        """Restore ``data`` (read-only) into a scratch place under ``scratch`` and check it; never touch the source."""
        ...

    def prune(self, target: BackupTarget, kept: list[BackupManifest]) -> int:
        """After retention deleted backups: remove what only they needed (what else the engine keeps); a count."""
        ...

    def sweep(self, target: BackupTarget, scratch: Path) -> None:
        """Remove what a verification named ``scratch.name`` left behind (servers stopped first, scratch
        databases or namespaces dropped); finding nothing is fine."""
        ...


class SelfContainedBackups:
    """For engines whose backups need nothing beside them: retention deletes the backups, nothing else."""

    def prune(self, target: BackupTarget, kept: list[BackupManifest]) -> int:
        return 0


def run_tool(command: Sequence[str], *, timeout: float, env: dict[str, str] | None = None,
             stdout_path: Path | None = None, check: bool = True, cwd: Path | None = None) -> str:
    """Run a tool without a shell; return its output (stderr, and stdout unless redirected to a file).

    The child is killed if the deadline passes or this thread is interrupted (activity
    cancellation raises inside it), so nothing outlives the attempt that started it.
    """
    merged = {**os.environ, **(env or {})}
    stdout_file = stdout_path.open("wb") if stdout_path is not None else None
    try:
        process = subprocess.Popen(
            list(command), stdout=stdout_file if stdout_file else subprocess.PIPE, stderr=subprocess.PIPE,
            env=merged, cwd=cwd,
        )
        try:
            out, err = process.communicate(timeout=timeout)
        except BaseException:
            process.kill()
            process.wait()
            raise
    finally:
        if stdout_file is not None:
            stdout_file.close()
    text = (err or b"").decode("utf-8", "replace")
    if out:
        text = out.decode("utf-8", "replace") + text
    if check and process.returncode != 0:
        raise ToolFailed(command, process.returncode, text)
    return text


@functools.cache
def tool_version(path: str) -> str:
    """``pg_dump (PostgreSQL) 15.8`` → kept verbatim as evidence of what ran."""
    try:
        return run_tool([path, "--version"], timeout=30).strip()
    except (OSError, ToolFailed, subprocess.TimeoutExpired) as error:
        return f"unknown ({error})"

