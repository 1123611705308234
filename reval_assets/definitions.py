"""The code location: `defs`, plus one attribute per environment for the workspace files.

`workspace.yaml` loads `defs_dev` as location `reval-DEV`; `deploy/workspace.prod.yaml` loads
`defs_prod` as `reval-PROD`. Loading an environment's attribute while `REVAL_ENV` says
another fails at load time, so a UI can never show PROD data under a DEV name.
"""

from __future__ import annotations

import dagster as dg

from reval_assets.assets.batches import entities, raw_inputs
from reval_assets.assets.checks import candidate_checks
from reval_assets.assets.common import SETTINGS_AT_LOAD
from reval_assets.assets.io_manager import SNAPSHOT_IO_MANAGER, SnapshotIOManager
from reval_assets.assets.release import live_release, release_candidate
from reval_assets.jobs import check_again, full_sync, gc, new_export, nightly_full_sync, rollback
from reval_assets.resources import RevalResource

defs = dg.Definitions(
    assets=[raw_inputs, entities, release_candidate, live_release],
    asset_checks=[candidate_checks],
    jobs=[full_sync, check_again, rollback, gc],
    schedules=[nightly_full_sync],
    sensors=[new_export],
    resources={"reval": RevalResource(), SNAPSHOT_IO_MANAGER: SnapshotIOManager()},
)


def __getattr__(name: str) -> dg.Definitions:
    if name.startswith("defs_"):
        wanted = name.removeprefix("defs_")
        if SETTINGS_AT_LOAD.env.value != wanted:
            raise RuntimeError(
                f"this code location is for REVAL_ENV={wanted}, but REVAL_ENV={SETTINGS_AT_LOAD.env.value}; "
                f"use the workspace file of {SETTINGS_AT_LOAD.env.value} (see deploy/README.md)"
            )
        return defs
    raise AttributeError(name)
