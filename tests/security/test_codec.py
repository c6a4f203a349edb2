"""The AES-GCM payload codec and its keys: round trip, rotation, and refusals that say why."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter

from embedded.statedir import StateDir
from embedded.up import _codec_keys
from zerotouch.codec import ENCODING, METADATA_KEY_ID, NONCE_BYTES, CodecError, EncryptionCodec
from zerotouch.codec_keys import (
    KEYS_ENV,
    KEYS_FILE_ENV,
    CodecKeyError,
    CodecKeys,
    ensure_keys_file,
    keys_from_environment,
    new_key_line,
    parse_keys,
    read_keys_file,
)
from zerotouch.models import ApproveInput
from zerotouch.temporal import data_converter

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"by": "alice", "note": "label-value-4711"}')


@pytest.fixture(autouse=True)
def _no_keys_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # setenv first, so monkeypatch restores the variables even when code under test sets them directly
    # (`zerotouch up` exports its key file); a leak would make later tests' clients encrypt.
    for name in (KEYS_ENV, KEYS_FILE_ENV):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def _key(byte: int) -> str:
    return base64.b64encode(bytes([byte]) * 32).decode()


async def test_round_trip_hides_the_data_and_marks_the_payload(codec_keys: CodecKeys) -> None:
    codec = EncryptionCodec(codec_keys)
    [first], [second] = await codec.encode([PLAIN]), await codec.encode([PLAIN])
    assert first.metadata["encoding"] == ENCODING and first.metadata[METADATA_KEY_ID] == b"k-new"
    assert b"label-value-4711" not in first.SerializeToString()
    assert b"json/plain" not in first.SerializeToString(), "the inner metadata is encrypted too"
    assert first.data[:NONCE_BYTES] != second.data[:NONCE_BYTES], "a fresh random nonce per payload"
    assert await codec.decode([first, second]) == [PLAIN, PLAIN]


async def test_rotation_new_key_first_old_payloads_still_decode() -> None:
    old = parse_keys(f"old:{_key(1)}", "old")
    [sealed_by_old] = await EncryptionCodec(old).encode([PLAIN])
    rotated = EncryptionCodec(parse_keys(f"new:{_key(2)}\nold:{_key(1)}", "rotated"))
    assert await rotated.decode([sealed_by_old]) == [PLAIN]
    [sealed_by_new] = await rotated.encode([PLAIN])
    assert sealed_by_new.metadata[METADATA_KEY_ID] == b"new"
    with pytest.raises(CodecError, match=r"key 'new', which is not configured \(have old\); add that key back"):
        await EncryptionCodec(old).decode([sealed_by_new])


async def test_tampering_fails_authentication(codec_keys: CodecKeys) -> None:
    codec = EncryptionCodec(codec_keys)
    [sealed] = await codec.encode([PLAIN])
    flipped = Payload()
    flipped.CopyFrom(sealed)
    flipped.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    with pytest.raises(CodecError, match="failed authentication: the ciphertext, nonce or key id was altered"):
        await codec.decode([flipped])
    # The key id is associated data: relabelling a payload to another configured key fails too.
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[METADATA_KEY_ID] = b"k-old"
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.decode([relabelled])
    truncated = Payload(metadata=dict(sealed.metadata), data=sealed.data[:NONCE_BYTES])
    with pytest.raises(CodecError, match="truncated"):
        await codec.decode([truncated])


async def test_unencrypted_payloads_pass_through(codec_keys: CodecKeys) -> None:
    """Histories written before the codec was switched on stay readable."""
    assert await EncryptionCodec(codec_keys).decode([PLAIN]) == [PLAIN]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no keys"),
        ("# only a comment\n\n", "holds no keys"),
        ("no-separator", "line 1: expected KEY_ID:BASE64KEY"),
        (f"bad id!:{_key(1)}", "line 1: expected KEY_ID:BASE64KEY"),
        ("k1:not*base64", "key 'k1': not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "key 'k1': 5 bytes, but AES-256 needs exactly 32"),
        (f"k1:{_key(1)}\nk1:{_key(2)}", "key id 'k1' appears twice"),
    ],
)
def test_malformed_keys_are_refused_without_showing_them(text: str, message: str) -> None:
    with pytest.raises(CodecKeyError, match=message) as refused:
        parse_keys(text, "test keys")
    assert _key(1) not in str(refused.value) and "not*base64" not in str(refused.value)


def test_key_formats_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    urlsafe = base64.urlsafe_b64encode(b"\xfb" * 32).decode().rstrip("=")
    keys = parse_keys(f"# rotated 2026-11, see runbook\n\n a:{urlsafe} \nb:{_key(3)}\n", "file")
    assert keys.primary == "a" and keys.by_id["a"] == b"\xfb" * 32 and list(keys.by_id) == ["a", "b"]
    assert "\\xfb" not in repr(keys) and _key(3) not in repr(keys)

    monkeypatch.setenv(KEYS_ENV, f"x:{_key(4)},y:{_key(5)}")
    from_env = keys_from_environment()
    assert from_env is not None and from_env.primary == "x" and list(from_env.by_id) == ["x", "y"]
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"z:{_key(6)}\n")
    monkeypatch.setenv(KEYS_FILE_ENV, str(keys_file))
    with pytest.raises(CodecKeyError, match="not both"):
        keys_from_environment()
    monkeypatch.delenv(KEYS_ENV)
    from_file = keys_from_environment()
    assert from_file is not None and from_file.primary == "z"
    with pytest.raises(CodecKeyError, match="cannot read codec keys file"):
        read_keys_file(tmp_path / "missing")


def test_default_converter_is_unchanged_without_keys(tmp_path: Path) -> None:
    assert data_converter() is pydantic_data_converter
    assert data_converter(keys_file=tmp_path / "absent") is pydantic_data_converter


async def test_converter_with_keys_encrypts_models_and_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               codec_keys: CodecKeys) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(new_key_line("from-file") + "\n")
    monkeypatch.setenv(KEYS_FILE_ENV, str(keys_file))
    converter = data_converter()
    [payload] = await converter.encode([ApproveInput(by="alice", note="label-value-4711")])
    assert payload.metadata[METADATA_KEY_ID] == b"from-file" and b"label-value-4711" not in payload.data
    assert await converter.decode([payload], [ApproveInput]) == [ApproveInput(by="alice", note="label-value-4711")]
    # Failure messages can quote labels; with keys they travel inside an encrypted payload.
    failure = Failure()
    await converter.encode_failure(ValueError("label-value-4711 is not DNS-1123"), failure)
    assert b"label-value-4711" not in failure.SerializeToString()
    explicit = data_converter(codec_keys)
    [sealed] = await explicit.encode(["x"])
    assert sealed.metadata[METADATA_KEY_ID] == b"k-new"


def test_zerotouch_up_makes_one_private_key_file_and_keeps_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = StateDir(tmp_path / "state").create()
    where = _codec_keys(state)
    keys_file = state.path / "codec-keys"
    assert where == str(keys_file.resolve()) and os.environ[KEYS_FILE_ENV] == where
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    first = keys_file.read_text()
    monkeypatch.delenv(KEYS_FILE_ENV)
    _codec_keys(state)  # a restart of `up` reuses the key, or it could not read its own history
    assert keys_file.read_text() == first
    assert not ensure_keys_file(keys_file)
    # Keys configured in the environment win; no file is made.
    monkeypatch.delenv(KEYS_FILE_ENV)
    other = StateDir(tmp_path / "other").create()
    monkeypatch.setenv(KEYS_ENV, f"ops:{_key(7)}")
    assert _codec_keys(other) == f"${KEYS_ENV}"
    assert not (other.path / "codec-keys").exists()
