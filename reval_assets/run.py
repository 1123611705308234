"""Run the asset graph in process through Dagster's API: what `reval sync` does.

Two runs, as an operator would launch them: one single-run backfill of the batch assets,
then release_candidate, its blocking candidate_checks and live_release in ONE run, so a
failed check stops the publish in the same run, and live_release re-verifies anyway.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import dagster as dg

from reval_assets.alerts import Alert, alerted_failure, send_alert, short_error
from reval_assets.assets.common import SETTINGS_AT_LOAD, SYNC_BATCHES_TAG, SYNC_POOL
from reval_assets.assets.failures import EXIT_CODE
from reval_assets.dagster_home import dagster_home, embedded_instance_tuned
from reval_assets.domain.schemas import ENTITIES, RAW_SPECS
from reval_assets.errors import FAILED, REFUSED
from reval_assets.instance_run import execute_as_instance_run
from reval_assets.pipeline.room import require_room
from reval_assets.pipeline.runtime import Runtime
from reval_assets.store.files import private_umask

# The command prints its own one-line message; the full Dagster log of every run is in the instance (the UI).
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
BATCH_ASSETS = [dg.AssetKey(name) for name in (*RAW_SPECS, *ENTITIES)]
# Which process runs a sync's Dagster runs (pid, and its start time so a reused pid is not mistaken for it).
# Machinery, not for operators: under Dagster's hidden prefix, which its UI never shows, so a run in the runs list
# shows only reval/actor, reval/sync_batches and reval/sync.
PID_TAG, HOST_TAG, STARTED_TAG = ".dagster/reval/pid", ".dagster/reval/host", ".dagster/reval/process_started"
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED,
              dg.DagsterRunStatus.CANCELING]


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
    interrupted: bool = False  # stopped by Ctrl-C / SIGTERM / a Dagster termination; audited as `abort`
    stage: str = "starting"  # what the sync was doing when it ended
    recovered_runs: list[str] = field(default_factory=list)  # runs of killed syncs, closed and audited

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


def failure_of_run(result: dg.JobExecutionResult) -> tuple[str | None, int]:
    """The run's failure message and exit code: those of its failed step's `dg.Failure` (`assets.failures`)."""
    for event in result.all_events:
        if event.event_type != dg.DagsterEventType.STEP_FAILURE:
            continue
        data = event.step_failure_data
        failure = data.user_failure_data
        if failure and failure.description:
            code = failure.metadata.get(EXIT_CODE)
            return failure.description, int(code.value) if code else FAILED
        if data.error:  # raised outside a step's translation (by Dagster itself): the innermost error's text
            error = data.error
            while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
                error = error.cause
            return re.sub(rf"^([\w.]+\.)?{error.cls_name}: ", "", error.message.strip()), FAILED
    return (None if result.success else "the run failed; see the Dagster run logs"), FAILED


@private_umask()  # Dagster's storage files (runs, event shards, logs) are created 0600, folders 0700
def run_sync(runtime: Runtime, *, batches: list[int], reason: str, actor: str, confirm: str | None,
             publish: bool = True, progress: Callable[[str], None] = lambda _: None,
             allow_drift_reason: str = "", thresholds: dict | None = None) -> SyncResult:
    """`allow_drift_reason` and `thresholds` go to candidate_checks' config (see its CheckConfig)."""
    from reval_assets.definitions import defs

    job = defs.resolve_job_def("full_sync")
    outcome = SyncResult()
    require_room(runtime)  # before the Dagster instance writes a run to the same disk
    instance = dg.DagsterInstance.from_config(str(dagster_home(runtime.settings)))
    own = {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), STARTED_TAG: _process_started(os.getpid()),
           "reval/actor": actor}
    try:
        outcome.recovered_runs = _close_runs_of_killed_syncs(instance, runtime, actor)
        for start, end in contiguous_ranges(batches):
            outcome.stage = f"building batches {start}–{end}" if end > start else f"building batch {start}"
            progress(outcome.stage)
            tags = {"dagster/asset_partition_range_start": str(start), "dagster/asset_partition_range_end": str(end),
                    SYNC_BATCHES_TAG: ",".join(map(str, sorted(batches))), **own}
            result = _execute(job, instance, outcome, run_config=QUIET, tags=tags, asset_selection=BATCH_ASSETS)
            if not result.success:
                return _failed(runtime, outcome, result)
        holders = _pool_holders(instance)
        if holders:
            outcome.error = (f"Dagster run {', '.join(holders)} holds the {SYNC_POOL} pool (it is staging or "
                             "publishing a candidate); wait for it to finish, or terminate it in the Dagster UI, "
                             "then sync again. The batch files built so far are kept and will be reused; live is "
                             "unchanged.")
            outcome.live_version = runtime.live.live_version()
            return outcome
        outcome.stage = "staging the candidate beside live and running the checks" + (
            ", then publishing" if publish else "")
        progress(outcome.stage)
        release_keys = [dg.AssetKey("release_candidate")] + ([dg.AssetKey("live_release")] if publish else [])
        result = _execute(job, instance, outcome, tags=own, asset_selection=release_keys, run_config=_release_config(
            reason, confirm, publish=publish, batches=batches, allow_drift_reason=allow_drift_reason,
            thresholds=thresholds))
        outcome.version = runtime.live.candidate_for_run(result.run_id)
        _read_outcome(runtime, outcome)
        return outcome if result.success or outcome.blocked_by else _failed(runtime, outcome, result)
    except KeyboardInterrupt:  # between or around the runs, where Dagster does not catch it
        outcome.interrupted = True
        return outcome
    except Exception as error:  # the caller reports it; alerted on below
        outcome.error = outcome.error or short_error(error)
        raise
    finally:
        instance.dispose()
        if outcome.interrupted:
            _record_abort(runtime, outcome, actor=actor, reason=reason)
        _alert_failure(runtime, outcome, actor=actor, reason=reason)


