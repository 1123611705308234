"""End-to-end `reval sync` (the real command, Dagster in process) in a subprocess per run; see bench/README.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.common import Store, run_measured

REVAL = str(Path(sys.executable).parent / "reval")


def cli_sync(store: Store, doctors: int, *, seed: int = 0, batches: list[int] | None = None,
             timeout: float = 3600) -> dict:
    """`reval sync --json` on `store`, a fresh process. A resync (`seed` other than the store's first) names a
    drift reason: a new synthetic population drifts ~7 %, which the drift check rightly blocks."""
    args = [REVAL, "sync", "--json", "--reason", "bench"]
    args += ["--batches", ",".join(map(str, batches))] if batches else []
    args += ["--allow-drift", "bench: a new synthetic population"] if seed else []
    child = run_measured(args, store.env(doctors, seed), timeout=timeout)
    last = (child.stdout.strip().splitlines() or [""])[-1]
    payload = json.loads(last) if last.startswith("{") else {}
    if child.code != 0 or not payload.get("published"):
        raise RuntimeError(child.failure(f"reval sync ({payload.get('error')})"))
    return {"doctors": doctors, "seed": seed, "batches": batches or "all", "version": payload["version"],
            "rows": payload["rows"], "rows_total": sum(payload["rows"].values()),
            "command_seconds": payload["seconds"], "process_seconds": child.seconds,
            "max_rss_bytes": child.max_rss_bytes, "cpu_seconds": child.cpu_seconds,
            "dagster_steps": dagster_steps(store.home / "dagster", payload.get("run_ids", []))}


def dagster_steps(dagster_home: Path, run_ids: list[str]) -> dict[str, float]:
    """Seconds per Dagster step (summed over the sync's runs), from the instance's step stats."""
    import dagster as dg

    seconds: dict[str, float] = {}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for step in (step for run_id in run_ids for step in instance.get_run_step_stats(run_id)):
            if step.start_time is not None and step.end_time is not None:
                seconds[step.step_key] = seconds.get(step.step_key, 0.0) + step.end_time - step.start_time
    return seconds
