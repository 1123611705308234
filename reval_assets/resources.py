"""The one Dagster resource: the core's `Runtime`, built from the `REVAL_*` environment."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from reval_assets.assets.failures import failure_of
from reval_assets.errors import RevalError
from reval_assets.pipeline.gate import check_store
from reval_assets.pipeline.runtime import Runtime
from reval_assets.settings import Settings


class RevalResource(dg.ConfigurableResource):
    """Reads the contract's environment variables when a run starts, not when code loads."""

    batches: int = Field(
        default_factory=lambda: Settings.from_env().batches,
        description="The batch partitions the code location was loaded with (REVAL_BATCHES then); a run whose "
        "REVAL_BATCHES differs fails before it writes.",
    )

    def runtime(self, *, partitioned: bool = True) -> Runtime:
        """`partitioned`: for a step of the batch-partitioned graph, whose partitions were fixed at load.

        A refusal fails the step as a final `dg.Failure`; a database that cannot be reached is raised as it
        is, so the step's `failures.translated` can retry it."""
        settings = Settings.from_env()
        try:
            if partitioned and settings.batches != self.batches:
                raise RevalError(f"REVAL_BATCHES is {settings.batches} but the code location was loaded with "
                                 f"{self.batches} partitions; reload the code location after changing it")
            runtime = Runtime(settings)
        except RevalError as error:
            raise failure_of(error) from None
        try:
            check_store(runtime, writing=True)
        except RevalError as error:
            runtime.close()
            raise failure_of(error) from None
        except BaseException:
            runtime.close()
            raise
        return runtime
