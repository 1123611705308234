"""The live store's views: their names, and the SQL of a view over one version's batch tables.

Readers query the live views (`LIVE_VIEWS`), each a UNION ALL over the live version's batch tables
`rb_<sha>` of its entity; on PostgreSQL each version also has its own views `r<version>_<view>`
(see `reval_assets.store.live`).
"""

from __future__ import annotations

import pyarrow as pa

from reval_assets.domain.schemas import ENTITIES, ENTITY_SPECS
from reval_assets.store.bulk import identifier
from reval_assets.store.snapshots import VERSION_ID, FileRef

LIVE_VIEWS: tuple[str, ...] = (*ENTITIES, "discrepancies")
# Entities added after the first versions were staged: a version without them shows them empty.
LATER_ENTITIES: tuple[str, ...] = ("hidden_discrepancies",)


def file_table(ref: FileRef) -> str:
    return identifier(f"rb_{ref.sha256[:32]}")


def version_view(version: str, view: str) -> str:
    if not VERSION_ID.match(version):
        raise ValueError(f"not a generated version id: {version!r}")
    return identifier(f"r{version}_{view}")


def _entity_of(view: str) -> str:
    return "connections" if view == "discrepancies" else view


def union_sql(view: str, tables: list[str]) -> str:
    """The SELECT behind a live view over one version's batch tables of its entity."""
    where = " WHERE is_discrepancy" if view == "discrepancies" else ""
    fields = ENTITY_SPECS[_entity_of(view)].schema
    if not tables:  # an entity a version staged before it existed: its view is empty
        return "SELECT " + ", ".join(f"CAST(NULL AS {_sql_type(f.type)}) AS {identifier(f.name)}"
                                     for f in fields) + " WHERE 1 = 0"
    columns = ", ".join(identifier(f.name) for f in fields)
    return " UNION ALL ".join(f"SELECT {columns} FROM {identifier(t)}{where}" for t in tables)


def _sql_type(arrow: pa.DataType) -> str:
    for test, name in ((pa.types.is_date, "DATE"), (pa.types.is_timestamp, "TIMESTAMP"),
                       (pa.types.is_integer, "BIGINT"), (pa.types.is_boolean, "BOOLEAN")):
        if test(arrow):
            return name
    return "TEXT"
