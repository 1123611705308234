"""Reading an entity back as one table: a published version's files, or the newest files of some batches.

`read_version` is for notebooks (`reval_assets.read_version`); `head_table` serves the Dagster IO
manager (`reval_assets.assets.io_manager`), which loads what each partition materialised last.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from reval_assets.domain.schemas import ENTITIES, ENTITY_SPECS
from reval_assets.pipeline.runtime import Runtime
from reval_assets.pipeline.steps import ENTITY_GROUP, MissingBatchError
from reval_assets.settings import Settings
from reval_assets.store.snapshots import FileRef, SnapshotStore

if TYPE_CHECKING:
    import pandas as pd


class NothingLiveError(LookupError):
    """`read_version` without a version, on a store that has published nothing yet."""


def read_version(entity: str, version: str | None = None, home: Path | str | None = None) -> pd.DataFrame:
    """One entity of a version as a pandas DataFrame: every batch's file of its manifest, in batch order.

    `version`: default the live one. `home`: the REVAL_HOME to read (default the environment's); the live
    store is REVAL_LIVE_URL's, or that home's `live.db`. Each file is checked against its sha256 first.
    Raises ValueError (unknown entity), UnknownVersionError, NothingLiveError, FileNotFoundError (no
    snapshots in that home) or CorruptFileError (a damaged file), each saying what to do.
    """
    return version_table(entity, version, home).to_pandas()


def version_table(entity: str, version: str | None = None, home: Path | str | None = None) -> pa.Table:
    """`read_version`'s table, as Arrow."""
    _known(entity)
    environ = dict(os.environ) | ({"REVAL_HOME": str(home)} if home is not None else {})
    settings = Settings.from_env(environ)
    store = existing_store(settings)
    if version is None:
        version = _live_version(settings)
    manifest = store.manifest(version)  # UnknownVersionError for an id it does not hold
    return _concat(entity, [store.read_table(ref) for ref in manifest.files.get(entity, [])])


def head_table(store: SnapshotStore, entity: str, batches: Sequence[int]) -> pa.Table:
    """The entity's newest files of `batches` (each batch's head: what its last materialisation wrote, which may
    be a staged or blocked sync's, not live's), checked against their sha256 and concatenated in batch order."""
    _known(entity)
    refs: dict[int, FileRef] = {}
    for batch in batches:
        head = store.head(ENTITY_GROUP, batch) or {}
        if entity in head:
            refs[batch] = head[entity]
    missing = [b for b in batches if b not in refs]
    if missing:
        raise MissingBatchError(
            f"{entity} has never been materialised for partition(s) {', '.join(map(str, missing))} in "
            f"{store.root}; materialise {entity} for them first (or read a published version with "
            "`reval_assets.read_version`)")
    return _concat(entity, [store.read_table(refs[b]) for b in batches])


def existing_store(settings: Settings) -> SnapshotStore:
    """The home's snapshot store, which a reader never creates."""
    if not settings.snapshot_root.is_dir():
        raise FileNotFoundError(f"REVAL_HOME {settings.home} holds no snapshots ({settings.snapshot_root} is "
                                "missing); point REVAL_HOME (or home=) at the folder a sync wrote")
    return SnapshotStore(settings.snapshot_root)


def _live_version(settings: Settings) -> str:
    runtime = Runtime(settings, read_only=True)
    try:
        live = runtime.live.live_version()
    finally:
        runtime.close()
    if live is None:
        raise NothingLiveError(f"nothing is live in {settings.live_url} yet; pass a version (`reval versions` "
                               "lists them) or publish one first")
    return live


def _known(entity: str) -> None:
    if entity not in ENTITY_SPECS:
        raise ValueError(f"unknown entity {entity!r}; the entities are {', '.join(ENTITIES)}")


def _concat(entity: str, tables: list[pa.Table]) -> pa.Table:
    if not tables:
        return ENTITY_SPECS[entity].schema.empty_table()
    # a file written before a column was added lacks it: the column reads as nulls there
    return pa.concat_tables(tables, promote_options="default")
