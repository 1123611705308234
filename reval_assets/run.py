"""Run the asset graph in process through Dagster's API: what `reval sync` does.

Two runs, as an operator would launch them: one single-run backfill of the batch assets,
then release_candidate (with its blocking checks) and live_release in ONE run, so a
failed check stops the publish in the same run, and live_release re-verifies anyway.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import dagster as dg

from reval_assets.dagster_home import dagster_home
from reval_assets.domain.schemas import ENTITIES, RAW_SPECS
from reval_assets.pipeline.runtime import Runtime

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
BATCH_ASSETS = [dg.AssetKey(name) for name in (*RAW_SPECS, *ENTITIES)]


@dataclass
class SyncResult:
    version: str | None = None
    published: bool = False
    blocked_by: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    live_version: str | None = None
    error: str | None = None
    refused: bool = False
    run_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def contiguous_ranges(batches: list[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for b in sorted(batches):
        if ranges and ranges[-1][1] == b - 1:
            ranges[-1] = (ranges[-1][0], b)
        else:
            ranges.append((b, b))
    return ranges


def _failure_message(result: dg.ExecuteInProcessResult) -> str | None:
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                return data.user_failure_data.description
            if data.error:
                return data.error.message.strip()
    return None if result.success else "the run failed; see the Dagster run logs"


def run_sync(runtime: Runtime, *, batches: list[int], reason: str, actor: str, confirm: str | None,
             publish: bool = True, progress: Callable[[str], None] = lambda _: None) -> SyncResult:
    from reval_assets.definitions import defs

    job = defs.resolve_job_def("full_sync")
    outcome = SyncResult()
    instance = dg.DagsterInstance.from_config(str(dagster_home(runtime.settings)))
    try:
        for start, end in contiguous_ranges(batches):
            progress(f"building batches {start}–{end}" if end > start else f"building batch {start}")
            tags = {"dagster/asset_partition_range_start": str(start), "dagster/asset_partition_range_end": str(end),
                    "reval/actor": actor}
            result = job.execute_in_process(run_config=QUIET, instance=instance, tags=tags,
                                            asset_selection=BATCH_ASSETS, raise_on_error=False)
            outcome.run_ids.append(result.run_id)
            if not result.success:
                outcome.error = _failure_message(result)
                return outcome
        progress("staging the candidate beside live and running the checks" + (", then publishing" if publish else ""))
        release_keys = [dg.AssetKey("release_candidate")] + ([dg.AssetKey("live_release")] if publish else [])
        run_config = {**QUIET, "ops": {
            "release_candidate": {"config": {"reason": reason}},
            **({"live_release": {"config": {"reason": reason, "confirm": confirm or ""}}} if publish else {}),
        }}
        result = job.execute_in_process(run_config=run_config, instance=instance, tags={"reval/actor": actor},
                                        asset_selection=release_keys, raise_on_error=False)
        outcome.run_ids.append(result.run_id)
        outcome.version = runtime.live.candidate_for_run(result.run_id)
        _read_outcome(runtime, outcome)
        if not result.success and not outcome.blocked_by:
            outcome.error = _failure_message(result)
            outcome.refused = bool(outcome.error and outcome.error.startswith("REFUSED"))
        return outcome
    finally:
        instance.dispose()


def _read_outcome(runtime: Runtime, outcome: SyncResult) -> None:
    outcome.live_version = runtime.live.live_version()
    row = runtime.live.version(outcome.version) if outcome.version else None
    if row is None:
        return
    outcome.rows = {e: row[f"rows_{e}"] for e in ENTITIES}
    outcome.published = outcome.live_version == outcome.version
    for check in json.loads(row["checks"] or "[]"):
        if not check["passed"] and check.get("blocking", True):
            outcome.blocked_by.append(check["name"])
            outcome.messages.append(f"{check['name']}: {check['description']}")
