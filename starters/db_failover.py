"""Starting a database failover: one `DatabaseFailoverWorkflow` per database (and cluster), never two at once.

`zerotouch recovery` calls `start_database_failover`; approve and abort are the workflow's
``approve`` / ``abort`` updates, and ``recovery_status`` its query, like every recovery.
"""

from __future__ import annotations

import re
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from zerotouch.names import WORKFLOWS_QUEUE, queue_for
from zerotouch.recovery import DATABASE_FAILOVER_WORKFLOW, DatabaseFailoverInput, recovery_id
from zerotouch.recovery_databases import DATABASE_NAME


def failover_workflow_id(database: str, cluster: str = "") -> str:
    """``zerotouch-recovery-database-[<cluster>-]<database>``."""
    return recovery_id("database", cluster, database)


async def start_database_failover(client: Client, params: DatabaseFailoverInput) -> WorkflowHandle[Any, Any]:
    """Start the failover of ``params.database``; one already running is returned instead (never a second)."""
    if not re.match(DATABASE_NAME, params.database):
        raise ValueError(f"database {params.database!r} is not a policy name (a-z, 0-9, '-'): see recovery.databases")
    return await client.start_workflow(
        DATABASE_FAILOVER_WORKFLOW, params, id=failover_workflow_id(params.database, params.cluster),
        task_queue=queue_for(WORKFLOWS_QUEUE, params.cluster),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
