"""A test restore of a dump: `pg_restore --list`, then a restore into a fresh throwaway cluster.

Ownership, grants and tablespaces are not restored (``--no-owner --no-privileges
--no-tablespaces``): the scratch cluster has none of the source's roles or tablespace
directories, and what is verified is the data, not where it lives or who may read it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from activities.backup_engine import ToolFailed, run_tool, tool_version
from activities.pg_content import check_tables, newest_canary, run_assertions
from activities.pg_evidence import Evidence, not_run
from activities.pg_restore_physical import RestoreSettings
from activities.pg_scratch import RestoreFailed, ScratchServer
from zerotouch.backup_models import BackupManifest, EngineVerification
from zerotouch.backups import BackupTarget

SUPERUSER = "postgres"


def _answers(connection: psycopg.Connection[Any]) -> bool:
    return connection.execute("SELECT true").fetchone() is not None


def verify_logical(target: BackupTarget, manifest: BackupManifest, data: Path, scratch: Path,
                   settings: RestoreSettings) -> EngineVerification:
    evidence = Evidence()
    started_at = datetime.now(UTC)
    pg_restore = str(settings.bin_dir / "pg_restore")
    evidence.tool_versions = {"pg_restore": tool_version(pg_restore),
                              "postgres": tool_version(str(settings.bin_dir / "postgres"))}
    snapshot_at = manifest.consistent_at.isoformat() if manifest.consistent_at else "unknown time"
    evidence.recovery_target = f"the dump's snapshot ({snapshot_at})"
    later = [f"table {t}" for t in sorted(manifest.tables)] + [f"assertion {a.name}" for a in target.assertions]
    # pg_restore only reads the dump, so the repository's copy is used in place.
    dump = data / str(manifest.details.get("dump", f"{target.database}.dump"))
    with evidence.phase("pg_restore_list"):
        listing = run_tool([pg_restore, "--list", str(dump)], timeout=settings.tool_timeout, check=False)
    entries = sum(1 for line in listing.splitlines() if line and not line.startswith(";") and "; " in line)
    if not evidence.add("pg_restore --list", entries > 0 and "error" not in listing.lower(),
                        f"{entries} entries" if entries and "error" not in listing.lower() else listing[-4000:],
                        evidence.durations["pg_restore_list"]):
        evidence.add("restore", False, not_run(later))
        return evidence.result()

    server = ScratchServer(scratch, settings.bin_dir, user=settings.user, heartbeat=settings.beat)
    restore_started = time.monotonic()
    try:
        settings.beat("creating a scratch cluster")
        with evidence.phase("create_cluster"):
            server.initdb(SUPERUSER, settings.tool_timeout)
            server.configure({"shared_buffers": "128MB"})
            server.start()
            server.wait_for("accepting connections", _answers, user=SUPERUSER, timeout=settings.timeout)
            with server.connect(SUPERUSER, "postgres") as connection:
                connection.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0")
                                   .format(sql.Identifier(target.database)))
        settings.beat("pg_restore")
        with evidence.phase("pg_restore"):
            run_tool([pg_restore, "-h", str(server.socket_dir), "-p", str(server.port), "-U", SUPERUSER,
                      "-d", target.database, "--exit-on-error", "--no-owner", "--no-privileges", "--no-tablespaces",
                      str(dump)],
                     timeout=settings.tool_timeout)
    except (RestoreFailed, ToolFailed, psycopg.Error) as error:
        evidence.add("restore", False, f"{error}\n{not_run(later)}")
        return evidence.result()
    evidence.add("restore", True, f"pg_restore into a scratch cluster took {evidence.durations['pg_restore']:.2f}s")
    try:
        with server.connect(SUPERUSER, target.database) as connection:
            with evidence.phase("table_checks"):
                evidence.extend(check_tables(connection, manifest.tables))
            with evidence.phase("assertions"):
                evidence.extend(run_assertions(connection, target.assertions))
            answered = time.monotonic()
            if target.canary_table:
                # A dump loses everything after its snapshot: measured against when this restore began.
                evidence.measure_rpo(newest_canary(connection, target.canary_table), started_at)
    except psycopg.Error as error:  # the restored server went away under the checks
        done = {check.name for check in evidence.checks}
        evidence.add("checks", False, f"{error}\n{not_run([n for n in later if n not in done])}")
        return evidence.result()
    evidence.rto_seconds = round(answered - restore_started - evidence.durations["table_checks"], 3)
    return evidence.result()
