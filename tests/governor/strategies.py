"""Hypothesis strategies for Governor settings and request streams (small domains, so limits collide)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from zerotouch.governor_models import GovernorSettings, GrantRequest

NAMESPACES = ("shop", "pay", "auth")
TARGETS = ("web", "api", "db")
ACTIONS = ("restart_deployment", "scale_deployment")


@st.composite
def settings(draw: Any) -> GovernorSettings:
    low = draw(st.integers(0, 3))
    return GovernorSettings(
        target_cooldown=draw(st.integers(0, 600)),
        global_rate_per_minute=draw(st.integers(1, 8)),
        max_in_flight_per_namespace=draw(st.integers(1, 4)),
        in_flight_timeout=draw(st.sampled_from([120, 1800])),
        min_replicas=low,
        max_replicas=draw(st.integers(max(low, 1), 12)),
        monthly_budget=draw(st.none() | st.floats(5, 60)),
        cost_per_node=draw(st.sampled_from([0.0, 4.5, 10.0])),
        cost_per_replica=draw(st.sampled_from([0.0, 0.5, 2.0])),
        confidence_threshold=0.8,
    )


@st.composite
def request(draw: Any, index: int) -> GrantRequest:
    scale = draw(st.booleans())
    current = draw(st.none() | st.integers(0, 30)) if scale else None
    nodes = draw(st.none() | st.integers(0, 6))
    return GrantRequest(
        request_id=f"req-{index}",
        incident_id=f"i{index}",
        runbook=draw(st.sampled_from(["restart", "scale"])),
        alert_class=draw(st.sampled_from(["A", "B"])),
        action=draw(st.sampled_from(ACTIONS)),
        namespace=draw(st.sampled_from(NAMESPACES)),
        target=draw(st.sampled_from(TARGETS)),
        current_replicas=current,
        desired_replicas=draw(st.integers(0, 40)) if scale else None,
        current_nodes=nodes,
        projected_nodes=None if nodes is None else max(0, nodes + draw(st.integers(-1, 2))),
        approved_by=draw(st.sampled_from([None, None, "alice"])),
    )


@st.composite
def stream(draw: Any, size: int, earlier: list[GrantRequest] | None = None) -> list[GrantRequest]:
    """Fresh requests mixed with retries: exact repeats of earlier ones, sometimes now carrying an approval."""
    made = list(earlier or [])
    out: list[GrantRequest] = []
    for _ in range(size):
        if made and draw(st.integers(0, 3)) == 0:
            again = draw(st.sampled_from(made))
            if draw(st.booleans()):
                again = again.model_copy(update={"approved_by": "alice"})
            out.append(again)
        else:
            out.append(draw(request(len(made))))
            made.append(out[-1])
    return out
