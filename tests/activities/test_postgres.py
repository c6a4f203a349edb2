"""terminate_idle_connections and get_connection_usage against a throwaway PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from temporalio.exceptions import ApplicationError

from activities.postgres import ConnectionUsageRequest, PostgresActivities
from tests.support.postgres import Postgres
from zerotouch.models import ActionRequest
from zerotouch.ports import free_port

from .conftest import Env


@pytest.fixture
def app_role(postgres: Postgres) -> Iterator[str]:
    """A fresh non-superuser role, as an application would connect with."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.admin_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
    try:
        yield role
    finally:
        with psycopg.connect(postgres.admin_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            admin.execute(f"DROP ROLE {role}")


@pytest.fixture
def activities(postgres: Postgres) -> PostgresActivities:
    return PostgresActivities(dsn_for=lambda ref: {"main": postgres.admin_dsn}[ref])


def terminate(**params: Any) -> ActionRequest:
    return ActionRequest(action="terminate_idle_connections", namespace="db", name="main", params=params,
                         idempotency_key="k", incident_id="incident-test")


def alive(connection: psycopg.Connection[Any]) -> bool:
    try:
        connection.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def test_terminates_only_long_idle_client_sessions(postgres: Postgres, app_role: str,
                                                   activities: PostgresActivities, activity_env: Env) -> None:
    idle = [psycopg.connect(postgres.dsn(app_role), autocommit=True) for _ in range(3)]
    admin_idle = psycopg.connect(postgres.admin_dsn, autocommit=True)  # a superuser's shell is left alone
    busy = psycopg.connect(postgres.dsn(app_role), autocommit=True)
    busy_result: list[object] = []
    worker = threading.Thread(target=lambda: busy_result.append(busy.execute("SELECT pg_sleep(2.5)").fetchone()))
    connections = [*idle, admin_idle, busy]
    try:
        worker.start()
        time.sleep(1.5)  # state_change cannot be backdated: let the sessions age past the threshold
        fresh = psycopg.connect(postgres.dsn(app_role), autocommit=True)
        connections.append(fresh)
        result = activity_env.env.run(activities.terminate_idle_connections, terminate(idle_for_seconds=1))
        assert result.applied and result.after["terminated"] == 3
        assert result.after["by_user"] == {app_role: 3}
        assert [alive(c) for c in idle] == [False, False, False]
        assert alive(admin_idle) and alive(fresh)
        worker.join(timeout=5)
        assert busy_result == [("",)] and alive(busy)  # the active query finished undisturbed
    finally:
        worker.join(timeout=5)
        for connection in connections:
            connection.close()


def test_respects_max_terminate_and_database(postgres: Postgres, app_role: str, activities: PostgresActivities,
                                             activity_env: Env) -> None:
    idle = [psycopg.connect(postgres.dsn(app_role), autocommit=True) for _ in range(3)]
    try:
        time.sleep(1.2)
        other_db = activity_env.env.run(activities.terminate_idle_connections,
                                        terminate(idle_for_seconds=1, database="template1"))
        assert other_db.after["terminated"] == 0
        limited = activity_env.env.run(activities.terminate_idle_connections,
                                       terminate(idle_for_seconds=1, max_terminate=2))
        assert limited.after["terminated"] == 2 and "limit of 2" in limited.detail
        assert sum(alive(c) for c in idle) == 1
    finally:
        for connection in idle:
            connection.close()


def test_connection_usage(postgres: Postgres, activities: PostgresActivities, activity_env: Env) -> None:
    usage = activity_env.env.run(activities.get_connection_usage, ConnectionUsageRequest(reference="main"))
    assert usage.max == 40 and 1 <= usage.used <= usage.max
    assert usage.percent == round(100 * usage.used / 40, 1)


@pytest.mark.parametrize("reference", ["other", "../main", "main; DROP TABLE x"])
def test_unknown_or_malformed_reference(activities: PostgresActivities, activity_env: Env, reference: str) -> None:
    with pytest.raises(ApplicationError) as caught:
        activity_env.env.run(activities.terminate_idle_connections,
                             terminate().model_copy(update={"name": reference}))
    assert caught.value.type == "InvalidTarget" and caught.value.non_retryable


def test_unreachable_server_is_retryable(activity_env: Env) -> None:
    down = PostgresActivities(dsn_for=lambda _: f"host=127.0.0.1 port={free_port()} user=x dbname=x")
    with pytest.raises(ApplicationError) as caught:
        activity_env.env.run(down.terminate_idle_connections, terminate())
    assert caught.value.type == "DatabaseUnavailable" and not caught.value.non_retryable
