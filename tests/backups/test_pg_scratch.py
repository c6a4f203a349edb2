"""The throwaway server of a test restore: it starts despite a stolen port, and a sweep stops and
removes one left running, through pg_ctl or, when pg_ctl cannot, by killing exactly its processes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.backup_postgres import PostgresEngine
from activities.pg_binaries import PostgresBinariesMissing, find_bin_dir
from activities.pg_scratch import ScratchServer
from tests.backups.conftest_pg import processes_in, scratch_root
from zerotouch.backups import BackupTarget

TARGET = BackupTarget(name="app", engine="postgres", connection="main", database="app")


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    try:
        return find_bin_dir()
    except PostgresBinariesMissing as error:
        pytest.fail(str(error))  # CI installs PostgreSQL: a missing server is a broken setup, not a skip


@pytest.fixture
def scratch() -> Iterator[Path]:
    with scratch_root() as root:
        yield root / "verification"


def _answers(server: ScratchServer) -> None:
    server.wait_for("accepting connections", lambda c: c.execute("SELECT 1").fetchone() is not None,
                    user="postgres", timeout=60)


def _started(scratch: Path, bin_dir: Path, port_taken: bool = False) -> ScratchServer:
    scratch.mkdir()
    server = ScratchServer(scratch, bin_dir)
    server.initdb("postgres", 120)
    server.configure({})
    with socket.socket() as squatter:
        if port_taken:
            squatter.bind(("127.0.0.1", server.port))
            squatter.listen()
        server.start()
        _answers(server)
    return server


def test_a_port_taken_meanwhile_is_replaced(scratch: Path, bin_dir: Path) -> None:
    engine = PostgresEngine(dsn_for=lambda _: "", bin_dir=bin_dir)
    try:
        server = _started(scratch, bin_dir, port_taken=True)  # and it answers, on another port
        assert "Address already in use" in server.log.read_text()
    finally:
        engine.sweep(TARGET, scratch)
    assert not scratch.exists()


@pytest.mark.parametrize("pg_ctl_works", [True, False], ids=["pg_ctl", "sigkill"])
def test_sweep_stops_a_leftover_cluster(scratch: Path, bin_dir: Path, tmp_path: Path, pg_ctl_works: bool) -> None:
    engine = PostgresEngine(dsn_for=lambda _: "", bin_dir=bin_dir)
    engine.sweep(TARGET, scratch)  # nothing there: fine
    try:
        _started(scratch, bin_dir)
        assert len(processes_in(scratch)) > 1  # the postmaster and its helpers
        if pg_ctl_works:
            engine.sweep(TARGET, scratch)
        else:
            broken = tmp_path / "bin"
            broken.mkdir()
            (broken / "pg_ctl").write_text("#!/bin/sh\nexit 1\n")
            (broken / "pg_ctl").chmod(0o755)
            PostgresEngine(dsn_for=lambda _: "", bin_dir=broken).sweep(TARGET, scratch)
        assert not scratch.exists()
        assert processes_in(scratch) == []
    finally:
        engine.sweep(TARGET, scratch)
