"""Invariants every sequence of Governor decisions must satisfy, checked from the outside.

Shared by the pure property tests and the storms against the workflow: both hand in the
decisions actually returned, never the Governor's own bookkeeping.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from zerotouch.governor_models import GovernorSettings, GrantDecision, GrantRequest
from zerotouch.guardrails import cooldown_key


@dataclass
class Ledger:
    """What was asked, what was answered, and which grants were released, in order."""

    settings: GovernorSettings
    ordered: bool = True  # False when requests in a batch were concurrent: their true order is unknown
    decisions: list[tuple[datetime, GrantRequest, GrantDecision]] = field(default_factory=list)
    released: dict[str, int] = field(default_factory=dict)

    def release(self, grant_id: str) -> None:
        self.released.setdefault(grant_id, len(self.decisions))

    def first_grants(self) -> list[tuple[int, datetime, GrantRequest, GrantDecision]]:
        """Each grant once, in time order (concurrent requests may be recorded out of order)."""
        seen: set[str] = set()
        grants = []
        for index, (at, request, decision) in enumerate(self.decisions):
            if decision.granted and decision.grant_id not in seen:
                seen.add(str(decision.grant_id))
                grants.append((index, at, request, decision))
        return sorted(grants, key=lambda g: g[1])


def check(ledger: Ledger) -> None:
    settings = ledger.settings
    grants = ledger.first_grants()
    _idempotent(ledger)
    last_by_key: dict[str, datetime] = {}
    for _, at, request, decision in grants:
        key = cooldown_key(request)
        if key in last_by_key:
            assert at - last_by_key[key] >= settings.target_cooldown, f"{key} granted twice inside its cooldown"
        last_by_key[key] = at
        _replicas(settings, request, decision)
        _budget(settings, request, decision)
    times = [at for _, at, _, _ in grants]
    for start in times:
        inside = sum(1 for t in times if start <= t < start + timedelta(seconds=60))
        assert inside <= settings.global_rate_per_minute, f"{inside} grants within 60s of {start}"
    _blast_radius(ledger, grants)
    for _, _, decision in ledger.decisions:
        assert decision.reason and "\n" not in decision.reason
        assert decision.granted == (decision.code == "granted")


def _idempotent(ledger: Ledger) -> None:
    """Once granted, a request_id always gets that same grant (in order), never a second one."""
    first: dict[str, GrantDecision] = {}
    for _, request, decision in ledger.decisions:
        earlier = first.get(request.request_id)
        if earlier is not None and (ledger.ordered or decision.granted):
            assert decision == earlier, f"request {request.request_id} granted twice differently"
        elif decision.granted:
            first[request.request_id] = decision


def _replicas(settings: GovernorSettings, request: GrantRequest, decision: GrantDecision) -> None:
    got = decision.granted_replicas
    if request.desired_replicas is None:
        assert got is None
        return
    assert got is not None and settings.min_replicas <= got <= settings.max_replicas
    if request.current_replicas is not None:
        base = max(request.current_replicas, 1)
        assert math.ceil(base * settings.scale_down_min_factor - 1e-9) <= got
        assert got <= math.floor(base * settings.scale_up_max_factor + 1e-9)
        assert (got > request.current_replicas) == (request.desired_replicas > request.current_replicas)


def _budget(settings: GovernorSettings, request: GrantRequest, decision: GrantDecision) -> None:
    if settings.monthly_budget is None or (request.projected_nodes is None and request.current_nodes is None):
        return
    replicas = decision.granted_replicas
    up = (replicas is not None and replicas > (request.current_replicas or 0)) or (
        request.projected_nodes is not None and request.projected_nodes > (request.current_nodes or 0))
    if up:
        nodes = request.projected_nodes if request.projected_nodes is not None else request.current_nodes or 0
        cost = nodes * settings.cost_per_node + (replicas or 0) * settings.cost_per_replica
        assert cost < settings.monthly_budget * settings.budget_block_at + 1e-6, f"scale-up granted at €{cost}"


def _blast_radius(ledger: Ledger, grants: list[tuple[int, datetime, GrantRequest, GrantDecision]]) -> None:
    # Releases are only trusted when they happened before the grant was asked for (by index):
    # between concurrent batches in the storms, exactly in the pure tests.
    settings = ledger.settings
    running: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for index, at, request, decision in grants:
        live = [
            (t, g) for t, g in running[request.namespace]
            if t > at - settings.in_flight_timeout and ledger.released.get(g, index + 1) > index
        ]
        assert len(live) < settings.max_in_flight_per_namespace, f"blast radius exceeded in {request.namespace}"
        running[request.namespace] = [*live, (at, str(decision.grant_id))]
