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


def batches_of(context: dg.AssetExecutionContext) -> list[int]:
    return sorted(int(key) for key in context.partition_keys)


def column_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(name=f.name, type=str(f.type),
                       constraints=dg.TableColumnConstraints(nullable=f.nullable))
        for f in schema
    ])


def actor_of(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> str:
    tags = context.run.tags if context.run else {}
    return tags.get("dagster/user") or tags.get("reval/actor") or "dagster"