def _release_config(reason: str, confirm: str | None, *, publish: bool, batches: list[int],
                    allow_drift_reason: str, thresholds: dict | None) -> dict:
    """The run config of the release run: release_candidate's, its checks', and live_release's when it
    publishes."""
    candidate = {"reason": reason, "fresh_batches": sorted(batches)}
    checks = {"allow_drift_reason": allow_drift_reason, **({"thresholds": thresholds} if thresholds else {})}
    release = {"live_release": {"config": {"reason": reason, "confirm": confirm or ""}}} if publish else {}
    return {**QUIET, "ops": {"release_candidate": {"config": candidate}, "candidate_checks": {"config": checks},
                             **release}}


def _failed(runtime: Runtime, outcome: SyncResult, result: dg.JobExecutionResult) -> SyncResult:
    """A run that failed or was interrupted: why, and what is live now."""
    outcome.interrupted = _interrupted(result)
    outcome.error, code = failure_of_run(result)
    outcome.refused = code == REFUSED
    if outcome.live_version is None:
        outcome.live_version = runtime.live.live_version()
    _say_what_is_live(outcome)
    return outcome


def _alert_failure(runtime: Runtime, outcome: SyncResult, *, actor: str, reason: str) -> None:
    """A sync that failed or was interrupted sends a `failed` alert, unless its release step already did
    (`assets.release`); a blocked one does not: check_candidate alerted on it."""
    run_id = outcome.run_ids[-1] if outcome.run_ids else None
    if not outcome.error or outcome.blocked_by or alerted_failure(run_id):
        return
    if outcome.live_version is None:
        try:
            outcome.live_version = runtime.live.live_version()
        except Exception:  # noqa: BLE001 - the store may be what failed; the alert goes out without it
            pass
    send_alert(Alert("failed", env=runtime.settings.env.value, version=outcome.version,
                     live_version=outcome.live_version, actor=actor, reason=reason, error=short_error(outcome.error),
                     step=outcome.stage, run_id=run_id))


def _execute(job: dg.JobDefinition, instance: dg.DagsterInstance, outcome: SyncResult, **kwargs: object
             ) -> dg.JobExecutionResult:
    """Run `job` in process under a new run id, recorded in `outcome.run_ids` before it starts: an ordinary run of
    the instance, which the UI re-executes and shows on its timeline (`instance_run`)."""
    outcome.run_ids.append(run_id := str(uuid.uuid4()))
    with embedded_instance_tuned(instance, run_id):
        return execute_as_instance_run(job.name, instance, env=SETTINGS_AT_LOAD.env.value, run_id=run_id,
                                       **kwargs)  # type: ignore[arg-type]


