"""The policy's ``rotations:`` section: which credentials zerotouch rotates, where, and how it proves the move.

Each rotation names the Kubernetes Secret its consumers read (where the current, pending and
previous credentials live, never in workflow state) and a target system: a PostgreSQL or MongoDB
login, a generated Kubernetes-only value, or an OAuth client secret at a provider. Connections are
*references* (``main``) that the data worker resolves from its own environment, as for backups.
Schedules for rotations are ordinary ``schedules:`` entries that start `ScheduledRotationWorkflow`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zerotouch.durations import Duration

ROTATION_WORKFLOW: Final = "SecretRotationWorkflow"
SCHEDULED_ROTATION_WORKFLOW: Final = "ScheduledRotationWorkflow"
ROTATION_WORKFLOW_ID_PREFIX: Final = "zerotouch-rotation-"
ROTATION_FAILED_ALERT: Final = "SecretRotationFailed"
RISK_CLASS: Final = "credential_rotation"
GRANT_ACTION: Final = "rotate_secret"
UPDATE_ROLLBACK: Final = "rollback"  # besides the incidents' approve, abort and take_over (zerotouch.names)

ROTATION_NAME: Final = r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$"
_K8S_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_SUBDOMAIN = r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$"
_CONNECTION = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_PG_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MONGO_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,62}$")
_DATA_KEY = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,100}$"  # a Secret data key without the `pending.`/`previous.` prefixes
_ENV_NAME = r"^[A-Z_][A-Z0-9_]{0,100}$"

Strategy = Literal["alternating", "single"]
Alphabet = Literal["alphanumeric", "hex", "urlsafe"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SecretRef(_Model):
    """The Kubernetes Secret the consumers read; its identity is the rotation's identity."""

    namespace: str = Field(pattern=_K8S_NAME)
    name: str = Field(pattern=_SUBDOMAIN, max_length=253)

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"


class Generated(_Model):
    """How a new credential is made: `secrets.choice` over the alphabet, inside the activity that writes it."""

    length: int = Field(default=32, ge=20, le=128)
    alphabet: Alphabet = "alphanumeric"


class PostgresTarget(_Model):
    """A PostgreSQL login. Alternating: two login roles, the new password always on the one not in use,
    so the old credential stays valid until the consumers moved; single: one role, changed in place
    (the old password stops working for new connections at the set step: choose it knowingly)."""

    kind: Literal["postgres"] = "postgres"
    connection: str = Field(pattern=_CONNECTION, description="admin connection reference: ZEROTOUCH_PG_<REF>_DSN")
    database: str = Field(default="", max_length=63, description="the database consumers log in to "
                                                                 "(default: the admin DSN's)")
    strategy: Strategy = "alternating"
    roles: list[str] = Field(min_length=1, max_length=2, description="alternating: two login roles; single: one")
    member_of: list[str] = Field(default_factory=list, description="group roles holding the privileges; a login "
                                                                   "role that does not exist is created in them")
    generated: Generated = Field(default_factory=Generated)

    @field_validator("roles", "member_of")
    @classmethod
    def _role_names(cls, value: list[str]) -> list[str]:
        bad = [r for r in value if not _PG_ROLE.match(r)]
        if bad:
            raise ValueError(f"not a plain lower-case role name: {bad}")
        return value

    @model_validator(mode="after")
    def _count(self) -> PostgresTarget:
        _check_strategy(self.strategy, self.roles)
        return self


class MongoTarget(_Model):
    """A MongoDB user (createUser / updateUser), with the same strategies as PostgreSQL."""

    kind: Literal["mongodb"] = "mongodb"
    connection: str = Field(pattern=_CONNECTION, description="admin connection reference: ZEROTOUCH_MONGO_<REF>_URL")
    auth_database: str = Field(default="admin", pattern=r"^[A-Za-z0-9_-]{1,63}$")
    strategy: Strategy = "alternating"
    users: list[str] = Field(min_length=1, max_length=2)
    generated: Generated = Field(default_factory=Generated)

    @field_validator("users")
    @classmethod
    def _user_names(cls, value: list[str]) -> list[str]:
        bad = [u for u in value if not _MONGO_USER.match(u)]
        if bad:
            raise ValueError(f"not a plain user name: {bad}")
        return value

    @model_validator(mode="after")
    def _count(self) -> MongoTarget:
        _check_strategy(self.strategy, self.users)
        return self


class KubernetesTarget(_Model):
    """A value only the consumers know (an API token, a signing key): generated, stored, rolled out."""

    kind: Literal["kubernetes"] = "kubernetes"
    keys: list[str] = Field(default_factory=lambda: ["token"], min_length=1, max_length=8)
    generated: Generated = Field(default_factory=Generated)

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        bad = [k for k in value if not re.match(_DATA_KEY, k) or k.startswith(("pending.", "previous."))]
        if bad:
            raise ValueError(f"not a Secret data key (or uses a reserved prefix): {bad}")
        return value


