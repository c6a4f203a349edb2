"""What a data-subject request's workflow and its activities exchange: request ids, pseudonyms, counts, hashes.

The subject's identity (an e-mail address, a user id) is personal data: it is written once at
intake into the request vault (`zerotouch.gdpr_vault`, encrypted) and read back only by the
activities that query the stores. Workflow inputs, results, queries and the ledger carry the
request id, a keyed-hash pseudonym of the subject, counts and hashes.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zerotouch.gdpr import Store

RequestKind = Literal["access", "erasure"]
REQUEST_ID = r"^[a-z0-9][a-z0-9-]{2,62}$"
PSEUDONYM = r"^[0-9a-f]{64}$"
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
_USER_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Subject(_Model):
    """Whom a request is about: never in workflow history, only in the request vault."""

    email: str | None = None
    user_id: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if len(value) > 254 or not _EMAIL.match(value):
            raise ValueError("not an e-mail address")  # the value is not repeated: it is personal data
        return value

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, value: str | None) -> str | None:
        if value is not None and not _USER_ID.match(value):
            raise ValueError("a user id is 1-128 letters, digits or _ . : @ -")
        return value

    @model_validator(mode="after")
    def _something(self) -> Subject:
        if self.email is None and self.user_id is None:
            raise ValueError("a subject needs an e-mail address or a user id")
        return self

    def __repr__(self) -> str:  # a subject in a traceback or a log shows no personal data
        return "Subject(<redacted>)"

    __str__ = __repr__


class VaultRef(_Model):
    """Where the request vault is (the policy's gdpr.storage, key variable): resolved by the worker."""

    storage: str = ""
    key_env: str


class DsrInput(_Model):
    """What starts a DataSubjectRequestWorkflow (the subject itself is already in the vault)."""

    request_id: str = Field(pattern=REQUEST_ID)
    kind: RequestKind
    subject: str = Field(pattern=PSEUDONYM, description="the subject's pseudonym (keyed hash), never the identity")
    requested_by: str = Field(min_length=1, max_length=200, description="who filed it (an operator, a portal)")
    verification: str = Field(min_length=1, max_length=500,
                              description="how the subject's identity was verified, e.g. `e-mail link clicked`")
    received_at: datetime
    cluster: str = ""


class StoreStep(_Model):
    """One store's part of one request."""

    request_id: str = Field(pattern=REQUEST_ID)
    store_name: str
    store: Store
    vault: VaultRef


class SuppressStep(_Model):
    """Put an erased subject on the suppression list (re-erased after any restore)."""

    request_id: str = Field(pattern=REQUEST_ID)
    subject: str = Field(pattern=PSEUDONYM)
    vault: VaultRef


class TableCount(_Model):
    table: str
    matched: int = 0
    erased: int = 0
    method: str = ""


class StoreManifest(_Model):
    """The subject's rows in one store, resolved and kept in the vault before anything is erased."""

    store_name: str
    tables: list[TableCount]
    sha256: str = Field(description="hash of the manifest as kept in the vault (row keys, never values)")

    @property
    def matched(self) -> int:
        return sum(t.matched for t in self.tables)


class StoreErased(_Model):
    store_name: str
    tables: list[TableCount]
    already: bool = Field(description="nothing was left to erase: a rerun after it finished")


class StoreExported(_Model):
    store_name: str
    location: str = Field(description="the encrypted export file")
    sha256: str = Field(description="hash of the export's plaintext JSON")
    rows: int


class ExportManifest(_Model):
    """The counts and hashes of one request's exports (no personal data), kept in clear beside them."""

    request_id: str = Field(pattern=REQUEST_ID)
    vault: VaultRef
    stores: list[StoreExported]


class StoreRequery(_Model):
    """Proof by re-query: the access query's matches after erasure (zero, or the erasure failed)."""

    store_name: str
    matches: int


class StoreReceipt(_Model):
    store_name: str
    kind: str
    matched: int
    erased: int
    methods: dict[str, str] = Field(default_factory=dict, description="table → delete / fields")
    requery_matches: int | None = None
    export_sha256: str = ""


Outcome = Literal["complete", "partial", "denied", "cancelled", "held", "nothing_found", "planned", "failed"]


class DsrReceipt(_Model):
    """What the ledger keeps of a request: no personal data, the policy version pinned at intake."""

    request_id: str
    kind: RequestKind
    subject: str = Field(description="the subject's pseudonym")
    outcome: Outcome
    requested_by: str
    verification: str
    decided_by: str = ""
    decision_note: str = ""
    received_at: datetime
    due_at: datetime
    finished_at: datetime
    policy_digest: str
    stores: list[StoreReceipt] = Field(default_factory=list)
    workflow_id: str
    run_id: str


class Extension(_Model):
    """Art. 12(3): once, up to two months, with a reason, before the original due date."""

    by: str = Field(min_length=1, max_length=128)
    months: int = Field(ge=1, le=2)
    reason: str = Field(min_length=1, max_length=2000)


class Cancel(_Model):
    by: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)


class Deny(_Model):
    """Art. 12(4): a refusal gives its reasons."""

    by: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=1, max_length=2000)


class DsrEntry(_Model):
    at: datetime
    kind: str
    message: str
    actor: str = "zerotouch"


class DsrStatus(_Model):
    """The `status` query."""

    request_id: str
    kind: RequestKind
    subject: str
    state: Literal["intake", "resolving", "awaiting_approval", "grace", "held", "executing", "verifying",
                   "done"] = "intake"
    outcome: str = ""
    received_at: datetime
    due_at: datetime
    extended: bool = False
    stores: dict[str, str] = Field(default_factory=dict, description="store → pending / done / failed: reason")
    matched: dict[str, int] = Field(default_factory=dict)
    erase_at: datetime | None = None
    timeline: list[DsrEntry] = Field(default_factory=list)
