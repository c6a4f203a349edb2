"""What re-applying the suppression list to one store exchanges: a store and the vault in, counts out.

Re-applying erases again every subject on the suppression list whose rows a database restore brought
back. The input names the store and the vault, never a subject; the output is counts per table.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from zerotouch.gdpr import Store
from zerotouch.gdpr_models import TableCount, VaultRef


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReapplyStep(_Model):
    """Erase every suppressed subject again in one store (after a restore of that store's database)."""

    store_name: str
    store: Store
    vault: VaultRef


class ReapplyResult(_Model):
    """How many subjects the suppression list holds and how many of their rows were erased again."""

    store_name: str
    subjects: int = Field(description="subjects on the suppression list (all are looked for)")
    tables: list[TableCount] = Field(default_factory=list, description="rows erased again per table, children first")

    @property
    def erased(self) -> int:
        return sum(table.erased for table in self.tables)
