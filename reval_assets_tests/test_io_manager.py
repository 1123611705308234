"""The snapshot IO manager: entity partitions loaded back as pandas or Arrow, by annotation."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest

from reval_assets.assets.batches import entities
from reval_assets.assets.common import SETTINGS_AT_LOAD, batch_partitions
from reval_assets.assets.io_manager import SNAPSHOT_IO_MANAGER, SnapshotIOManager
from reval_assets.definitions import defs
from reval_assets.pipeline.steps import ENTITY_GROUP, MissingBatchError
from reval_assets.resources import RevalResource
from reval_assets.run import BATCH_ASSETS, QUIET
from reval_assets.store.snapshots import SnapshotStore

pytestmark = pytest.mark.skipif(
    SETTINGS_AT_LOAD.batches != 16, reason="these tests assume the default 16 batches (REVAL_BATCHES unset)"
)
RESOURCES = {"reval": RevalResource(), SNAPSHOT_IO_MANAGER: SnapshotIOManager()}


def build(instance: dg.DagsterInstance, start: int, end: int) -> None:
    result = defs.resolve_job_def("full_sync").execute_in_process(
        instance=instance, asset_selection=BATCH_ASSETS, run_config=QUIET,
        tags={"dagster/asset_partition_range_start": str(start), "dagster/asset_partition_range_end": str(end)})
    assert result.success


def head_file(home: Path, entity: str, batch: int) -> pa.Table:
    store = SnapshotStore(home / "snapshots")
    return store.read_table(store.head(ENTITY_GROUP, batch)[entity])


def test_one_partition_loads_its_head_as_pandas_or_arrow(instance: dg.DagsterInstance, reval_env: Path) -> None:
    build(instance, 3, 3)
    frame = defs.load_asset_value("doctors", partition_key="3", instance=instance)
    assert isinstance(frame, pd.DataFrame)
    expected = head_file(reval_env, "doctors", 3)
    assert expected.num_rows > 0 and frame.equals(expected.to_pandas())
    table = defs.load_asset_value("recommendations", partition_key="3", instance=instance, python_type=pa.Table)
    assert isinstance(table, pa.Table) and table.equals(head_file(reval_env, "recommendations", 3))


def test_no_partition_loads_every_batch_and_names_those_never_built(
        instance: dg.DagsterInstance, reval_env: Path) -> None:
    build(instance, 2, 3)
    with pytest.raises(MissingBatchError, match=r"connections has never been materialised for partition\(s\) "
                                                r"0, 1, 4, 5, .*, 15 in .*; materialise connections"):
        defs.load_asset_value("connections", instance=instance)
    with pytest.raises(MissingBatchError, match=r"partition\(s\) 7 in"):
        defs.load_asset_value("connections", partition_key="7", instance=instance)
    build(instance, 0, 15)
    table = defs.load_asset_value("connections", instance=instance, python_type=pa.Table)
    assert table.equals(pa.concat_tables([head_file(reval_env, "connections", b) for b in range(16)]))
    assert table.num_rows == 1500


def test_downstream_assets_take_entities_as_inputs(instance: dg.DagsterInstance, reval_env: Path) -> None:
    @dg.asset(partitions_def=batch_partitions, ins={"doctors": dg.AssetIn(), "connections": dg.AssetIn()})
    def per_batch(doctors: pd.DataFrame, connections: pa.Table) -> dg.MaterializeResult:
        assert isinstance(doctors, pd.DataFrame) and isinstance(connections, pa.Table)
        return dg.MaterializeResult(metadata={"rows": len(doctors), "connections": connections.num_rows})

    @dg.asset(ins={"doctors": dg.AssetIn()})
    def everyone(doctors) -> dg.MaterializeResult:  # type: ignore[no-untyped-def]  # unannotated: a DataFrame
        assert isinstance(doctors, pd.DataFrame)
        return dg.MaterializeResult(metadata={"rows": len(doctors)})

    build(instance, 0, 15)
    one = dg.materialize([entities, per_batch], selection=[per_batch], partition_key="5", instance=instance,
                         resources=RESOURCES)
    rows = one.asset_materializations_for_node("per_batch")[0].metadata["rows"].value
    assert rows == head_file(reval_env, "doctors", 5).num_rows > 0
    whole = dg.materialize([entities, everyone], selection=[everyone], instance=instance, resources=RESOURCES)
    assert whole.asset_materializations_for_node("everyone")[0].metadata["rows"].value == 1500


def test_another_annotation_is_refused_naming_the_types(instance: dg.DagsterInstance) -> None:
    build(instance, 1, 1)
    with pytest.raises(TypeError, match="loads doctors as a pandas DataFrame or a pyarrow Table, not <class 'dict'>"):
        defs.load_asset_value("doctors", partition_key="1", instance=instance, python_type=dict)


def test_a_home_without_snapshots_is_named(instance: dg.DagsterInstance, reval_env: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no snapshots"):
        defs.load_asset_value("doctors", partition_key="0", instance=instance)


def test_it_only_loads_an_asset_returning_a_value_is_refused() -> None:
    manager = SnapshotIOManager()
    manager.handle_output(dg.build_output_context(asset_key="doctors"), None)  # a MaterializeResult's output
    with pytest.raises(TypeError, match="doctors returned a DataFrame: the snapshot IO manager only loads"):
        manager.handle_output(dg.build_output_context(asset_key="doctors"), pd.DataFrame())
