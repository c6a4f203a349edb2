"""The guardrail arithmetic on its own: replica bounds, memory caps, job names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.kubernetes_actions import job_name, scaled_replicas
from zerotouch import guardrails
from zerotouch.governor_models import GovernorBook, GrantRequest
from zerotouch.governor_policy import governor_settings, requested_replicas
from zerotouch.models import ActionBounds, ActionRequest
from zerotouch.policy import Policy, parse_policy
from zerotouch.scaling import replica_window
from zerotouch.triage import bounds_of


def scale(current: int, bounds: ActionBounds | None = None, **params: Any) -> int:
    request = ActionRequest(action="scale_deployment", namespace="shop", name="web", params=params,
                            idempotency_key="k", incident_id="i", bounds=bounds or ActionBounds())
    return scaled_replicas(request, current)


@pytest.mark.parametrize(
    ("current", "params", "expected"),
    [
        (3, {"factor": 2.0}, 6),
        (3, {"factor": 1.5}, 5),  # rounds up when growing
        (3, {"replicas": 50}, 9),  # +200% at most in one step
        (6, {"replicas": 50}, 10),  # and never above max_replicas
        (10, {"replicas": 1}, 5),  # -50% at most in one step
        (0, {"delta": 2}, 2),  # from zero, bounds are taken from one replica
        (2, {"factor": 0.5}, 1),
        (4, {"delta": "-1"}, 3),  # policy params may arrive as strings
    ],
)
def test_scaled_replicas(current: int, params: dict[str, Any], expected: int) -> None:
    assert scale(current, **params) == expected


@pytest.mark.parametrize(("current", "params"), [(10, {"factor": 2.0}), (1, {"delta": -1}), (3, {"replicas": 3})])
def test_nothing_to_scale_is_a_bound(current: int, params: dict[str, Any]) -> None:
    with pytest.raises(ApplicationError) as caught:
        scale(current, **params)
    assert caught.value.type == "BoundExceeded" and caught.value.non_retryable


def test_min_replicas_bound() -> None:
    assert scale(4, ActionBounds(min_replicas=3), replicas=0) == 3


def test_job_names_are_deterministic_and_dns_safe() -> None:
    assert job_name("log-cleanup", "key") == job_name("log-cleanup", "key")
    assert job_name("log-cleanup", "key") != job_name("log-cleanup", "other")
    long = job_name("x" * 63, "key")
    assert len(long) <= 63 and long.replace("-", "").isalnum()


# --- one scaling function: the Governor's grant is what the activity applies ------------------


def _guardrails_policy(**guardrails: Any) -> Policy:
    return parse_policy({"guardrails": {"max_replicas": 100, **guardrails}})


@pytest.mark.parametrize("asked", [{"replicas": 100}, {"factor": 2}, {"delta": 30}])
def test_governor_and_activity_agree_at_45_replicas_and_factor_1_4(asked: dict[str, Any]) -> None:
    """45 x 1.4 is 62.99999999999999 in floating point: the Governor granted 63 and the activity capped at 62."""
    policy = _guardrails_policy(scale_up_max_factor=1.4)
    desired = requested_replicas(45, asked)
    grant = guardrails.decide(GovernorBook(), governor_settings(policy), GrantRequest(
        request_id="r", runbook="scale", alert_class="A", action="scale_deployment", namespace="shop",
        target="web", current_replicas=45, desired_replicas=desired), datetime(2025, 6, 1, tzinfo=UTC))
    assert grant.granted and grant.granted_replicas == 63, grant.reason
    assert scale(45, bounds_of(policy), **asked) == 63  # the step as the policy wrote it
    assert scale(45, bounds_of(policy), replicas=grant.granted_replicas) == 63  # the grant, as the incident sends it
    assert replica_window(45, bounds_of(policy)) == replica_window(45, governor_settings(policy)) == (23, 63)


@pytest.mark.parametrize(("current", "factor", "expected"), [(10, 1.1, 11), (45, 1.4, 63), (10, 0.7, 7), (3, 1.5, 5)])
def test_factors_round_away_from_the_current_count_without_float_noise(current: int, factor: float,
                                                                       expected: int) -> None:
    """10 x 1.1 is 11.000000000000002: it asks for 11 replicas, not 12."""
    assert requested_replicas(current, {"factor": factor}) == expected
    assert scale(current, bounds_of(_guardrails_policy()), factor=factor) == expected


@pytest.mark.parametrize("params", [{}, {"factr": 2}, {"factor": 2, "delta": 1}, {"factor": "lots"},
                                    {"replicas": 2.5}, {"factor": 0}])
def test_parameters_that_do_not_fit_the_action_are_invalid(params: dict[str, Any]) -> None:
    with pytest.raises(ApplicationError) as caught:
        scale(3, **params)
    assert caught.value.type == "InvalidParams" and caught.value.non_retryable
    assert requested_replicas(3, params) is None  # the workflow asks the Governor for no count then
