"""The keys of the GDPR request vault, and the hashes that stand for people.

One configured key (base64 of 32 bytes, from the variable the policy names) yields, by separate
derivations, the subject pseudonyms of history and receipts, the keyed hashes that replace
pseudonymised fields, and (in `zerotouch.gdpr_vault`) the vault's encryption: knowing one of them
tells nothing of the others.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from zerotouch.gdpr_models import Subject

KEY_BYTES = 32
KEY_FILE = "gdpr-key"  # `zerotouch up`'s key, in its state directory, when the variable is not set
MAKE_KEY = 'python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"'


class VaultError(Exception):
    """Something about the vault itself; messages name variables, paths and ids, never personal data."""


class VaultUnavailable(VaultError):
    """No key, a bad key, a key the vault was not created with, or a directory that cannot be used."""


class VaultKeyMismatch(VaultUnavailable):
    """The configured key is not the one the vault was created with."""


class VaultCorrupt(VaultError):
    """A file that fails authentication or does not parse: altered, moved, or written under another key."""


class VaultMissing(VaultError, KeyError):
    """Nothing recorded under that request id (and store)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class VaultConflict(VaultError, ValueError):
    """A write-once entry already holds something else."""


def vault_key(environ: Mapping[str, str], variable: str, fallback: Path | None = None) -> bytes:
    """The 32-byte vault key from ``variable`` (standard or URL-safe base64), else from ``fallback`` if it exists."""
    how = f"set {variable} to base64 of 32 random bytes, e.g. the output of {MAKE_KEY}"
    text = environ.get(variable, "").strip()
    source = variable
    if not text and fallback is not None and fallback.is_file():
        text, source = fallback.read_text().strip(), str(fallback)
    if not text:
        raise VaultUnavailable(f"{variable} is not set: {how}")
    try:
        key = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise VaultUnavailable(f"{source} is not valid base64: {how}") from None
    if len(key) != KEY_BYTES:
        raise VaultUnavailable(f"{source} decodes to {len(key)} bytes, not {KEY_BYTES}: {how}")
    return key


def ensure_key_file(path: Path) -> None:
    """Make `zerotouch up`'s vault key (0600) once; an existing one is kept (it opens the vault)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(base64.b64encode(os.urandom(KEY_BYTES)).decode() + "\n")


def derive_key(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, b"zerotouch-gdpr-" + purpose, hashlib.sha256).digest()


def pseudonym(key: bytes, subject: Subject) -> str:
    """The subject's pseudonym for history, receipts and the suppression list: 64 hex characters."""
    # Subject normalises the e-mail (trimmed, lower case), so one person's requests share a pseudonym.
    identity = f"email:{subject.email}" if subject.email is not None else f"user_id:{subject.user_id}"
    return hmac.new(derive_key(key, b"pseudonym"), identity.encode(), hashlib.sha256).hexdigest()


def field_pseudonym(key: bytes, value: str) -> str:
    """The keyed hash that replaces a pseudonymised field's value: 64 hex characters."""
    return hmac.new(derive_key(key, b"field"), value.encode(), hashlib.sha256).hexdigest()


def canonical_json(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """The bytes a vault hash is taken over: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default).encode()
