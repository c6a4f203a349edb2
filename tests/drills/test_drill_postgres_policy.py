"""A postgres_primary_stop drill names a database the policy can fail over; its alert route reads only labels."""

from __future__ import annotations

from typing import Any

import pytest

from starters.relay.db_failover import failover_database
from zerotouch.policy import PolicyError, parse_policy
from zerotouch.recovery_databases import DatabaseFailoverTarget

SERVER = {"connection": "main", "host": "127.0.0.1"}
ORDERS = {"primary": SERVER, "replica": {**SERVER, "port": 5433}}


def _policy(target: str, databases: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"recovery": {"databases": {"orders": ORDERS} if databases is None else databases},
            "drills": {"drills": [{"name": "pg", "fault": "postgres_primary_stop", "target": target}]}}


@pytest.mark.parametrize(("document", "message"), [
    (_policy("shop/orders"), "targets postgres/<name"),
    (_policy("postgres/orders/extra"), "targets postgres/<name"),
    (_policy("postgres/payments"), "'payments' is not in recovery.databases"),
    (_policy("postgres/orders", databases={}), "declared: none"),
])
def test_a_postgres_drill_must_name_a_declared_database(document: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(document)


def test_a_declared_database_takes_the_drill_and_its_alert_by_default() -> None:
    policy = parse_policy(_policy("postgres/orders"))
    assert policy.drills.named("pg").target_name == "orders"
    assert policy.recovery.databases["orders"].alerts == ["PostgresPrimaryDown"]


@pytest.mark.parametrize(("labels", "database"), [
    ({"alertname": "PostgresPrimaryDown", "database": "orders"}, "orders"),
    ({"alertname": "OrdersDown", "database": "orders"}, "orders"),  # the database's own alert name
    ({"alertname": "PostgresPrimaryDown", "database": "payments"}, None),  # not declared
    ({"alertname": "PostgresPrimaryDown", "database": "orders\n"}, None),  # not a name
    ({"alertname": "PostgresPrimaryDown"}, None),  # no label
    ({"alertname": "KubePodCrashLooping", "database": "orders"}, None),  # not a failover alert
    ({"alertname": "PostgresPrimaryDown", "database": "billing"}, None),  # billing takes only its own alert
])
def test_the_route_starts_a_failover_only_for_a_declared_database_and_its_alerts(
        labels: dict[str, str], database: str | None) -> None:
    databases = {"orders": DatabaseFailoverTarget.model_validate({**ORDERS, "alerts": ["PostgresPrimaryDown",
                                                                                        "OrdersDown"]}),
                 "billing": DatabaseFailoverTarget.model_validate({**ORDERS, "alerts": ["BillingDown"]})}
    assert failover_database(labels, databases) == database
