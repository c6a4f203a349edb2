"""Alerts that start a database failover: a declared database's `alerts` (PostgresPrimaryDown) naming it in `database`.

A firing one starts `DatabaseFailoverWorkflow` under the ID `zerotouch recovery` uses
(`recovery_id("database", cluster, name)`); a repeat (Alertmanager re-sends a firing alert every
group_interval) joins the failover already running, so one database never has two. The failover
confirms the primary is down itself, so an alert only asks. A resolved one is accepted and dropped.
An alert of these names whose `database` label is not a declared database (or not a name at all)
starts nothing: it is logged and left to the incident path, so it never goes unseen.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from temporalio.client import Client

from starters.db_failover import start_database_failover
from zerotouch.recovery import DatabaseFailoverInput
from zerotouch.recovery_databases import DATABASE_NAME, DatabaseFailoverTarget

log = logging.getLogger("zerotouch.relay")
REQUESTED_BY = "alertmanager"
DATABASE_LABEL = "database"  # as the failover labels its own escalations (workflows/db_failover/guard.py)


def failover_database(labels: Mapping[str, str], databases: Mapping[str, DatabaseFailoverTarget]) -> str | None:
    """The declared database this alert asks to fail over, or None (not such an alert, or no usable label)."""
    alertname = labels.get("alertname", "")
    if not any(alertname in target.alerts for target in databases.values()):
        return None
    name = labels.get(DATABASE_LABEL, "")
    target = databases.get(name) if re.fullmatch(DATABASE_NAME, name) else None
    if target is None or alertname not in target.alerts:
        log.warning("%s names no database of recovery.databases that takes it (%s=%r; declared: %s): no failover "
                    "started, it goes to its incident instead", alertname, DATABASE_LABEL, name[:100],
                    ", ".join(sorted(databases)))
        return None
    return name


async def start_failover(client: Client, cluster: str, database: str, reason: str) -> str:
    """Start the database's failover, or join the one running (as `zerotouch recovery` does); its workflow ID."""
    handle = await start_database_failover(client, DatabaseFailoverInput(
        database=database, cluster=cluster, reason=reason, requested_by=REQUESTED_BY))
    return handle.id
