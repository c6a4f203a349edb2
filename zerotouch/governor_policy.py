"""The Governor's settings, read off the policy, so one file configures every limit."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ValidationError

from zerotouch import scaling
from zerotouch.action_params import ScaleDeploymentParams
from zerotouch.governor_models import GovernorSettings, GrantRequest
from zerotouch.node_lease_models import NodeLeaseRequest
from zerotouch.policy import Policy


def governor_settings(policy: Policy) -> GovernorSettings:
    guard, budget, nodes = policy.guardrails, policy.budget, policy.recovery.nodes
    return GovernorSettings(
        target_cooldown=guard.target_cooldown,
        global_rate_per_minute=guard.global_rate_per_minute,
        max_in_flight_per_namespace=guard.max_in_flight_per_namespace,
        breaker_failures=guard.breaker_failures,
        breaker_window=guard.breaker_window,
        min_replicas=guard.min_replicas,
        max_replicas=guard.max_replicas,
        scale_up_max_factor=guard.scale_up_max_factor,
        scale_down_min_factor=guard.scale_down_min_factor,
        monthly_budget=budget.monthly if budget else None,
        cost_per_node=budget.cost_per_node if budget else 0.0,
        cost_per_replica=budget.cost_per_replica if budget else 0.0,
        budget_notify_at=list(budget.notify_at) if budget else [0.8, 0.9],
        budget_block_at=budget.block_at if budget else 1.0,
        confidence_threshold=policy.confidence_threshold,
        trust_prior_successes=policy.trust.prior_successes,
        trust_prior_failures=policy.trust.prior_failures,
        preapproved_classes=list(policy.preapproved_classes),
        approvers=policy.approvers.everyone(),
        identity=policy.approvals.identity,
        approver_keys={name: list(keys) for name, keys in policy.approvals.keys.items()},
        node_min_schedulable=nodes.min_schedulable,
        node_max_concurrent=nodes.max_concurrent_node_actions,
        node_lease_ttl=nodes.lease_ttl,
    )


class GrantCall(BaseModel):
    """Input of the `request_grant` activity: which Governor, its settings if it must start, the request."""

    cluster: str = ""
    settings: GovernorSettings
    request: GrantRequest


def requested_replicas(current: int, params: Mapping[str, float | int | str] | ScaleDeploymentParams) -> int | None:
    """What a scale step asks for before any bound; the Governor clamps it, the activity checks again.

    None when the parameters do not fit `ScaleDeploymentParams` (the policy rejects such a step;
    the activity would refuse it with InvalidParams).
    """
    if not isinstance(params, ScaleDeploymentParams):
        try:
            params = ScaleDeploymentParams.model_validate(dict(params))
        except ValidationError:
            return None
    return scaling.requested_replicas(current, replicas=params.replicas, factor=params.factor, delta=params.delta)


class NodeLeaseCall(BaseModel):
    """Input of the `request_node_lease` activity: which Governor, its settings if it must start, the request."""

    cluster: str = ""
    settings: GovernorSettings
    request: NodeLeaseRequest
