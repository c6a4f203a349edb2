"""`zerotouch gdpr download REQUEST --out DIR`: a completed export, decrypted, to hand to the subject.

The export lies encrypted in the request vault (one document per store plus a manifest of rows and
hashes). This writes each store's document as ``<store>.json`` and the manifest beside it, owner-only
(0600 in a 0700 directory), after checking every document against the manifest's hash. It never
overwrites a file: personal data is not left half-replaced in a directory someone else chose.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import click

from cli.common import json_option, print_json, state_dir_option
from cli.errors import CommandError, UsageError


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


@click.command(short_help="decrypt a completed export into a directory, to hand to the subject")
@click.argument("request_id", metavar="REQUEST_ID")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="directory to write into (made 0700 if missing; must not already hold the files)")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
              help="policy file with the `gdpr:` section (default $ZEROTOUCH_POLICY or the shipped policy)")
@state_dir_option()
@json_option("what was written")
def download(request_id: str, out_dir: str, policy_path: str | None, state_dir: str | None, as_json: bool) -> None:
    """Write REQUEST's export (an access request that completed) into --out: one JSON document per store,
    checked against the export manifest's sha256, and the manifest itself."""
    from embedded.statedir import StateDir
    from zerotouch.gdpr_keys import canonical_json
    from zerotouch.gdpr_models import REQUEST_ID, VaultRef
    from zerotouch.gdpr_vault import RequestVault, VaultError
    from zerotouch.policy import load_policy
    from zerotouch.settings import default_policy_path

    if not re.match(REQUEST_ID, request_id):
        raise UsageError(f"{request_id!r} is not a request id (3-63 lowercase letters, digits and dashes)")
    gdpr = load_policy(policy_path or default_policy_path()).gdpr
    try:
        vault = RequestVault.open(VaultRef(storage=gdpr.storage, key_env=gdpr.key_env),
                                  StateDir(state_dir).path.resolve())
    except VaultError as error:
        raise CommandError(str(error)) from None
    folder = vault.root / "exports" / request_id
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise CommandError(f"request {request_id} has no completed export in {vault.root} (an erasure, or an "
                           f"access request still running: `zerotouch gdpr show {request_id}`)")
    manifest_bytes = manifest_path.read_bytes()
    entries: dict[str, dict[str, object]] = json.loads(manifest_bytes)["stores"]
    documents: dict[str, bytes] = {}
    for store_name, entry in sorted(entries.items()):
        try:
            rows = vault.read_export(str(folder / str(entry["file"])))
        except VaultError as error:
            raise CommandError(f"store {store_name}: {error}") from None
        document = canonical_json(rows)
        if hashlib.sha256(document).hexdigest() != entry["sha256"]:
            raise CommandError(f"store {store_name}: the export does not match its manifest's sha256; not written")
        documents[f"{store_name}.json"] = document
    out = Path(out_dir)
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    existing = sorted(name for name in [*documents, "manifest.json"] if (out / name).exists())
    if existing:
        raise CommandError(f"{out} already holds {', '.join(existing)}; choose an empty directory")
    for name, document in documents.items():
        _write_private(out / name, document)
    _write_private(out / "manifest.json", manifest_bytes)
    written = {name: int(str(entries[name.removesuffix('.json')]["rows"])) for name in documents}
    if as_json:
        print_json({"request_id": request_id, "directory": str(out), "files": written})
        return
    for name, count in written.items():
        click.echo(f"{out / name}: {count} row(s)")
    click.echo(f"{out / 'manifest.json'}: rows and sha256 per store")
