"""A rotation's state where its consumers read it: the Kubernetes Secret's data keys and annotations.

The current credential sits under the keys consumers already use (``username``/``password``,
``client_id``/``client_secret``, or the declared keys); the pending and previous ones under the
same keys prefixed ``pending.`` and ``previous.``. Versions, ages, provider key ids and the stage
sit in ``rotation.zerotouch.io/`` annotations. Each function here is one transition, pure and
idempotent: it returns the new content, or None when the transition was already made (a retry
after a crash), or raises `RotationStateError` when the Secret's state does not allow it. The
Secret store writes the result with a resourceVersion guard, so two writers never lose an update.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from zerotouch.rotation_models import RotationView, Stage, Version
from zerotouch.rotations import KubernetesTarget, MongoTarget, OAuthTarget, PostgresTarget, SecretRef, Target

ANNOTATION = "rotation.zerotouch.io/"
PENDING = "pending."
PREVIOUS = "previous."
INITIAL = "initial"  # the version of a credential that was in place before zerotouch rotated it
SLOTS = ("current", "pending", "previous")
_FIELDS = ("version", "since", "key-id")
STAGE, REVOKED, VERIFIED, ROTATION = (f"{ANNOTATION}stage", f"{ANNOTATION}previous-revoked",
                                      f"{ANNOTATION}last-verified", f"{ANNOTATION}rotation")


class RotationStateError(ValueError):
    """The Secret's rotation state does not allow this transition; the message says what holds it."""


@dataclass(frozen=True)
class SecretContent:
    """A Secret's decoded data and its annotations (plus what the store needs to write it back)."""

    data: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    resource_version: str = ""
    exists: bool = True


def value_keys(target: Target) -> list[str]:
    """The data keys that hold one credential version."""
    if isinstance(target, PostgresTarget | MongoTarget):
        return ["username", "password"]
    if isinstance(target, OAuthTarget):
        return ["client_id", "client_secret"]
    return list(target.keys)


def secret_key(target: Target) -> str:
    """The data key of the part that is secret (generated), as opposed to a login name."""
    if isinstance(target, KubernetesTarget):
        raise ValueError("a Kubernetes-only credential has several generated keys; see value_keys")
    return "client_secret" if isinstance(target, OAuthTarget) else "password"


def logins(target: Target) -> list[str]:
    if isinstance(target, PostgresTarget):
        return list(target.roles)
    if isinstance(target, MongoTarget):
        return list(target.users)
    if isinstance(target, OAuthTarget):
        return [target.client_id]
    return []


def next_login(target: Target, content: SecretContent) -> str:
    """Where the new credential goes: alternating, the login not in use; otherwise the one login."""
    names = logins(target)
    if not names:
        return ""
    current = content.data.get(value_keys(target)[0], "")
    return next((name for name in names if name != current), names[0])


def _annotation(slot: str, name: str) -> str:
    return f"{ANNOTATION}{slot}-{name}"


def _version(content: SecretContent, slot: str, target: Target | None) -> Version | None:
    number = content.annotations.get(_annotation(slot, "version"))
    if number is None and slot == "current" and target is not None \
            and any(key in content.data for key in value_keys(target)):
        number = INITIAL
    if number is None:
        return None
    since = content.annotations.get(_annotation(slot, "since"))
    prefix = {"current": "", "pending": PENDING, "previous": PREVIOUS}[slot]
    login_key = value_keys(target)[0] if target is not None and not isinstance(target, KubernetesTarget) else None
    return Version(version=number, since=datetime.fromisoformat(since) if since else None,
                   login=content.data.get(prefix + login_key, "") if login_key else "",
                   key_id=content.annotations.get(_annotation(slot, "key-id"), ""))


def view(secret: SecretRef, content: SecretContent, target: Target | None = None) -> RotationView:
    """What `zerotouch secrets show` and the workflow see: versions, ages, stage; never a value."""
    verified = content.annotations.get(VERIFIED)
    stage = content.annotations.get(STAGE, "idle")
    return RotationView(
        secret=secret, exists=content.exists, stage=stage if stage in _STAGES else "idle",  # type: ignore[arg-type]
        current=_version(content, "current", target), pending=_version(content, "pending", target),
        previous=_version(content, "previous", target), previous_revoked=content.annotations.get(REVOKED) == "true",
        last_verified=datetime.fromisoformat(verified) if verified else None,
        resource_version=content.resource_version,
    )


_STAGES = ("idle", "pending", "set", "tested", "finished", "moved", "revoked", "rolled_back")


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def _move_slot(annotations: dict[str, str], source: str, destination: str) -> None:
    for name in _FIELDS:
        value = annotations.pop(_annotation(source, name), None)
        annotations.pop(_annotation(destination, name), None)
        if value is not None:
            annotations[_annotation(destination, name)] = value


def add_pending(content: SecretContent, target: Target, rotation: str, token: str, values: dict[str, str],
                at: datetime) -> SecretContent | None:
    """Store a generated credential as pending under ``token``; a second call with the same token is a no-op
    (the caller generated ``values`` for nothing and drops them: the first ones stay)."""
    annotations = content.annotations
    if annotations.get(_annotation("pending", "version")) == token \
            or annotations.get(_annotation("current", "version")) == token:
        return None
    other = annotations.get(_annotation("pending", "version"))
    if other is not None:
        raise RotationStateError(f"rotation {other} left a pending credential; roll it back first")
    missing = [key for key in value_keys(target) if key not in values]
    if missing:
        raise ValueError(f"pending credential lacks {missing}")
    data = dict(content.data)
    data.update({PENDING + key: values[key] for key in value_keys(target)})
    new = {**annotations, _annotation("pending", "version"): token, _annotation("pending", "since"): _stamp(at),
           STAGE: "pending", ROTATION: rotation}
    new.pop(_annotation("pending", "key-id"), None)
    return replace(content, data=data, annotations=new)


