"""Shared by the asset modules: partitions, environment label and metadata helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa
import sqlalchemy as sa
from pydantic import Field

from reval_assets.domain.schemas import column_description
from reval_assets.errors import RevalError
from reval_assets.pipeline import room
from reval_assets.pipeline.runtime import Runtime
from reval_assets.settings import Settings

SETTINGS_AT_LOAD = Settings.from_env()
ENV_LABEL = SETTINGS_AT_LOAD.env.value.upper()
SYNC_POOL = "reval_sync"
# On every asset, so the catalog can be filtered by who answers for it and by domain (kinds say the storage).
OWNERS = ["team:revalidation-data"]
TAGS = {"domain": "revalidation"}

batch_partitions = dg.StaticPartitionsDefinition(SETTINGS_AT_LOAD.partition_keys)
# The context of any of our steps: an asset's, the candidate checks', a job's op.
StepContext = dg.AssetExecutionContext | dg.AssetCheckExecutionContext | dg.OpExecutionContext


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
        raise RevalError(f"run tag {SYNC_BATCHES_TAG}={tagged!r}: expected batch numbers from 0 to {batches - 1}, "
                         "like 0,5,9; remove the tag to land only this run's batches")
    return sorted(others | set(batches_of(context)))


# Dagster's run tags (`dagster._core.storage.tags`): the backfill a run belongs to, and the first backfill
# of a re-executed one ("re-execute from failure" launches a new backfill of what was missing).
BACKFILL_TAG, ROOT_BACKFILL_TAG = "dagster/backfill", "dagster/root_backfill_id"


def run_group(run: dg.DagsterRun, instance: dg.DagsterInstance) -> str:
    """The runs of one sync: the entity batches it builds are the ones its release_candidate takes fresh.

    A backfill launches a run per partition range, then one for release_candidate and live_release: all
    carry its id. A re-execution belongs to the group of the run it re-executes (Dagster drops the backfill
    tags from one launched after its backfill ended). Any other run is a group of its own.
    """
    backfill = run.tags.get(ROOT_BACKFILL_TAG) or run.tags.get(BACKFILL_TAG)
    if backfill:
        return f"backfill {backfill}"
    if run.root_run_id and run.root_run_id != run.run_id:
        root = instance.get_run_by_id(run.root_run_id)
        return run_group(root, instance) if root else f"run {run.root_run_id}"
    return f"run {run.run_id}"


def column_schema(schema: pa.Schema, table: str) -> dg.TableSchema:
    """The table's columns for the catalog, each described from `domain.schemas.COLUMN_DESCRIPTIONS`."""
    return dg.TableSchema(columns=[
        dg.TableColumn(name=f.name, type=str(f.type), description=column_description(table, f.name),
                       constraints=dg.TableColumnConstraints(nullable=f.nullable))
        for f in schema
    ])


class OperatorConfig(dg.Config):
    """Config of a step that changes what admins see (publish, rollback, gc): who is doing it."""

    operator: str = Field(
        default="", description="Your name, recorded in the audit. Required in staging and prod when nothing "
        "else names you (a launch from the UI); `reval` commands record their user, Dagster+ its signed-in one.")


@dataclass(frozen=True)
class Actor:
    name: str  # what the audit records
    named: bool  # false: a launch that names no one, audited as "dagster" (refused in staging and prod)


def actor_of(context: StepContext, operator: str = "") -> Actor:
    """Dagster+'s signed-in user, else the config's `operator`, else the `reval/actor` tag (`reval sync`'s
    user, the schedule, the sensor); else no one, audited as "dagster"."""
    tags = context.run.tags if context.run else {}
    name = tags.get("dagster/user") or operator.strip() or tags.get("reval/actor")
    return Actor(name, named=True) if name else Actor("dagster", named=False)


def _run_started(context: StepContext | None) -> float | None:
    """When the step's run started, with the second of margin `room.started` gives (None if unknown)."""
    record = context.instance.get_run_record_by_id(context.run.run_id) if context is not None else None
    return record.start_time - 1 if record is not None and record.start_time else None


@contextmanager
def writing(runtime: Runtime, action: str, context: StepContext | None = None) -> Iterator[None]:
    """A step's writes, under the live store's writer lock; a busy store or a full disk fails the step with
    what to do (a full disk after the sync has given back the files it wrote, in this step or, given the
    `context`, in the earlier steps of its run); `failures.translated` says it."""
    since = _run_started(context) or room.started()
    try:
        with runtime.live.writer_lock(action):
            yield
    except (OSError, sa.exc.OperationalError) as error:
        if not (room.is_disk_full(error) or "database or disk is full" in str(error)):
            raise
        raise room.DiskFull(room.give_back(runtime, since, error)) from None
