"""The parameters of each remediation action: one pydantic model per action.

The policy validates every step's ``params`` against its action's model (so `zerotouch
policy check` and the JSON schema reject ``factr: 2``), and the activities read their
request's parameters through the same model, so both sides agree on names, types and
ranges. On the wire (policy YAML, `ActionRequest` in workflow history) parameters stay a
plain mapping; `parse_params` turns one into its typed model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zerotouch import activity_names as names

ActionName = Literal[
    "restart_deployment",
    "scale_deployment",
    "rollback_deployment",
    "raise_memory_limit",
    "evict_pod",
    "run_job",
    "terminate_idle_connections",
    "escalate",
]
ESCALATE: Final = "escalate"  # the workflow's own step: no activity runs it

MAX_MEMORY_FACTOR: Final = 4.0
DEFAULT_IDLE_SECONDS: Final = 600  # the runbooks' "idle for more than 10 minutes"
DEFAULT_MAX_TERMINATE: Final = 50
HARD_MAX_TERMINATE: Final = 500
DNS_LABEL: Final = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class ActionParams(BaseModel):
    """Parameters of one action; unknown names are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RestartDeploymentParams(ActionParams):
    """restart_deployment takes no parameters."""


class RollbackDeploymentParams(ActionParams):
    """rollback_deployment takes no parameters: it returns to the previous revision."""


class EvictPodParams(ActionParams):
    """evict_pod takes no parameters: the pod comes from the alert's labels."""


class EscalateParams(ActionParams):
    """escalate takes no parameters."""


_ONE_OF_SCALE = ("replicas", "factor", "delta")


class ScaleDeploymentParams(ActionParams):
    """Exactly one of replicas, factor or delta; the guardrails bound the result."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": [name]} for name in _ONE_OF_SCALE]},
    )

    replicas: int | None = Field(default=None, ge=0, description="set this many replicas")
    factor: float | None = Field(default=None, gt=0, description="multiply the current count (2 doubles it)")
    delta: int | None = Field(default=None, description="add this many replicas (negative: remove)")

    @model_validator(mode="after")
    def _exactly_one(self) -> ScaleDeploymentParams:
        given = [name for name in _ONE_OF_SCALE if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"scale_deployment needs exactly one of replicas, factor or delta (got {given or 'none'})")
        return self


class RaiseMemoryLimitParams(ActionParams):
    """Multiply one container's memory limit, capped by guardrails.memory_factor and memory_cap."""

    factor: float | None = Field(
        default=None, gt=1.0, le=MAX_MEMORY_FACTOR, description="default and upper bound: guardrails.memory_factor"
    )
    container: str | None = Field(default=None, min_length=1, description="default: the first container")


class RunJobParams(ActionParams):
    """Create one of the policy's job templates."""

    template: str = Field(pattern=DNS_LABEL, max_length=63, description="a key of the policy's job_templates")


class TerminateIdleConnectionsParams(ActionParams):
    """Terminate client sessions idle for longer than idle_for_seconds, oldest first."""

    idle_for_seconds: float = Field(default=DEFAULT_IDLE_SECONDS, ge=1)
    max_terminate: int = Field(default=DEFAULT_MAX_TERMINATE, ge=1, le=HARD_MAX_TERMINATE)
    database: str | None = Field(default=None, min_length=1, description="only sessions of this database")


PARAMS_OF_ACTION: Final[dict[str, type[ActionParams]]] = {
    names.RESTART_DEPLOYMENT: RestartDeploymentParams,
    names.SCALE_DEPLOYMENT: ScaleDeploymentParams,
    names.ROLLBACK_DEPLOYMENT: RollbackDeploymentParams,
    names.RAISE_MEMORY_LIMIT: RaiseMemoryLimitParams,
    names.EVICT_POD: EvictPodParams,
    names.RUN_JOB: RunJobParams,
    names.TERMINATE_IDLE_CONNECTIONS: TerminateIdleConnectionsParams,
    ESCALATE: EscalateParams,
}


def parse_params(action: str, params: Mapping[str, object]) -> ActionParams:
    """The typed parameters of ``action``; pydantic's ValidationError if they do not fit."""
    return PARAMS_OF_ACTION[action].model_validate(dict(params))


def describe(error: ValidationError) -> str:
    """``params.factr: Extra inputs are not permitted; ...``: each problem with its parameter."""
    problems = []
    for problem in error.errors():
        where = ".".join(["params", *(str(part) for part in problem["loc"])])
        message = problem["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)
