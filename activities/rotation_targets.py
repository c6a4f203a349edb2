"""Secret rotation on the target side: PostgreSQL roles, MongoDB users, OAuth client secrets.

Each activity reads the credential it needs from the rotation's Secret (the only place it lives),
tells the target system, and returns references only. Every one is idempotent: setting the same
password again, disabling a disabled login or revoking a revoked key changes nothing. A
Kubernetes-only credential has no target system: those steps are no-ops for it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Protocol

import httpx
from temporalio import activity

from activities.keepalive import keeps_alive
from activities.mongo_users import MongoUsers
from activities.oauth_clients import ClientSecretProvider, check_client_credentials
from activities.postgres_roles import PostgresRoles
from activities.secret_store import SecretStore
from zerotouch import activity_errors as errors
from zerotouch import activity_names as names
from zerotouch import rotation_secret as layout
from zerotouch.rotation_models import CredentialUse, RotationStep, StepResult
from zerotouch.rotation_secret import SecretContent
from zerotouch.rotations import MongoTarget, OAuthTarget, PostgresTarget


class Logins(Protocol):
    """What PostgresRoles and MongoUsers both offer."""

    def set_login(self, target: PostgresTarget | MongoTarget, login: str, password: str) -> str: ...
    def check_login(self, target: PostgresTarget | MongoTarget, login: str, password: str) -> str: ...
    def disable_login(self, target: PostgresTarget | MongoTarget, login: str) -> str: ...


class RotationTargetActivities:
    def __init__(self, *, secret_store: Callable[[], SecretStore], postgres: PostgresRoles, mongodb: MongoUsers,
                 oauth: ClientSecretProvider, http: httpx.Client) -> None:
        self._store_factory = secret_store  # the data worker needs Kubernetes only when it rotates
        self._postgres, self._mongodb, self._oauth, self._http = postgres, mongodb, oauth, http

    @cached_property
    def _store(self) -> SecretStore:
        return self._store_factory()

    def _logins(self, target: PostgresTarget | MongoTarget) -> Logins:
        return self._postgres if isinstance(target, PostgresTarget) else self._mongodb  # type: ignore[return-value]

    def _done(self, step: RotationStep, detail: str, changed: bool = True) -> StepResult:
        content = self._store.read(step.secret)
        return StepResult(view=layout.view(step.secret, content, step.target), changed=changed, detail=detail)

    @activity.defn(name=names.SET_PENDING_CREDENTIAL)
    @keeps_alive
    def set_pending_credential(self, step: RotationStep) -> StepResult:
        """ALTER ROLE / updateUser / issue a client secret: the target accepts the pending credential."""
        target, content = step.target, self._store.read(step.secret)
        pending = layout.pending_values(content, target, step.token) if _has_pending(content, step) else None
        if pending is None:
            return self._done(step, "nothing pending for this rotation (already finished)", changed=False)
        if isinstance(target, PostgresTarget | MongoTarget):
            return self._done(step, self._logins(target).set_login(target, pending["username"], pending["password"]))
        if isinstance(target, OAuthTarget):
            return self._done(step, self._issue(step, content, target, pending["client_secret"]))
        return self._done(step, "a Kubernetes-only credential: no target system to tell", changed=False)

    def _issue(self, step: RotationStep, content: SecretContent, target: OAuthTarget, secret: str) -> str:
        issued = content.annotations.get(f"{layout.ANNOTATION}pending-key-id")
        active = {key.id for key in self._oauth.keys(target) if key.status.upper() == "ACTIVE"}
        if issued and issued in active:
            return f"client secret {issued} already issued for {target.client_id}"
        known = {content.annotations.get(f"{layout.ANNOTATION}{slot}-key-id") for slot in ("current", "previous")}
        if known == {None} and len(active) == 1:
            # The first rotation: the one active secret is the one in place; remember it to revoke it later.
            (current,) = active
            self._store.update(step.secret, lambda c: layout.adopt_current_key_id(c, current))
            known = {current}
        for orphan in sorted(active - known) if known - {None} else []:
            # issued by an attempt that crashed before it could record the id: never handed to anyone
            self._oauth.revoke(target, orphan)
        key_id = self._oauth.issue(target, secret)
        self._store.update(step.secret, lambda c: layout.with_key_id(c, step.token, key_id))
        return f"client secret {key_id} issued for {target.client_id}"

    @activity.defn(name=names.TEST_PENDING_CREDENTIAL)
    @keeps_alive
    def test_pending_credential(self, step: RotationStep) -> StepResult:
        """Log in with the pending credential (a SELECT, a ping, a client-credentials token)."""
        target, content = step.target, self._store.read(step.secret)
        if not _has_pending(content, step):
            return self._done(step, "nothing pending for this rotation (already finished)", changed=False)
        pending = layout.pending_values(content, target, step.token)
        if isinstance(target, PostgresTarget | MongoTarget):
            return self._done(step, self._logins(target).check_login(target, pending["username"], pending["password"]))
        if isinstance(target, OAuthTarget):
            return self._done(step, check_client_credentials(self._http, target, pending["client_secret"]))
        return self._done(step, "a Kubernetes-only credential: its consumers' rollout is its test", changed=False)

    @activity.defn(name=names.UNDO_PENDING_CREDENTIAL)
    @keeps_alive
    def undo_pending_credential(self, step: RotationStep) -> StepResult:
        """Take back what the set step gave the target; the current credential keeps working."""
        target, content = step.target, self._store.read(step.secret)
        if not _has_pending(content, step):
            return self._done(step, "nothing pending to undo", changed=False)
        pending, current = layout.pending_values(content, target, step.token), layout.current_values(content, target)
        if isinstance(target, PostgresTarget | MongoTarget):
            logins = self._logins(target)
            if target.strategy == "single":  # the one login got the pending password: give it back the current one
                if "password" not in current:
                    return self._done(step, "no current password to restore", changed=False)
                return self._done(step, logins.set_login(target, current["username"], current["password"]))
            if pending["username"] == current.get("username"):
                raise errors.fail(f"pending and current login are both {pending['username']}", errors.ROTATION_STATE)
            return self._done(step, logins.disable_login(target, pending["username"]))
        if isinstance(target, OAuthTarget):
            issued = content.annotations.get(f"{layout.ANNOTATION}pending-key-id")
            return self._done(step, self._oauth.revoke(target, issued) if issued else "no client secret was issued")
        return self._done(step, "a Kubernetes-only credential: nothing to undo", changed=False)

    @activity.defn(name=names.RESTORE_CURRENT_CREDENTIAL)
    @keeps_alive
    def restore_current_credential(self, step: RotationStep) -> StepResult:
        """After a rollback: make sure the target accepts the (again) current credential."""
        target, content = step.target, self._store.read(step.secret)
        current = layout.current_values(content, target)
        if isinstance(target, PostgresTarget | MongoTarget) and target.strategy == "single" and "password" in current:
            return self._done(step, self._logins(target).set_login(target, current["username"], current["password"]))
        return self._done(step, "the previous credential was never revoked: nothing to restore", changed=False)

    @activity.defn(name=names.REVOKE_PREVIOUS_CREDENTIAL)
    @keeps_alive
    def revoke_previous_credential(self, step: RotationStep) -> StepResult:
        """ALTER ROLE ... NOLOGIN / a discarded MongoDB password / delete the old client secret."""
        target, content = step.target, self._store.read(step.secret)
        if content.annotations.get(layout.REVOKED) == "true":
            return self._done(step, "the previous credential is already revoked", changed=False)
        previous, current = layout.previous_values(content, target), layout.current_values(content, target)
        if isinstance(target, PostgresTarget | MongoTarget):
            if target.strategy == "single" or "username" not in previous:
                return self._done(step, "single login: the old password stopped working when it was replaced",
                                  changed=False)
            if previous["username"] == current.get("username"):
                raise errors.fail(f"previous and current login are both {current['username']}; not revoking",
                                  errors.ROTATION_STATE)
            return self._done(step, self._logins(target).disable_login(target, previous["username"]))
        if isinstance(target, OAuthTarget):
            old = content.annotations.get(f"{layout.ANNOTATION}previous-key-id")
            return self._done(step, self._oauth.revoke(target, old) if old else
                              "the previous client secret's id is unknown (found in place): revoke it by hand")
        return self._done(step, "a Kubernetes-only credential: the old value is gone from the Secret", changed=False)

    @activity.defn(name=names.COUNT_CREDENTIAL_SESSIONS)
    @keeps_alive
    def count_credential_sessions(self, step: RotationStep) -> CredentialUse:
        """How many sessions the previous login still has (PostgreSQL, alternating); else not measurable."""
        target, content = step.target, self._store.read(step.secret)
        previous = layout.previous_values(content, target).get("username", "")
        if isinstance(target, PostgresTarget) and target.strategy == "alternating" and previous:
            return CredentialUse(login=previous, sessions=self._postgres.sessions_of(target, previous))
        return CredentialUse(login=previous, measurable=False,
                             detail=f"sessions of the old {target.kind} credential are not measurable; "
                                    "the consumers' rollout (and verify.healthy_promql) decided")


def _has_pending(content: SecretContent, step: RotationStep) -> bool:
    return content.annotations.get(f"{layout.ANNOTATION}pending-version") == step.token
