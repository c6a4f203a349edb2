"""Where PostgreSQL's programs are, and the user its servers run as.

The programs: `initdb` on PATH first, else the newest Debian install.

Debian keeps every major version under ``/usr/lib/postgresql/<N>/bin`` and puts only wrappers
(or nothing) on PATH, so the server binaries are looked up the way the tests do it
(`tests/support/postgres.py`), but from production code, which may not import the tests.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

DEBIAN_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "nobody"  # PostgreSQL refuses to run as root
_NEEDED = ("initdb", "pg_ctl", "postgres")


class PostgresBinariesMissing(RuntimeError):
    """No directory with PostgreSQL's server programs; the message says what to install."""


def _has_server_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in _NEEDED)


def _version_key(directory: Path) -> tuple[int, ...]:
    """`/usr/lib/postgresql/15/bin` → (15,); `9.6` → (9, 6); anything else sorts first."""
    try:
        return tuple(int(part) for part in directory.parent.name.split("."))
    except ValueError:
        return ()


@functools.cache
def find_bin_dir() -> Path:
    """The directory holding `initdb`, `pg_ctl` and `postgres` (and, on Debian, the client tools)."""
    on_path = shutil.which("initdb")
    if on_path:
        # A symlink on PATH (/usr/local/bin/initdb) points into the directory that has the rest,
        # including the client tools a symlinked PATH directory may lack (pg_basebackup, pg_verifybackup).
        for directory in (Path(on_path).resolve().parent, Path(on_path).parent):
            if _has_server_binaries(directory):
                return directory
    installed = sorted((d for d in DEBIAN_ROOT.glob("*/bin") if _has_server_binaries(d)), key=_version_key)
    if installed:
        return installed[-1]
    raise PostgresBinariesMissing(
        f"PostgreSQL's server programs are not installed (no initdb on PATH or in {DEBIAN_ROOT}/*/bin): "
        "install them (Debian/Ubuntu: apt-get install postgresql) on the backup worker")


def as_server_user(user: str = SERVER_USER) -> list[str]:
    """The prefix that runs a server program as ``user`` when we are root (PostgreSQL refuses root)."""
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []
