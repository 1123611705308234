"""The one Dagster resource: the core's `Runtime`, built from the `REVAL_*` environment."""

from __future__ import annotations

import dagster as dg

from reval_assets.pipeline.runtime import Runtime
from reval_assets.settings import Settings


class RevalResource(dg.ConfigurableResource):
    """Reads the contract's environment variables when a run starts, not when code loads."""

    def runtime(self) -> Runtime:
        from reval_assets.assets.common import SETTINGS_AT_LOAD

        settings = Settings.from_env()
        if settings.batches != SETTINGS_AT_LOAD.batches:
            raise dg.Failure(description=(
                f"REVAL_BATCHES is {settings.batches} but the code location was loaded with "
                f"{SETTINGS_AT_LOAD.batches} partitions; reload the code location after changing it"))
        return Runtime(settings)
