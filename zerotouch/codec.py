"""The payload codec: every payload AES-256-GCM encrypted before it reaches Temporal.

An encrypted payload carries, in clear metadata, ``encoding: binary/encrypted``,
the cipher and the id of the key; its data is a random 96-bit nonce followed by
the ciphertext (with its 128-bit tag) of the whole original payload (metadata and
data). The key id is associated data, so moving a payload to another key id fails
authentication instead of decrypting under the wrong key. Payloads without the
encrypted marker (written before the codec was switched on, or sent by a tool
without it) decode as they are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from zerotouch.codec_keys import CodecKeys

ENCODING = b"binary/encrypted"
CIPHER = b"AES256-GCM"
METADATA_ENCODING = "encoding"
METADATA_KEY_ID = "encryption-key-id"
METADATA_CIPHER = "encryption-cipher"
NONCE_BYTES = 12
_AAD_PREFIX = b"zerotouch-codec/v1\x00"


class CodecError(ValueError):
    """A payload that cannot be decrypted; the message says why and what to do."""


def _associated_data(key_id: bytes) -> bytes:
    return _AAD_PREFIX + key_id


class EncryptionCodec(PayloadCodec):
    """AES-GCM with the first configured key; decrypts with whichever key a payload names."""

    def __init__(self, keys: CodecKeys) -> None:
        self._keys = keys
        self._ciphers = {key_id.encode(): AESGCM(key) for key_id, key in keys.by_id.items()}
        self._primary = keys.primary.encode()

    @property
    def key_ids(self) -> list[str]:
        """Configured key ids, the encrypting one first (ids are not secret)."""
        return list(self._keys.by_id)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._primary].encrypt(
            nonce, payload.SerializeToString(), _associated_data(self._primary)
        )
        return Payload(
            metadata={METADATA_ENCODING: ENCODING, METADATA_KEY_ID: self._primary, METADATA_CIPHER: CIPHER},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get(METADATA_ENCODING) != ENCODING:
            return payload
        key_id = payload.metadata.get(METADATA_KEY_ID, b"")
        shown = key_id.decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecError(
                f"payload was encrypted with key {shown!r}, which is not configured "
                f"(have {', '.join(self.key_ids)}); add that key back (after the encrypting one) to read it"
            )
        if len(payload.data) <= NONCE_BYTES:
            raise CodecError(f"encrypted payload (key {shown!r}) is truncated: no ciphertext after the nonce")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, _associated_data(key_id))
        except InvalidTag:
            raise CodecError(
                f"encrypted payload (key {shown!r}) failed authentication: the ciphertext, nonce or key id "
                "was altered, or the key with this id is not the one that encrypted it"
            ) from None
        original = Payload()
        original.ParseFromString(plain)
        return original