def _say_what_is_live(outcome: SyncResult) -> None:
    """End a failure's message with what readers see now, unless it says so already."""
    if not outcome.error or outcome.refused or outcome.interrupted or "live is unchanged" in outcome.error.lower():
        return
    said = outcome.error.rstrip(". ")
    if outcome.published:
        outcome.error = f"{said}. {outcome.version} had been published before the failure and is live."
    else:
        outcome.error = f"{said}. Live is unchanged ({outcome.live_version or 'no version yet'})."


def _interrupted(result: dg.JobExecutionResult) -> bool:
    """Whether a run ended because it was interrupted (SIGINT/SIGTERM, or terminated), not because it failed."""
    if result.dagster_run.status == dg.DagsterRunStatus.CANCELED:
        return True
    for event in result.all_events:
        error = event.step_failure_data.error if event.event_type == dg.DagsterEventType.STEP_FAILURE else None
        if error and error.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
            return True
        if event.event_type == dg.DagsterEventType.RUN_FAILURE and "interrupted" in (event.message or ""):
            return True
    return False


def _record_abort(runtime: Runtime, outcome: SyncResult, *, actor: str, reason: str) -> None:
    """Audit the abort and say what state it left: live is whatever was live, unless the publish had committed."""
    try:
        if outcome.run_ids and not outcome.version:
            outcome.version = runtime.live.candidate_for_run(outcome.run_ids[-1])
        outcome.live_version = runtime.live.live_version()
        outcome.published = bool(outcome.version) and outcome.live_version == outcome.version
        runtime.live.audit("abort", outcome.version, actor, runtime.settings.env.value, reason, {
            "how": "interrupted", "during": outcome.stage, "run_ids": outcome.run_ids,
            "live": outcome.live_version, "published": outcome.published})
        audited = ""
    except Exception as error:  # noqa: BLE001 - the abort itself must still be reported
        audited = f" (the abort could not be recorded in the audit log: {error})"
    live = outcome.live_version or "no version yet"
    state = (f"{outcome.version} had already been published and is live" if outcome.published
             else f"live is unchanged ({live})")
    outcome.error = (f"interrupted while {outcome.stage}: the sync stopped; {state}. Run `reval sync` again to "
                     f"resume: the batch files already written are reused{audited}.")


def _close_runs_of_killed_syncs(instance: dg.DagsterInstance, runtime: Runtime, actor: str) -> list[str]:
    """Mark runs of syncs whose process is gone (killed) as canceled and free their pool slots.

    Without this a `reval sync` killed while staging or publishing keeps the `reval_sync` pool slot
    forever, and every later sync waits for it (uninterruptibly: the in-process executor ignores Ctrl-C
    while it waits). Only runs started by `run_sync` on this host whose process no longer exists qualify.
    """
    host = socket.gethostname()
    closed = []
    for run in instance.get_runs(dg.RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: host})):
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid <= 0 or _alive(pid, run.tags.get(STARTED_TAG, "")):
            continue
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        instance.report_run_canceled(run, message=f"the sync process (pid {pid}) is gone: killed; closed by the "
                                                  f"next sync (pid {os.getpid()})")
        closed.append(run.run_id)
    if closed:
        runtime.live.audit("abort", None, actor, runtime.settings.env.value, "a previous sync was killed",
                           {"how": "killed", "run_ids": closed, "live": runtime.live.live_version()})
    return closed


def _alive(pid: int, started: str) -> bool:
    """Whether the process that started a run still runs: its pid exists and (on Linux) began when it did."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _process_started(pid)
    return not (started and now and now != started)


def _process_started(pid: int) -> str:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22); "" where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _pool_holders(instance: dg.DagsterInstance) -> list[str]:
    """Runs holding the sync pool's slot; a sync would otherwise wait for them without end or Ctrl-C."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits or SYNC_POOL not in storage.get_concurrency_keys():
        return []
    return sorted({slot.run_id for slot in storage.get_concurrency_info(SYNC_POOL).claimed_slots})


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
