"""Who may post alerts: a bearer token or HTTP basic users, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac

from fastapi import HTTPException, status

from starters.relay.config import RelayConfig

REALM = "zerotouch-relay"


def _same(given: str, expected: str) -> bool:
    # compare_digest on bytes: it refuses non-ASCII str, and a header may carry anything.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _basic_ok(credentials: str, users: dict[str, str]) -> bool:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, separator, password = decoded.partition(":")
    expected = users.get(user)
    # Compare even for an unknown user so the answer time does not tell which users exist.
    matches = _same(password, expected if expected is not None else "\x00no-such-user")
    return bool(separator) and expected is not None and matches


def is_authorized(authorization: str | None, config: RelayConfig) -> bool:
    """Whether the ``Authorization`` header carries credentials the config accepts."""
    if not config.auth_required:
        return True
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and config.token:
        return _same(credentials, config.token)
    if scheme.lower() == "basic" and config.basic_users:
        return _basic_ok(credentials, config.basic_users)
    return False


def challenge(config: RelayConfig) -> str:
    """The ``WWW-Authenticate`` value: one challenge per accepted scheme."""
    schemes = (["Bearer"] if config.token else []) + (["Basic"] if config.basic_users else [])
    return ", ".join(f'{scheme} realm="{REALM}"' for scheme in schemes)


def require_credentials(authorization: str | None, config: RelayConfig) -> None:
    """Raise 401 (with the challenge) unless the request is authorized; never echoes what was sent."""
    if not is_authorized(authorization, config):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid credentials: send 'Authorization: Bearer <token>' or basic auth",
            headers={"WWW-Authenticate": challenge(config)},
        )
