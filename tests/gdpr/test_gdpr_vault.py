"""The request vault: personal data encrypted at rest, write-once where a resumed erasure depends on it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import stat
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from zerotouch.gdpr_models import PSEUDONYM, Subject, VaultRef
from zerotouch.gdpr_vault import (
    MAKE_KEY,
    RequestVault,
    VaultConflict,
    VaultCorrupt,
    VaultKeyMismatch,
    VaultMissing,
    VaultUnavailable,
    field_pseudonym,
    pseudonym,
    vault_key,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
ALICE = Subject(email="Alice.Liddell@Example.org", user_id="u-4711")
BOB = Subject(email="bob.builder@example.net")
# Everything a test writes that must never reach the disk in clear.
SECRETS = ["alice.liddell@example.org", "Alice.Liddell", "u-4711", "bob.builder@example.net",
           "Wonderland Lane 7", "+44 20 7946 0000", "Liddell"]
ROWS: dict[str, list[dict[str, Any]]] = {
    "customers": [{"id": 17, "email": "alice.liddell@example.org", "name": "Alice Liddell",
                   "phone": "+44 20 7946 0000", "born": dt.date(1852, 5, 4), "balance": Decimal("12.50")}],
    "addresses": [{"id": 3, "customer_id": 17, "street": "Wonderland Lane 7"}],
}


@pytest.fixture
def vault(tmp_path: Path) -> RequestVault:
    return RequestVault(tmp_path / "vault", KEY)


def all_bytes(root: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file())


def encoded(key: bytes, urlsafe: bool = False) -> str:
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(key).decode()


# -- the key ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [encoded(KEY), encoded(b"\xfb\xff" * 16, urlsafe=True),
                                  encoded(b"\xfb\xff" * 16, urlsafe=True).rstrip("="), f"  {encoded(KEY)}\n"])
def test_key_in_standard_or_urlsafe_base64(text: str) -> None:
    assert len(vault_key({"GDPR_KEY": text}, "GDPR_KEY")) == 32


@pytest.mark.parametrize(("text", "says"), [("", "is not set"), ("not base64!", "not valid base64"),
                                            (encoded(b"short"), "decodes to 5 bytes")])
def test_bad_key_names_the_variable_and_how_to_make_one(text: str, says: str) -> None:
    with pytest.raises(VaultUnavailable) as raised:
        vault_key({"GDPR_KEY": text} if text else {}, "GDPR_KEY")
    assert "GDPR_KEY" in str(raised.value) and says in str(raised.value) and MAKE_KEY in str(raised.value)


def test_the_suggested_command_makes_a_key_that_works() -> None:
    made = base64.b64encode(os.urandom(32)).decode()  # what MAKE_KEY prints
    assert vault_key({"K": made}, "K") == base64.b64decode(made)


def test_open_uses_the_policy_storage_or_the_state_directory(tmp_path: Path) -> None:
    environ = {"ZEROTOUCH_GDPR_KEY": encoded(KEY)}
    default = RequestVault.open(VaultRef(key_env="ZEROTOUCH_GDPR_KEY"), tmp_path / "state", environ)
    assert default.root == tmp_path / "state" / "gdpr" and default.root.is_dir()
    named = RequestVault.open(VaultRef(storage=str(tmp_path / "elsewhere"), key_env="ZEROTOUCH_GDPR_KEY"),
                              tmp_path / "state", environ)
    assert named.root == tmp_path / "elsewhere"
    with pytest.raises(VaultUnavailable, match="MISSING_KEY is not set"):
        RequestVault.open(VaultRef(key_env="MISSING_KEY"), tmp_path / "state", environ)


def test_a_vault_refuses_a_key_it_was_not_created_with(tmp_path: Path, vault: RequestVault) -> None:
    vault.record_subject("req-1", ALICE)
    with pytest.raises(VaultKeyMismatch, match="GDPR_KEY"):
        RequestVault.open(VaultRef(storage=str(vault.root), key_env="GDPR_KEY"), tmp_path,
                          {"GDPR_KEY": encoded(OTHER_KEY)})


def test_a_directory_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(VaultUnavailable, match=str(blocker)):
        RequestVault(blocker / "vault", KEY)


# -- pseudonyms ---------------------------------------------------------------------------------------


def test_pseudonyms_are_keyed_normalised_and_separate_from_field_hashes() -> None:
    alias = Subject(email="  ALICE.liddell@example.ORG ", user_id="someone-else")
    assert pseudonym(KEY, ALICE) == pseudonym(KEY, alias)  # by e-mail when there is one
    assert pseudonym(KEY, ALICE) != pseudonym(OTHER_KEY, ALICE)
    assert pseudonym(KEY, Subject(user_id="u-4711")) != pseudonym(KEY, Subject(user_id="u-4712"))
    for value in (pseudonym(KEY, ALICE), field_pseudonym(KEY, "x")):
        assert re.match(PSEUDONYM, value)
    # Neither the bare identity's hash under the key itself nor the field hash of the same text.
    assert pseudonym(KEY, ALICE) != field_pseudonym(KEY, "email:alice.liddell@example.org")
    assert pseudonym(KEY, ALICE) != hmac.new(KEY, b"email:alice.liddell@example.org", hashlib.sha256).hexdigest()
    assert field_pseudonym(KEY, "x") == field_pseudonym(KEY, "x") != field_pseudonym(OTHER_KEY, "x")


# -- the subject --------------------------------------------------------------------------------------


def test_subject_round_trip_and_idempotence(vault: RequestVault) -> None:
    first = vault.record_subject("req-1", ALICE)
    assert first == vault.record_subject("req-1", Subject(email="alice.liddell@example.org", user_id="u-4711"))
    assert first == pseudonym(KEY, ALICE)
    assert vault.subject("req-1") == ALICE
    assert RequestVault(vault.root, KEY).subject("req-1") == ALICE  # another process, same key


def test_a_request_id_names_one_subject(vault: RequestVault) -> None:
    vault.record_subject("req-1", ALICE)
    with pytest.raises(VaultConflict) as raised:
        vault.record_subject("req-1", BOB)
    assert isinstance(raised.value, ValueError)
    assert "bob" not in str(raised.value) and "alice" not in str(raised.value).lower()
    assert vault.subject("req-1") == ALICE


def test_concurrent_recordings_agree_on_one_subject(vault: RequestVault) -> None:
    outcomes: list[str] = []

    def record(subject: Subject) -> None:
        try:
            vault.record_subject("req-race", subject)
            outcomes.append("recorded")
        except VaultConflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=record, args=(ALICE if n % 2 else BOB,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winner = vault.subject("req-race")
    assert outcomes.count("recorded") == 4 and outcomes.count("refused") == 4
    assert winner in (ALICE, BOB)


def test_an_unknown_request_is_missing(vault: RequestVault) -> None:
    with pytest.raises(VaultMissing, match="no subject recorded for req-404") as raised:
        vault.subject("req-404")
    assert isinstance(raised.value, KeyError)
    assert vault.manifest("req-404", "shop") is None


@pytest.mark.parametrize("request_id", ["../etc", "Req-1", "a", "req/1"])
def test_request_ids_cannot_leave_the_vault(vault: RequestVault, request_id: str) -> None:
    with pytest.raises(ValueError, match="request id"):
        vault.record_subject(request_id, ALICE)


def test_store_names_cannot_leave_the_vault(vault: RequestVault) -> None:
    with pytest.raises(ValueError, match="store name"):
        vault.write_manifest("req-1", "../subjects", {})


# -- manifests ----------------------------------------------------------------------------------------


def test_manifest_round_trip_and_idempotence(vault: RequestVault) -> None:
    keys: dict[str, list[Any]] = {"customers": [17], "orders": [101, 102], "sessions": ["s-1"]}
    digest = vault.write_manifest("req-1", "shop", keys)
    assert len(digest) == 64
    assert vault.write_manifest("req-1", "shop", {"sessions": ["s-1"], "orders": [101, 102], "customers": [17]}) \
        == digest
    assert vault.manifest("req-1", "shop") == keys
    assert vault.manifest("req-1", "crm") is None


def test_a_manifest_is_never_replaced(vault: RequestVault) -> None:
    digest = vault.write_manifest("req-1", "shop", {"customers": [17], "orders": [101]})
    # A resumed erasure after the orders were deleted resolves fewer rows: the first manifest stands.
    with pytest.raises(VaultConflict, match=f"sha256 {digest}"):
        vault.write_manifest("req-1", "shop", {"customers": [17], "orders": []})
    assert vault.manifest("req-1", "shop") == {"customers": [17], "orders": [101]}


def test_manifest_row_keys_must_be_json(vault: RequestVault) -> None:
    with pytest.raises(TypeError, match="row keys must be JSON"):
        vault.write_manifest("req-1", "shop", {"customers": [dt.UTC]})


# -- exports ------------------------------------------------------------------------------------------


def test_export_round_trip_and_manifest(vault: RequestVault) -> None:
    path, digest = vault.write_export("req-1", "shop", ROWS)
    exported = vault.read_export(path)
    assert exported["customers"][0]["born"] == "1852-05-04" and exported["customers"][0]["balance"] == "12.50"
    assert exported["addresses"] == ROWS["addresses"]
    assert digest == hashlib.sha256(json.dumps(exported, sort_keys=True, separators=(",", ":"),
                                               ensure_ascii=False).encode()).hexdigest()
    manifest_path, manifest_digest = vault.write_export_manifest(
        "req-1", {"shop": {"rows": 2, "sha256": digest, "location": path}})
    assert Path(manifest_path).parent == Path(path).parent
    assert hashlib.sha256(Path(manifest_path).read_bytes()).hexdigest() == manifest_digest
    assert json.loads(Path(manifest_path).read_text())["stores"]["shop"]["sha256"] == digest


def test_an_export_rewritten_by_a_retry_is_readable(vault: RequestVault) -> None:
    first, digest = vault.write_export("req-1", "shop", ROWS)
    again, same = vault.write_export("req-1", "shop", ROWS)
    assert (first, digest) == (again, same)
    assert vault.read_export(again)["addresses"] == ROWS["addresses"]
    assert not [p for p in Path(first).parent.iterdir() if p.name.endswith(".tmp")]


# -- tampering, keys and associated data --------------------------------------------------------------


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def test_tampered_files_are_corrupt(vault: RequestVault) -> None:
    vault.record_subject("req-1", ALICE)
    vault.write_manifest("req-1", "shop", {"customers": [17]})
    path, _ = vault.write_export("req-1", "shop", ROWS)
    flip_last_byte(vault.root / "subjects" / "req-1.bin")
    flip_last_byte(vault.root / "manifests" / "req-1" / "shop.bin")
    flip_last_byte(Path(path))
    with pytest.raises(VaultCorrupt, match="failed authentication"):
        vault.subject("req-1")
    with pytest.raises(VaultCorrupt):
        vault.manifest("req-1", "shop")
    with pytest.raises(VaultCorrupt):
        vault.read_export(path)
    # A corrupt manifest cannot be "confirmed" or replaced by writing again either.
    with pytest.raises(VaultCorrupt):
        vault.write_manifest("req-1", "shop", {"customers": [17]})
    (vault.root / "subjects" / "req-1.bin").write_bytes(b"short")
    with pytest.raises(VaultCorrupt, match="not a request vault file"):
        vault.subject("req-1")


def test_a_wrong_key_reads_nothing(tmp_path: Path, vault: RequestVault) -> None:
    vault.record_subject("req-1", ALICE)
    path, _ = vault.write_export("req-1", "shop", ROWS)
    with pytest.raises(VaultKeyMismatch, match="different key"):
        RequestVault(vault.root, OTHER_KEY)
    # Even with the key check gone (copied elsewhere), the files do not decrypt under another key.
    (vault.root / "key-check").unlink()
    other = RequestVault(vault.root, OTHER_KEY)
    with pytest.raises(VaultCorrupt):
        other.subject("req-1")
    with pytest.raises(VaultCorrupt):
        other.read_export(path)


def test_files_are_bound_to_their_request_and_kind(vault: RequestVault) -> None:
    vault.record_subject("req-1", ALICE)
    vault.write_manifest("req-1", "shop", {"customers": [17]})
    path, _ = vault.write_export("req-1", "shop", ROWS)
    subjects = vault.root / "subjects"
    (subjects / "req-2.bin").write_bytes((subjects / "req-1.bin").read_bytes())
    with pytest.raises(VaultCorrupt):
        vault.subject("req-2")
    manifests = vault.root / "manifests"
    shop = (manifests / "req-1" / "shop.bin").read_bytes()
    (manifests / "req-2").mkdir()
    (manifests / "req-2" / "shop.bin").write_bytes(shop)  # another request
    (manifests / "req-1" / "crm.bin").write_bytes(shop)  # another store
    with pytest.raises(VaultCorrupt):
        vault.manifest("req-2", "shop")
    with pytest.raises(VaultCorrupt):
        vault.manifest("req-1", "crm")
    # A manifest file put where an export belongs (another kind) does not decrypt as an export.
    export_dir = Path(path).parent
    (export_dir / "crm.json.bin").write_bytes((manifests / "req-1" / "crm.bin").read_bytes())
    with pytest.raises(VaultCorrupt):
        vault.read_export(str(export_dir / "crm.json.bin"))
    other_request = vault.root / "exports" / "req-9"
    other_request.mkdir()
    (other_request / "shop.json.bin").write_bytes(Path(path).read_bytes())
    with pytest.raises(VaultCorrupt):
        vault.read_export(str(other_request / "shop.json.bin"))


# -- permissions and what is on disk ------------------------------------------------------------------


def test_directories_0700_files_0600(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    root.mkdir(mode=0o755)
    vault = RequestVault(root, KEY)
    vault.record_subject("req-1", ALICE)
    vault.write_manifest("req-1", "shop", {"customers": [17]})
    vault.write_export("req-1", "shop", ROWS)
    vault.write_export_manifest("req-1", {"shop": {"rows": 2}})
    vault.suppress(pseudonym(KEY, ALICE), "req-1")
    entries = [root, *root.rglob("*")]
    assert len([p for p in entries if p.is_file()]) == 7
    for entry in entries:
        mode = stat.S_IMODE(entry.stat().st_mode)
        assert mode == (0o700 if entry.is_dir() else 0o600), (entry, oct(mode))


def test_no_identity_or_row_value_on_disk_in_clear(vault: RequestVault) -> None:
    alice = vault.record_subject("req-1", ALICE)
    vault.record_subject("req-2", BOB)
    vault.write_manifest("req-1", "shop", {"customers": ["alice.liddell@example.org"]})  # a natural key
    path, digest = vault.write_export("req-1", "shop", ROWS)
    vault.write_export_manifest("req-1", {"shop": {"rows": 2, "sha256": digest, "location": path}})
    vault.suppress(alice, "req-1")
    vault.suppress(vault.record_subject("req-2", BOB), "req-2")
    on_disk = all_bytes(vault.root).lower()
    names = "\n".join(str(p) for p in vault.root.rglob("*")).lower()
    for secret in SECRETS:
        for form in (secret, json.dumps(secret)[1:-1]):
            assert form.lower().encode() not in on_disk, secret
            assert form.lower() not in names, secret
    assert alice.encode() in on_disk  # the pseudonym is what the clear files hold


# -- suppression --------------------------------------------------------------------------------------


def test_suppression_list_keeps_erased_subjects(vault: RequestVault) -> None:
    alice, bob = vault.record_subject("req-1", ALICE), vault.record_subject("req-2", BOB)
    assert vault.suppressed() == [] and vault.suppressed_subjects() == []
    at = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
    vault.suppress(alice, "req-1", at=at)
    vault.suppress(alice, "req-1", at=at)  # a retried activity
    vault.suppress(bob, "req-2", at=at)
    again = RequestVault(vault.root, KEY)
    assert again.suppressed() == [alice, bob]
    assert again.suppressed_subjects() == [ALICE, BOB]
    lines = [json.loads(line) for line in (vault.root / "suppression.jsonl").read_text().splitlines()]
    assert lines == [{"pseudonym": alice, "request_id": "req-1", "at": at.isoformat()},
                     {"pseudonym": bob, "request_id": "req-2", "at": at.isoformat()}]


def test_a_second_request_for_the_same_person_is_one_entry(vault: RequestVault) -> None:
    first = vault.record_subject("req-1", Subject(email="alice.liddell@example.org"))
    second = vault.record_subject("req-3", ALICE)  # same e-mail, now with the user id
    assert first == second
    vault.suppress(first, "req-1")
    vault.suppress(second, "req-3")
    assert vault.suppressed() == [first]
    assert vault.suppressed_subjects() == [ALICE]  # the identity that finds more rows is the one kept


def test_suppress_refuses_a_pseudonym_that_is_not_the_requests_subject(vault: RequestVault) -> None:
    vault.record_subject("req-1", ALICE)
    with pytest.raises(VaultConflict):
        vault.suppress(pseudonym(KEY, BOB), "req-1")
    with pytest.raises(ValueError, match="64 lowercase hex"):
        vault.suppress("alice", "req-1")
    with pytest.raises(VaultMissing):
        vault.suppress(pseudonym(KEY, BOB), "req-404")
    assert vault.suppressed() == []


def test_a_torn_last_line_is_dropped_and_the_list_goes_on(vault: RequestVault) -> None:
    alice, bob = vault.record_subject("req-1", ALICE), vault.record_subject("req-2", BOB)
    vault.suppress(alice, "req-1")
    with (vault.root / "suppression.jsonl").open("ab") as handle:
        handle.write(b'{"pseudonym":"' + bob[:20].encode())  # a crash mid-append: never acknowledged
    assert vault.suppressed() == [alice]
    vault.suppress(bob, "req-2")
    assert vault.suppressed() == [alice, bob]


def test_an_edited_suppression_list_is_corrupt(vault: RequestVault) -> None:
    vault.suppress(vault.record_subject("req-1", ALICE), "req-1")
    with (vault.root / "suppression.jsonl").open("ab") as handle:
        handle.write(b"garbage\n")
    with pytest.raises(VaultCorrupt, match="line 2"):
        vault.suppressed()


def test_a_tampered_kept_identity_is_corrupt(vault: RequestVault) -> None:
    alice = vault.record_subject("req-1", ALICE)
    vault.suppress(alice, "req-1")
    bob = vault.record_subject("req-2", BOB)
    vault.suppress(bob, "req-2")
    kept = vault.root / "suppressed"
    (kept / f"{alice}.bin").write_bytes((kept / f"{bob}.bin").read_bytes())
    with pytest.raises(VaultCorrupt):
        vault.suppressed_subjects()


def test_concurrent_suppressions_each_appear_once(vault: RequestVault) -> None:
    subjects = [Subject(user_id=f"user-{n}") for n in range(12)]
    names = [vault.record_subject(f"req-{n:02d}", subject) for n, subject in enumerate(subjects)]
    threads = [threading.Thread(target=vault.suppress, args=(names[n % 12], f"req-{n % 12:02d}"))
               for n in range(36)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(vault.suppressed()) == sorted(names)
    assert len((vault.root / "suppression.jsonl").read_text().splitlines()) == 12
