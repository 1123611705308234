"""End-to-end `reval sync` (the real command, Dagster in process) in a subprocess per run.

Each run gives: the process's wall seconds (interpreter start and imports included), the
`seconds` the command reports (time inside `run_sync`), the process's peak RSS (wait4), and
the Dagster step durations read back from the run's event log (STEP_START → STEP_SUCCESS).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.common import Store, load_average, run_measured

REVAL = str(Path(sys.executable).parent / "reval")
DAGSTER_STEPS = ("raw_inputs", "entities", "release_candidate", "live_release")


def cli_sync(
    store: Store, doctors: int, *, seed: int = 0, batches: list[int] | None = None, timeout: float = 3600
) -> dict:
    args = [REVAL, "sync", "--json", "--reason", "bench"]
    if batches:
        args += ["--batches", ",".join(map(str, batches))]
    child = run_measured(args, store.env(doctors, seed), timeout=timeout)
    try:
        payload = json.loads(child.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        payload = {}
    if child.code != 0 or not payload.get("published"):
        tail = "\n".join(child.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"reval sync failed (exit {child.code}): {payload.get('error')}\n{tail}")
    rows = payload["rows"]
    return {
        "doctors": doctors,
        "seed": seed,
        "batches": batches or "all",
        "version": payload["version"],
        "rows": rows,
        "rows_total": sum(rows.values()),
        "command_seconds": payload["seconds"],
        "process_seconds": child.seconds,
        "max_rss_bytes": child.max_rss_bytes,
        "cpu_seconds": child.cpu_seconds,
        "load_average_after": load_average(),
        "dagster_steps": dagster_step_seconds(store.home / "dagster", payload.get("run_ids", [])),
        "dagster_events": dagster_event_counts(store.home / "dagster", payload.get("run_ids", [])),
    }


def dagster_event_counts(dagster_home: Path, run_ids: list[str]) -> dict[str, int]:
    """How many events of each type the sync's runs wrote to the instance's event log."""
    import dagster as dg

    counts: dict[str, int] = {}
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        for run_id in run_ids:
            for record in instance.all_logs(run_id):
                name = record.dagster_event.event_type_value if record.dagster_event else "log message"
                counts[name] = counts.get(name, 0) + 1
    finally:
        instance.dispose()
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def dagster_step_seconds(dagster_home: Path, run_ids: list[str]) -> dict[str, float]:
    """Seconds per Dagster step (op), summed over the sync's runs, from the instance's event log."""
    import dagster as dg

    seconds: dict[str, float] = {}
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        for run_id in run_ids:
            started: dict[str, float] = {}
            for record in instance.all_logs(run_id):
                event = record.dagster_event
                if event is None or not event.step_key:
                    continue
                if event.event_type == dg.DagsterEventType.STEP_START:
                    started[event.step_key] = record.timestamp
                elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
                    begun = started.get(event.step_key)
                    if begun is not None:
                        seconds[event.step_key] = seconds.get(event.step_key, 0.0) + record.timestamp - begun
    finally:
        instance.dispose()
    return seconds


def api_sync(
    store: Store,
    doctors: int,
    *,
    seed: int = 0,
    batches: list[int] | None = None,
    allow_drift_reason: str = "bench: a new synthetic population",
    timeout: float = 3600,
) -> dict:
    """The same sync through `reval_assets.run.run_sync` in a fresh process (what `reval sync` calls),
    for what the command has no flag for yet: a drift reason."""
    from bench.common import worker

    params = {
        "env": store.env(doctors, seed),
        "batches": batches or list(range(16)),
        "allow_drift_reason": allow_drift_reason,
    }
    result = worker("sync", params, store.env(doctors, seed), timeout=timeout)
    result.update(
        {
            "doctors": doctors,
            "seed": seed,
            "batches": batches or "all",
            "process_seconds": result.pop("process_seconds"),
            "max_rss_bytes": result.pop("process_max_rss_bytes"),
            "cpu_seconds": result.pop("process_cpu_seconds"),
            "load_average_after": load_average(),
            "dagster_steps": dagster_step_seconds(store.home / "dagster", result.pop("run_ids")),
        }
    )
    return result


def run_sync_task(*, env: dict[str, str], batches: list[int], allow_drift_reason: str) -> dict:
    """Worker side of `api_sync`."""
    import inspect
    import os
    import time

    os.environ.update(env)  # before the project is imported: partitions are read at import
    from reval_assets.pipeline.runtime import Runtime
    from reval_assets.run import run_sync
    from reval_assets.settings import Settings

    runtime = Runtime(Settings.from_env())
    extra = {}
    if "allow_drift_reason" in inspect.signature(run_sync).parameters:
        extra["allow_drift_reason"] = allow_drift_reason
    started = time.perf_counter()
    result = run_sync(runtime, batches=batches, reason="bench", actor="bench", confirm=None, **extra)
    seconds = time.perf_counter() - started
    runtime.close()
    if not result.published:
        raise RuntimeError(f"sync did not publish: {result.error or result.messages}")
    return {
        "version": result.version,
        "rows": result.rows,
        "rows_total": sum(result.rows.values()),
        "command_seconds": seconds,
        "run_ids": result.run_ids,
    }
