"""The one Dagster resource: the core's `Runtime`, built from the `REVAL_*` environment."""

from __future__ import annotations

import dagster as dg

from reval_assets.pipeline.runtime import Runtime
from reval_assets.settings import Settings


class RevalResource(dg.ConfigurableResource):
    """Reads the contract's environment variables when a run starts, not when code loads."""

    def runtime(self) -> Runtime:
        return Runtime(Settings.from_env())
