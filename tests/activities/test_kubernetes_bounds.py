"""The guardrail arithmetic on its own: replica bounds, memory caps, job names."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.kubernetes_actions import job_name, scaled_replicas
from zerotouch.models import ActionBounds, ActionRequest


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
