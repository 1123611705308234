"""The one Dagster resource: the core's `Runtime`, built from the `REVAL_*` environment."""

from __future__ import annotations

import dagster as dg

from reval_assets.pipeline.gate import StoreMismatch, check_store
from reval_assets.pipeline.guard import GuardRefused
from reval_assets.pipeline.runtime import Runtime
from reval_assets.settings import Settings


class RevalResource(dg.ConfigurableResource):
    """Reads the contract's environment variables when a run starts, not when code loads."""

    def runtime(self, *, partitioned: bool = True) -> Runtime:
        """`partitioned`: for a step of the batch-partitioned graph, whose partitions were fixed at load."""
        from reval_assets.assets.common import SETTINGS_AT_LOAD

        settings = Settings.from_env()
        if partitioned and settings.batches != SETTINGS_AT_LOAD.batches:
            raise dg.Failure(description=(
                f"REVAL_BATCHES is {settings.batches} but the code location was loaded with "
                f"{SETTINGS_AT_LOAD.batches} partitions; reload the code location after changing it"))
        runtime = Runtime(settings)
        try:
            check_store(runtime, writing=True)
        except (StoreMismatch, GuardRefused) as error:
            runtime.close()
            raise dg.Failure(description=str(error)) from None
        return runtime
