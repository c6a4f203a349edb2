"""Runbooks: which alerts a runbook takes, where it acts, its bounded steps and how it verifies.

Part of the policy file (`zerotouch.policy`), in its own module because runbooks are what most
of the policy's readers look for.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from zerotouch.action_params import PARAMS_OF_ACTION, ActionName, ActionParams, describe, parse_params
from zerotouch.durations import Duration

Severity = Literal["P0", "P1", "P2", "P3", "P4"]


class PolicyModel(BaseModel):
    """Every part of the policy file: unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Matcher(PolicyModel):
    """Which alerts a rule applies to: all given conditions must hold."""

    alertname: list[str] = Field(default_factory=list, description="any of these alert names")
    labels: dict[str, str] = Field(default_factory=dict, description="label equality")
    labels_regex: dict[str, str] = Field(default_factory=dict, description="label full-match regex")

    @field_validator("alertname", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("labels_regex")
    @classmethod
    def _compiles(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"regex for {name!r} does not compile: {error}") from error
        return value

    def matches(self, labels: dict[str, str]) -> bool:
        if self.alertname and labels.get("alertname") not in self.alertname:
            return False
        if any(labels.get(name) != value for name, value in self.labels.items()):
            return False
        return all(re.fullmatch(p, labels.get(n, "")) for n, p in self.labels_regex.items())


class Target(PolicyModel):
    """Where a runbook acts: fixed names, or names read from alert labels."""

    namespace: str | None = None
    namespace_label: str = "namespace"
    deployment: str | None = None
    deployment_label: str = "deployment"
    pod_label: str = "pod"


class Step(PolicyModel):
    """One remediation action with bounded parameters.

    ``params`` stays the mapping the file gave (workflow histories carry it as such); it is
    validated against the action's model in `zerotouch.action_params`, and `typed_params`
    returns that model.
    """

    action: ActionName
    params: dict[str, float | int | str] = Field(default_factory=dict)
    risk_class: str | None = Field(default=None, description="e.g. credential_rotation; decides the risk")
    approval: bool = Field(default=False, description="always ask a human before this step")

    @field_validator("params")
    @classmethod
    def _fit_the_action(cls, value: dict[str, float | int | str], info: ValidationInfo) -> dict[str, float | int | str]:
        action = info.data.get("action")
        if action is None:  # the action itself is wrong: that error is enough
            return value
        try:
            parse_params(action, value)
        except ValidationError as error:
            raise PydanticCustomError(ACTION_PARAMS_ERROR, "{problems}", {"problems": describe(error)}) from None
        return value

    @property
    def typed_params(self) -> ActionParams:
        """The parameters as the action's model (e.g. `ScaleDeploymentParams`)."""
        return parse_params(self.action, self.params)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # Each action's params must match that action's model: one if/then per action.
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        target["allOf"] = [
            {
                "if": {"properties": {"action": {"const": action}}, "required": ["action"]},
                "then": {"properties": {"params": handler(model.__pydantic_core_schema__)}},
            }
            for action, model in PARAMS_OF_ACTION.items()
        ]
        return schema


ACTION_PARAMS_ERROR = "action_params"


class Verification(PolicyModel):
    """How recovery is proven after an action."""

    rollout: bool = Field(default=True, description="all desired replicas available")
    promql: str | None = Field(default=None, description="expression that must return a non-empty result")
    hold_for: Duration = Field(default=timedelta(seconds=10), description="healthy for this long")
    timeout: Duration = Field(default=timedelta(minutes=3))


SymptomKind = Literal["unhealthy", "oom_killed", "crash_looping"]


class SymptomConfirmation(PolicyModel):
    """What the workload must show before a runbook acts on an alert about it.

    An alert is a claim; a rule with a wrong selector, a stale series or a copied threshold
    fires for workloads with nothing wrong. Acting on such a claim changes a healthy workload.
    """

    pods: SymptomKind | None = Field(
        default=None, description="unhealthy | oom_killed | crash_looping: read from the workload's pods")
    promql: str | None = Field(
        default=None, description="holds while the symptom is present (skipped when no Prometheus is configured)")
    window: Duration = Field(default=timedelta(minutes=15), description="how recent an OOM kill or restart counts")
    recheck: Duration = Field(default=timedelta(seconds=30), description="look again while the alert fires")
    give_up_after: Duration = Field(
        default=timedelta(minutes=30), description="an alert firing this long with no symptom goes to a human")


class Runbook(PolicyModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    description: str = ""
    match: Matcher
    target: Target = Field(default_factory=Target)
    steps: list[Step] = Field(min_length=1)
    verify: Verification = Field(default_factory=Verification)
    confirm: SymptomConfirmation | None = Field(
        default=None, description="act only once the workload shows the symptom the alert claims")
    retry_cooldown: Duration = Field(default=timedelta(minutes=1), description="wait between attempts")
    max_attempts: int = Field(default=2, ge=1, le=10)
    confidence: float = Field(default=0.9, ge=0.0, le=1.0)
    severity: Severity | None = None
