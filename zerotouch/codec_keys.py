"""The payload codec's keys: where they come from, their format, and making a first one.

Format (file or variable), one key per line — in the variable, lines may also be
separated by commas::

    # comments and blank lines are ignored
    2026-11:q8l0...base64 of 32 random bytes...=
    2026-05:Zm9v...=

``KEY_ID:BASE64KEY``; the key is 32 bytes (AES-256), standard or URL-safe base64.
The **first** key encrypts; **every** key decrypts. To rotate, put a new key on
top and keep the old ones as long as histories encrypted with them must be read.
Key ids are stored in clear in each payload's metadata, so they must not be secret.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

KEYS_ENV = "ZEROTOUCH_CODEC_KEYS"
KEYS_FILE_ENV = "ZEROTOUCH_CODEC_KEYS_FILE"
STATE_DIR_KEYS_FILE = "codec-keys"  # the file `zerotouch up` creates in its state dir
KEY_BYTES = 32

_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class CodecKeyError(ValueError):
    """Keys that cannot be used; the message names the line and never contains key material."""


@dataclass(frozen=True)
class CodecKeys:
    """Ordered keys: ``primary`` encrypts, any of ``by_id`` decrypts."""

    primary: str
    by_id: dict[str, bytes] = field(repr=False)

    def __repr__(self) -> str:
        return f"CodecKeys(primary={self.primary!r}, ids={list(self.by_id)!r})"


def parse_keys(text: str, source: str) -> CodecKeys:
    """Parse the key format; ``source`` names where the text came from, for error messages."""
    by_id: dict[str, bytes] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key_id, separator, encoded = line.partition(":")
        key_id, encoded = key_id.strip(), encoded.strip()
        if not separator or not _KEY_ID.match(key_id):
            raise CodecKeyError(f"{source}, line {number}: expected KEY_ID:BASE64KEY with an id of "
                                "letters, digits, '.', '_' or '-' (at most 64)")
        if key_id in by_id:
            raise CodecKeyError(f"{source}: key id {key_id!r} appears twice; ids must be unique")
        by_id[key_id] = _decode_key(encoded, f"{source}, key {key_id!r}")
    if not by_id:
        raise CodecKeyError(f"{source} holds no keys; expected lines of KEY_ID:BASE64KEY")
    return CodecKeys(primary=next(iter(by_id)), by_id=by_id)


def _decode_key(encoded: str, where: str) -> bytes:
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise CodecKeyError(f"{where}: not valid base64") from None
    if len(key) != KEY_BYTES:
        raise CodecKeyError(f"{where}: {len(key)} bytes, but AES-256 needs exactly {KEY_BYTES}")
    return key


def read_keys_file(path: str | Path) -> CodecKeys:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise CodecKeyError(f"cannot read codec keys file {path}: {error.strerror}") from None
    return parse_keys(text, f"codec keys file {path}")


def keys_from_environment(default_file: str | Path | None = None) -> CodecKeys | None:
    """Keys from ``$ZEROTOUCH_CODEC_KEYS`` or the file ``$ZEROTOUCH_CODEC_KEYS_FILE``.

    Without either, ``default_file`` if it exists (the state dir of `zerotouch up`);
    ``None`` means no codec: payloads are stored unencrypted.
    """
    inline = os.environ.get(KEYS_ENV, "").strip()
    file = os.environ.get(KEYS_FILE_ENV, "").strip()
    if inline and file:
        raise CodecKeyError(f"set ${KEYS_ENV} or ${KEYS_FILE_ENV}, not both")
    if inline:
        # A variable is easier to set on one line: commas separate entries there.
        return parse_keys(inline.replace(",", "\n"), f"${KEYS_ENV}")
    if file:
        return read_keys_file(file)
    if default_file is not None and Path(default_file).is_file():
        return read_keys_file(default_file)
    return None


def new_key_line(key_id: str | None = None) -> str:
    """A fresh ``KEY_ID:BASE64KEY`` line (the id defaults to today's date and a random suffix)."""
    key_id = key_id or f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"
    if not _KEY_ID.match(key_id):
        raise CodecKeyError(f"key id {key_id!r} must be letters, digits, '.', '_' or '-' (at most 64)")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


def ensure_keys_file(path: Path) -> bool:
    """Create ``path`` (0600) with one fresh key unless it exists; whether it was created."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("# zerotouch payload codec keys: the first encrypts, all decrypt. Keep old keys.\n")
        handle.write(new_key_line() + "\n")
    return True