def with_key_id(content: SecretContent, token: str, key_id: str) -> SecretContent | None:
    """Remember the provider's id of the pending OAuth secret (so a retry finds it instead of issuing another)."""
    _require_pending(content, token)
    if content.annotations.get(_annotation("pending", "key-id")) == key_id:
        return None
    return replace(content, annotations={**content.annotations, _annotation("pending", "key-id"): key_id})


def adopt_current_key_id(content: SecretContent, key_id: str) -> SecretContent | None:
    """Record the provider's id of a client secret found in place (the only one active before the first
    rotation), so its revoke after the grace window knows which one to delete."""
    if content.annotations.get(_annotation("current", "key-id")):
        return None
    return replace(content, annotations={**content.annotations, _annotation("current", "key-id"): key_id})


def promote(content: SecretContent, target: Target, token: str, at: datetime) -> SecretContent | None:
    """Finish: the pending credential becomes current, the current one previous (still valid)."""
    if content.annotations.get(_annotation("current", "version")) == token:
        return None
    _require_pending(content, token)
    data, annotations = dict(content.data), dict(content.annotations)
    had_current = _version(content, "current", target) is not None
    for key in value_keys(target):
        data.pop(PREVIOUS + key, None)
        if had_current and key in data:
            data[PREVIOUS + key] = data[key]
        data[key] = data.pop(PENDING + key)
    if had_current:
        annotations.setdefault(_annotation("current", "version"), INITIAL)
        _move_slot(annotations, "current", "previous")
    else:
        for name in _FIELDS:
            annotations.pop(_annotation("previous", name), None)
    _move_slot(annotations, "pending", "current")
    annotations[_annotation("current", "since")] = _stamp(at)
    annotations.pop(REVOKED, None)
    annotations[STAGE] = "finished"
    return replace(content, data=data, annotations=annotations)


def drop_pending(content: SecretContent, target: Target, token: str) -> SecretContent | None:
    """Roll back before finish: forget the pending credential; the current one never stopped working."""
    if content.annotations.get(_annotation("pending", "version")) != token:
        return None
    data = {key: value for key, value in content.data.items()
            if key not in {PENDING + k for k in value_keys(target)}}
    annotations = dict(content.annotations)
    for name in _FIELDS:
        annotations.pop(_annotation("pending", name), None)
    annotations[STAGE] = "rolled_back"
    return replace(content, data=data, annotations=annotations)


def swap_back(content: SecretContent, target: Target, token: str) -> SecretContent | None:
    """Roll back after finish: the previous credential (still valid) is current again, ``token``'s previous."""
    annotations = content.annotations
    current = annotations.get(_annotation("current", "version"))
    if current != token:
        if annotations.get(_annotation("previous", "version")) == token and annotations.get(STAGE) == "rolled_back":
            return None
        raise RotationStateError(f"{token} is not the current credential (current: {current or 'none'})")
    if _version(content, "previous", target) is None:
        raise RotationStateError("there is no previous credential to go back to")
    if annotations.get(REVOKED) == "true":
        raise RotationStateError("the previous credential is revoked; rotate again instead")
    data, new = dict(content.data), dict(annotations)
    for key in value_keys(target):
        if PREVIOUS + key in data:
            data[key], data[PREVIOUS + key] = data[PREVIOUS + key], data[key]
    _swap_slots(new, "current", "previous")
    new[STAGE] = "rolled_back"
    return replace(content, data=data, annotations=new)


def _swap_slots(annotations: dict[str, str], one: str, other: str) -> None:
    for name in _FIELDS:
        first, second = annotations.pop(_annotation(one, name), None), annotations.pop(_annotation(other, name), None)
        if second is not None:
            annotations[_annotation(one, name)] = second
        if first is not None:
            annotations[_annotation(other, name)] = first


def mark(content: SecretContent, token: str, stage: Stage, at: datetime, verified: bool) -> SecretContent | None:
    """Record a stage the workflow proved; only the rotation that owns the Secret's state may."""
    annotations = content.annotations
    owner = {annotations.get(_annotation("pending", "version")), annotations.get(_annotation("current", "version"))}
    if token not in owner:
        raise RotationStateError(f"rotation {token} no longer owns this Secret's state")
    new = {**annotations, STAGE: stage}
    if stage == "revoked":
        new[REVOKED] = "true"
    if verified:
        new[VERIFIED] = _stamp(at)
    return None if new == annotations else replace(content, annotations=new)


def _require_pending(content: SecretContent, token: str) -> None:
    pending = content.annotations.get(_annotation("pending", "version"))
    if pending != token:
        raise RotationStateError(f"rotation {token} has no pending credential here (pending: {pending or 'none'})")


def pending_values(content: SecretContent, target: Target, token: str) -> dict[str, str]:
    """The pending credential of ``token`` (inside an activity only)."""
    _require_pending(content, token)
    return {key: content.data[PENDING + key] for key in value_keys(target)}


def current_values(content: SecretContent, target: Target) -> dict[str, str]:
    return {key: content.data[key] for key in value_keys(target) if key in content.data}


def previous_values(content: SecretContent, target: Target) -> dict[str, str]:
    return {key: content.data[PREVIOUS + key] for key in value_keys(target) if PREVIOUS + key in content.data}
