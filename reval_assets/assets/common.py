"""Shared by the asset modules: partitions, environment label and metadata helpers."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa

from reval_assets.settings import Settings

SETTINGS_AT_LOAD = Settings.from_env()
ENV_LABEL = SETTINGS_AT_LOAD.env.value.upper()
SYNC_POOL = "reval_sync"

batch_partitions = dg.StaticPartitionsDefinition(SETTINGS_AT_LOAD.partition_keys)


def describe(text: str) -> str:
    """Every description starts with the environment, so PROD and DEV cannot be mistaken."""
    return f"[{ENV_LABEL}] {text}"


# `reval sync --batches 0,5,9` runs one Dagster run per contiguous range; this tag names every batch of
# the sync, so the first run lands them all from one read of the source and the others reuse it.
SYNC_BATCHES_TAG = "reval/sync_batches"


def batches_of(context: dg.AssetExecutionContext) -> list[int]:
    return sorted(int(key) for key in context.partition_keys)


def batches_to_land(context: dg.AssetExecutionContext, batches: int) -> list[int]:
    """This run's batches, and the rest of its sync's (the `reval/sync_batches` tag), if it has one."""
    tagged = (context.run.tags if context.run else {}).get(SYNC_BATCHES_TAG, "")
    try:
        others = {int(b) for b in tagged.split(",") if b.strip()}
    except ValueError:
        others = {-1}
    if not others <= set(range(batches)):
        raise dg.Failure(description=f"run tag {SYNC_BATCHES_TAG}={tagged!r}: expected batch numbers from 0 to "
                                     f"{batches - 1}, like 0,5,9; remove the tag to land only this run's batches")
    return sorted(others | set(batches_of(context)))


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(name=f.name, type=str(f.type),
                       constraints=dg.TableColumnConstraints(nullable=f.nullable))
        for f in schema
    ])


def actor_of(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> str:
    tags = context.run.tags if context.run else {}
    return tags.get("dagster/user") or tags.get("reval/actor") or "dagster"
