"""With the payload codec on, a rotation's credentials are nowhere in history, even after decryption.

The rotation tests (tests/rotation/) check every path with the codec off, where a credential in a
payload would be plain to see. Here the same paths run against an encrypting dev server: the raw
histories are searched (search attributes and memos are never encrypted), and every payload is
decrypted with the codec and searched again: what an operator with the key could read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from sandbox import SandboxCluster
from tests.rotation.leaks import assert_absent, decoded_payloads, raw_histories
from tests.rotation.support import ROLES, AppDatabase, LoginProbe, app_database
from tests.rotation.test_rotation_postgres import result_of, scene
from zerotouch.codec import EncryptionCodec
from zerotouch.codec_keys import CodecKeys


async def test_no_credential_in_any_rotation_history_with_the_codec_on(
        encrypted_env: WorkflowEnvironment, codec_keys: CodecKeys, sandbox: SandboxCluster, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    database: AppDatabase
    with app_database() as database:
        async with scene(encrypted_env, sandbox, database, tmp_path, monkeypatch) as s:
            with LoginProbe(s.api, database) as probe:
                database.set_hba([f"host all {ROLES[1]} 127.0.0.1/32 reject"])
                refused = await result_of(await s.start())  # a failed step, rolled back
                database.set_hba([])
                rotated = await result_of(await s.start())
            assert (refused.outcome, rotated.outcome) == ("rolled_back", "rotated")
            assert probe.failures == [] and len(probe.seen) >= 3, "initial, refused pending, new"
            raw = await raw_histories(encrypted_env.client, s.cluster)
            assert any(key.startswith("zerotouch-rotation-") for key in raw), list(raw)
            assert_absent(raw, probe.seen, "raw history")
            assert all(b"binary/encrypted" in blob for blob in raw.values())
            decoded = await decoded_payloads(encrypted_env.client, EncryptionCodec(codec_keys), s.cluster)
            assert any(b"checkout-db" in blob for blob in decoded.values()), "decryption did not work"
            assert_absent(decoded, probe.seen, "decrypted payloads")
