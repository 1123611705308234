"""End-to-end `reval sync` (the real command, Dagster in process) in a subprocess per run; see bench/README.md."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import Store, load_average, run_measured, worker

if TYPE_CHECKING:
    from reval_assets.run import SyncResult

REVAL = str(Path(sys.executable).parent / "reval")


def cli_sync(store: Store, doctors: int, *, seed: int = 0, timeout: float = 3600) -> dict:
    """`reval sync --json` on `store`, a fresh process."""
    child = run_measured([REVAL, "sync", "--json", "--reason", "bench"], store.env(doctors, seed), timeout=timeout)
    try:
        payload = json.loads(child.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        payload = {}
    if child.code != 0 or not payload.get("published"):
        tail = "\n".join(child.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"reval sync failed (exit {child.code}): {payload.get('error')}\n{tail}")
    result = {"version": payload["version"], "rows": payload["rows"], "command_seconds": payload["seconds"],
              "run_ids": payload.get("run_ids", [])}
    return _described(store, doctors, seed, None, result, child.seconds, child.max_rss_bytes, child.cpu_seconds)


def api_sync(store: Store, doctors: int, *, seed: int = 0, batches: list[int] | None = None,
             timeout: float = 3600) -> dict:
    """The same sync through `reval_assets.run.run_sync` in a fresh process (what `reval sync` calls),
    for what the command has no flag for yet: a drift reason (a new synthetic population drifts ~7 %)."""
    params = {"env": store.env(doctors, seed), "batches": batches or list(range(16)),
              "allow_drift_reason": "bench: a new synthetic population"}
    result = worker("sync", params, store.env(doctors, seed), timeout=timeout)
    return _described(store, doctors, seed, batches, result, result.pop("process_seconds"),
                      result.pop("process_max_rss_bytes"), result.pop("process_cpu_seconds"))


def _described(store: Store, doctors: int, seed: int, batches: list[int] | None, result: dict,
               process_seconds: float, max_rss_bytes: int, cpu_seconds: float) -> dict:
    steps, events = dagster_events(store.home / "dagster", result.pop("run_ids"))
    return {"doctors": doctors, "seed": seed, "batches": batches or "all", **result,
            "rows_total": sum(result["rows"].values()), "process_seconds": process_seconds,
            "max_rss_bytes": max_rss_bytes, "cpu_seconds": cpu_seconds, "load_average_after": load_average(),
            "dagster_steps": steps, "dagster_events": events}


def dagster_events(dagster_home: Path, run_ids: list[str]) -> tuple[dict[str, float], dict[str, int]]:
    """Seconds per Dagster step (summed over the sync's runs) and the count of each event type, from the
    instance's event log."""
    import dagster as dg

    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        for run_id in run_ids:
            started: dict[str, float] = {}
            for record in instance.all_logs(run_id):
                event = record.dagster_event
                name = event.event_type_value if event else "log message"
                counts[name] = counts.get(name, 0) + 1
                if event is None or not event.step_key:
                    continue
                if event.event_type == dg.DagsterEventType.STEP_START:
                    started[event.step_key] = record.timestamp
                elif (event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)
                      and (begun := started.get(event.step_key)) is not None):
                    seconds[event.step_key] = seconds.get(event.step_key, 0.0) + record.timestamp - begun
    finally:
        instance.dispose()
    return seconds, dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def run_in_env(env: dict[str, str], around: Callable[[], AbstractContextManager] = nullcontext,
               **kwargs: object) -> tuple[SyncResult, float]:
    """`run_sync` of every batch (or `batches=`) with the settings in `env`; the result and its seconds."""
    os.environ.update(env)  # before the project is imported: partitions are read at import
    from reval_assets.pipeline.runtime import Runtime
    from reval_assets.run import run_sync
    from reval_assets.settings import Settings

    runtime = Runtime(Settings.from_env())
    started = time.perf_counter()
    with around():
        result = run_sync(runtime, **{"batches": list(range(16)), "reason": "bench", **kwargs}, actor="bench",
                          confirm=None)
    seconds = time.perf_counter() - started
    runtime.close()
    if not result.published:
        raise RuntimeError(f"sync did not publish: {result.error or result.blocked_by or result.messages}")
    return result, seconds


def run_sync_task(*, env: dict[str, str], batches: list[int], allow_drift_reason: str) -> dict:
    """Worker side of `api_sync`."""
    result, seconds = run_in_env(env, batches=batches, allow_drift_reason=allow_drift_reason)
    return {"version": result.version, "rows": result.rows, "command_seconds": seconds, "run_ids": result.run_ids}
