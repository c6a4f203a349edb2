"""Debian's Prometheus as a child of the test: on a free port, with a given config, stopped by PID."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from zerotouch.ports import free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


@contextlib.contextmanager
def running_prometheus(config: dict[str, Any]) -> Iterator[str]:
    """Prometheus with `config` (JSON is YAML); its URL once `/-/ready` answers. Fails when not installed."""
    if not os.path.exists(PROMETHEUS):
        pytest.fail("prometheus is not installed; .ci/run installs it (apt-get install prometheus)")
    workdir = Path(tempfile.mkdtemp(prefix="zt-prom-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        (workdir / "prometheus.yml").write_text(json.dumps(config))
        url = f"http://127.0.0.1:{free_port()}"
        with (workdir / "prometheus.log").open("wb") as log:
            process = subprocess.Popen(
                [PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address={url.removeprefix('http://')}"], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start: {(workdir / 'prometheus.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