class OAuthTarget(_Model):
    """An OAuth/OIDC client secret at a provider that holds two secrets at once (the grace window)."""

    kind: Literal["oauth"] = "oauth"
    provider: Literal["okta"] = Field(default="okta", description="the client-secret API the provider speaks")
    base_url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", description="the provider's admin API root")
    token_env: str = Field(pattern=_ENV_NAME, description="the variable holding the admin API token")
    client_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")
    token_url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
                           description="the token endpoint the test step asks with client_credentials")
    scope: str = Field(default="", max_length=200)
    grace: Duration = Field(default=timedelta(hours=24), description="old and new both work this long after finish")
    generated: Generated = Field(default_factory=lambda: Generated(length=48))

    @field_validator("generated")
    @classmethod
    def _provider_length(cls, value: Generated) -> Generated:
        if value.length > 100:  # Okta accepts client secrets of 14 to 100 characters
            raise ValueError("an OAuth client secret is at most 100 characters")
        return value


Target = Annotated[PostgresTarget | MongoTarget | KubernetesTarget | OAuthTarget, Field(discriminator="kind")]


class Verification(_Model):
    """What must hold before the old credential is revoked; a revoke is never done on a timeout."""

    rollout_timeout: Duration = Field(default=timedelta(minutes=10), description="consumers must be rolled out by then")
    unused_timeout: Duration = Field(default=timedelta(minutes=30),
                                     description="the old credential must be out of use by then, else escalate")
    healthy_promql: str = Field(
        default="", max_length=2000,
        description="must hold once the consumers moved, e.g. `sum(rate(app_auth_failures_total[1m])) == 0` "
                    "(an empty result does not hold); if it does not within rollout_timeout, roll back")
    poll: Duration = Field(default=timedelta(seconds=2))


class Rotation(_Model):
    """One credential: where its consumers read it, what it opens, and how its move is proven."""

    secret: SecretRef
    target: Target
    consumers: list[str] | None = Field(
        default=None, description="Deployments to roll out; default: every Deployment in the Secret's namespace "
                                  "whose pod template references the Secret (env, envFrom, volume, projected)")
    verify: Verification = Field(default_factory=Verification)
    approval_timeout: Duration = Field(default=timedelta(hours=4), description="no answer by then: nothing is done")

    @field_validator("consumers")
    @classmethod
    def _consumers(cls, value: list[str] | None) -> list[str] | None:
        bad = [c for c in value or [] if not re.match(_SUBDOMAIN, c)]
        if bad:
            raise ValueError(f"not a Deployment name: {bad}")
        return value


class RotationsPolicy(_Model):
    """``rotations:`` — by name (the name is what schedules, the CLI and the ledger use)."""

    secrets: dict[str, Rotation] = Field(default_factory=dict)

    @field_validator("secrets")
    @classmethod
    def _names(cls, value: dict[str, Rotation]) -> dict[str, Rotation]:
        bad = [n for n in value if not re.match(ROTATION_NAME, n)]
        if bad:
            raise ValueError(f"rotation names must be lower-case DNS labels of at most 42 characters: {bad}")
        seen: dict[tuple[str, str], str] = {}
        for name, rotation in value.items():
            key = (rotation.secret.namespace, rotation.secret.name)
            if key in seen:
                raise ValueError(f"rotations {seen[key]} and {name} both rotate Secret {rotation.secret.describe()}")
            seen[key] = name
        return value


def _check_strategy(strategy: Strategy, logins: list[str]) -> None:
    wanted = 2 if strategy == "alternating" else 1
    if len(logins) != wanted or len(set(logins)) != wanted:
        raise ValueError(f"the {strategy} strategy needs {wanted} distinct login(s), got {logins}")


def rotation_workflow_id(secret: SecretRef, cluster: str = "") -> str:
    """One workflow ID per Secret: two rotations of one secret can never run at once."""
    return f"{ROTATION_WORKFLOW_ID_PREFIX}{cluster + '-' if cluster else ''}{secret.namespace}-{secret.name}"


# --- the workflows' inputs ------------------------------------------------------------------------------------


class RotationArgs(_Model):
    """The arguments of ScheduledRotationWorkflow (a schedule's `arguments:`)."""

    rotation: str = Field(pattern=ROTATION_NAME)


class RotationInput(_Model):
    """What starts one SecretRotationWorkflow (a schedule, `zerotouch secrets rotate`, a leak report)."""

    rotation: str = Field(pattern=ROTATION_NAME)
    action: Literal["rotate", "rollback"] = Field(
        default="rotate", description="rollback: make the previous credential current again (if not yet revoked)")
    cluster: str = ""
    requested_by: str = Field(default="schedule", min_length=1, max_length=200)
    reason: str = Field(default="scheduled rotation", max_length=500)
    emergency: bool = Field(default=False, description="a leaked credential: skips the schedule, not the approval")
    scheduled_time: datetime | None = None


class ScheduledRotationInput(_Model):
    schedule: str = ""
    cluster: str = ""
    scheduled_time: datetime | None = None
    arguments: RotationArgs
