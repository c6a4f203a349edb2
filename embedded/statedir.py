"""The embedded default's state directory: Temporal's SQLite file, the relay token, endpoints.

Commands such as `zerotouch fire` and `zerotouch sandbox inject` read the
endpoints file so they find what `zerotouch up` started without flags.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = ".zerotouch"


class StateDir:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path or os.environ.get("ZEROTOUCH_STATE_DIR", DEFAULT_STATE_DIR))

    def create(self) -> StateDir:
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        return self

    @property
    def temporal_db(self) -> Path:
        return self.path / "temporal.db"

    @property
    def token_file(self) -> Path:
        return self.path / "relay-token"

    @property
    def endpoints_file(self) -> Path:
        return self.path / "endpoints.json"

    def relay_token(self) -> str:
        """The relay's bearer token, created once (0600) and reused across restarts."""
        if self.token_file.exists():
            return self.token_file.read_text().strip()
        token = secrets.token_urlsafe(32)
        descriptor = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(token + "\n")
        return token

    def write_endpoints(self, endpoints: dict[str, Any]) -> None:
        temporary = self.endpoints_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(endpoints, indent=2))
        temporary.replace(self.endpoints_file)

    def endpoints(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.endpoints_file.read_text()))
        except (OSError, ValueError):
            return {}

    def clear_endpoints(self) -> None:
        self.endpoints_file.unlink(missing_ok=True)
