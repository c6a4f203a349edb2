"""The backup engines a backup worker uses, built on first use (a PostgreSQL-only site needs no kubeconfig)."""

from __future__ import annotations

from collections.abc import Callable

from temporalio import activity

from activities.backup_engine import BackupEngine
from zerotouch.backups import Engine
from zerotouch.settings import WorkerSettings


def _heartbeat(detail: str) -> None:
    if activity.in_activity():
        activity.heartbeat(detail)


def engines(settings: WorkerSettings) -> Callable[[Engine], BackupEngine]:
    built: dict[Engine, BackupEngine] = {}

    def engine_for(engine: Engine) -> BackupEngine:
        if engine not in built:
            if engine == "postgres":
                from activities.backup_postgres import PostgresEngine
                from workers.clients import postgres_dsn_for

                built[engine] = PostgresEngine(dsn_for=postgres_dsn_for, heartbeat=_heartbeat)
            elif engine == "mongodb":
                from activities.backup_mongodb import MongoEngine
                from workers.clients import mongo_url_for

                built[engine] = MongoEngine(url_for=mongo_url_for, heartbeat=_heartbeat)
            else:
                from activities.backup_kubernetes import KubernetesObjectsEngine
                from workers.clients import kubernetes_api_client

                built[engine] = KubernetesObjectsEngine(api_client=kubernetes_api_client(settings),
                                                        heartbeat=_heartbeat)
        return built[engine]

    return engine_for
