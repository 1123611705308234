"""End-to-end `reval sync` (the real command, Dagster in process) in a subprocess per run; see bench/README.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.common import Store, load_average, run_measured

REVAL = str(Path(sys.executable).parent / "reval")


def cli_sync(store: Store, doctors: int, *, seed: int = 0, batches: list[int] | None = None,
             timeout: float = 3600) -> dict:
    """`reval sync --json` on `store`, a fresh process. A resync (`seed` other than the store's first) names a
    drift reason: a new synthetic population drifts ~7 %, which the drift check rightly blocks."""
    args = [REVAL, "sync", "--json", "--reason", "bench"]
    args += ["--batches", ",".join(map(str, batches))] if batches else []
    args += ["--allow-drift", "bench: a new synthetic population"] if seed else []
    child = run_measured(args, store.env(doctors, seed), timeout=timeout)
    try:
        payload = json.loads(child.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        payload = {}
    if child.code != 0 or not payload.get("published"):
        raise RuntimeError(child.failure(f"reval sync ({payload.get('error')})"))
    return {"doctors": doctors, "seed": seed, "batches": batches or "all", "version": payload["version"],
            "rows": payload["rows"], "rows_total": sum(payload["rows"].values()),
            "command_seconds": payload["seconds"], "process_seconds": child.seconds,
            "max_rss_bytes": child.max_rss_bytes, "cpu_seconds": child.cpu_seconds,
            "load_average_after": load_average(),
            "dagster_steps": dagster_steps(store.home / "dagster", payload.get("run_ids", []))}


def dagster_steps(dagster_home: Path, run_ids: list[str]) -> dict[str, float]:
    """Seconds per Dagster step (summed over the sync's runs), from the instance's event log."""
    import dagster as dg

    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    seconds: dict[str, float] = {}
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        for run_id in run_ids:
            started: dict[str, float] = {}
            for record in instance.all_logs(run_id, of_type=kinds):
                event = record.dagster_event
                if event.event_type == dg.DagsterEventType.STEP_START:
                    started[event.step_key] = record.timestamp
                elif (begun := started.get(event.step_key)) is not None:
                    seconds[event.step_key] = seconds.get(event.step_key, 0.0) + record.timestamp - begun
    finally:
        instance.dispose()
    return seconds
