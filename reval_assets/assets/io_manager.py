"""Loads the entity assets from their snapshot files, for `load_asset_value` and downstream assets.

The entity assets write their own immutable files (`pipeline.steps.build_batch`) and return a
MaterializeResult, so this IO manager only loads. A partition loads the file its batch's head points at:
what that partition's last materialisation wrote (a staged or blocked sync's too, not necessarily live's;
`reval_assets.read_version` reads a published version). No partition (an unpartitioned downstream asset,
or `load_asset_value` without `partition_key`) loads every batch, concatenated in batch order.

The annotation picks the type, as Dagster's UPathIOManager does: `pyarrow.Table` gives the Arrow table,
`pandas.DataFrame` or none (`Any`) a DataFrame; `load_asset_value(..., python_type=pa.Table)` likewise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg
import pyarrow as pa

from reval_assets.pipeline.read import existing_store, head_table
from reval_assets.settings import Settings

if TYPE_CHECKING:  # imported when a DataFrame is asked for: the code location loads without it
    import pandas as pd

SNAPSHOT_IO_MANAGER = "snapshot_io_manager"


class SnapshotIOManager(dg.ConfigurableIOManager):
    """Reads the entity files of REVAL_HOME (read when a value is loaded, as the resource does)."""

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is not None:
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned a {type(obj).__name__}: the snapshot IO manager only "
                "loads; an asset using it writes its own snapshot files and returns a MaterializeResult")

    def load_input(self, context: dg.InputContext) -> pd.DataFrame | pa.Table:
        import pandas as pd

        wanted = context.dagster_type.typing_type
        if wanted not in (pa.Table, pd.DataFrame, Any, object):
            raise TypeError(f"the snapshot IO manager loads {context.asset_key.to_user_string()} as a pandas "
                            f"DataFrame or a pyarrow Table, not {wanted!r}; annotate the input as one of those")
        settings = Settings.from_env()
        batches = ([int(key) for key in context.asset_partition_keys] if context.has_asset_partitions
                   else list(range(settings.batches)))
        table = head_table(existing_store(settings), context.asset_key.path[-1], sorted(batches))
        return table if wanted is pa.Table else table.to_pandas()
