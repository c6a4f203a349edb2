"""Secret rotation in the Kubernetes Secret that holds the versions (on the data worker, the only one with
access to the rotated Secrets).

Each activity is one transition of `zerotouch.rotation_secret`, written with a resourceVersion
guard by the Secret store, keyed by the rotation's token: a retry after a crash finds the
transition made and answers ``changed=False``. The pending credential is generated here, stored,
and never returned.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from temporalio import activity

from activities.credentials import generate
from activities.keepalive import keeps_alive
from activities.secret_store import SecretStore
from zerotouch import activity_names as names
from zerotouch import rotation_secret as layout
from zerotouch.rotation_models import (
    RotationStep,
    RotationView,
    StageMark,
    StepResult,
)
from zerotouch.rotation_secret import SecretContent
from zerotouch.rotations import KubernetesTarget


class RotationSecretActivities:
    def __init__(self, *, secret_store: Callable[[], SecretStore]) -> None:
        self._store_factory = secret_store  # the data worker needs Kubernetes only when it rotates

    @cached_property
    def _store(self) -> SecretStore:
        return self._store_factory()

    def _result(self, step: RotationStep, written: tuple[SecretContent, bool], detail: str) -> StepResult:
        content, changed = written
        return StepResult(view=layout.view(step.secret, content, step.target), changed=changed,
                          detail=detail if changed else f"{detail} (already done)")

    @activity.defn(name=names.READ_ROTATION_STATE)
    @keeps_alive
    def read_rotation_state(self, step: RotationStep) -> RotationView:
        """kubectl get secret NAME: its rotation annotations, no values."""
        return layout.view(step.secret, self._store.read(step.secret), step.target)

    @activity.defn(name=names.CREATE_PENDING_CREDENTIAL)
    @keeps_alive
    def create_pending_credential(self, step: RotationStep) -> StepResult:
        """Generate a credential and store it as pending under the step's token (once per token)."""
        login = ""

        def change(content: SecretContent) -> SecretContent | None:
            nonlocal login
            login = layout.next_login(step.target, content)
            return layout.add_pending(content, step.target, step.rotation, step.token,
                                      self._values(step, login), step.at)

        written = self._store.update(step.secret, change)
        return self._result(step, written, f"pending credential {step.token} generated"
                                           f"{' for ' + login if login else ''}")

    @staticmethod
    def _values(step: RotationStep, login: str) -> dict[str, str]:
        target = step.target
        if isinstance(target, KubernetesTarget):
            return {key: generate(target.generated) for key in target.keys}
        login_key, secret_key = layout.value_keys(target)
        return {login_key: login, secret_key: generate(target.generated)}

    @activity.defn(name=names.FINISH_ROTATION)
    @keeps_alive
    def finish_rotation(self, step: RotationStep) -> StepResult:
        """Make the pending credential current; the current one becomes previous (still valid)."""
        written = self._store.update(step.secret, lambda c: layout.promote(c, step.target, step.token, step.at))
        return self._result(step, written, f"{step.token} is current; the old credential is previous")

    @activity.defn(name=names.ROLLBACK_ROTATION)
    @keeps_alive
    def rollback_rotation(self, step: RotationStep) -> StepResult:
        """Before finish: forget the pending credential. After: make the previous one current again."""
        def change(content: SecretContent) -> SecretContent | None:
            if content.annotations.get(f"{layout.ANNOTATION}pending-version") == step.token:
                return layout.drop_pending(content, step.target, step.token)
            return layout.swap_back(content, step.target, step.token)

        written = self._store.update(step.secret, change)
        return self._result(step, written, f"rolled back {step.token}")

    @activity.defn(name=names.MARK_ROTATION)
    @keeps_alive
    def mark_rotation(self, mark: StageMark) -> StepResult:
        """Record a stage the workflow proved (tested, moved, revoked) in the Secret's annotations."""
        step = mark.step
        written = self._store.update(step.secret, lambda c: layout.mark(c, step.token, mark.stage, step.at,
                                                                        mark.verified))
        return self._result(step, written, f"stage {mark.stage}")
