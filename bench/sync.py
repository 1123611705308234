"""End-to-end `reval sync` (the real command, Dagster in process) in a subprocess per run, and its profile
with pyinstrument (where the time goes, and the call tree); see bench/README.md."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import Store, load_average, run_measured, worker

if TYPE_CHECKING:
    from reval_assets.run import SyncResult

REVAL = str(Path(sys.executable).parent / "reval")
ASSET_FUNCTIONS = {"raw_inputs", "entities", "release_candidate", "candidate_checks", "live_release"}
OURS, INSTANCE, IMPORTS, MACHINERY = (
    "our asset code (raw_inputs, entities, release_candidate, candidate_checks, live_release)",
    "Dagster instance set-up (DagsterInstance.from_config)",
    "importing the definitions",
    "Dagster run machinery (everything else in execute_in_process)",
)


def cli_sync(store: Store, doctors: int, *, seed: int = 0, timeout: float = 3600) -> dict:
    """`reval sync --json` on `store`, a fresh process."""
    child = run_measured([REVAL, "sync", "--json", "--reason", "bench"], store.env(doctors, seed), timeout=timeout)
    try:
        payload = json.loads(child.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        payload = {}
    if child.code != 0 or not payload.get("published"):
        raise RuntimeError(child.failure(f"reval sync ({payload.get('error')})"))
    return _described(store, doctors, seed, None, {
        "version": payload["version"], "rows": payload["rows"], "command_seconds": payload["seconds"],
        "run_ids": payload.get("run_ids", []), "process_seconds": child.seconds,
        "process_max_rss_bytes": child.max_rss_bytes, "process_cpu_seconds": child.cpu_seconds})


def api_sync(store: Store, doctors: int, *, seed: int = 0, batches: list[int] | None = None,
             timeout: float = 3600) -> dict:
    """The same sync through `reval_assets.run.run_sync` in a fresh process (what `reval sync` calls),
    for what the command has no flag for yet: a drift reason (a new synthetic population drifts ~7 %)."""
    params = {"env": store.env(doctors, seed), "batches": batches or list(range(16)),
              "allow_drift_reason": "bench: a new synthetic population"}
    return _described(store, doctors, seed, batches, worker("sync", params, store.env(doctors, seed), timeout=timeout))


def _described(store: Store, doctors: int, seed: int, batches: list[int] | None, result: dict) -> dict:
    steps, events = dagster_events(store.home / "dagster", result.pop("run_ids"))
    rss, cpu = result.pop("process_max_rss_bytes"), result.pop("process_cpu_seconds")
    return {"doctors": doctors, "seed": seed, "batches": batches or "all", **result,
            "rows_total": sum(result["rows"].values()), "max_rss_bytes": rss, "cpu_seconds": cpu,
            "load_average_after": load_average(), "dagster_steps": steps, "dagster_events": events}


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


# -- the profile of one `run_sync` ---------------------------------------------------------------


def run_profile(*, env: dict[str, str], tree_path: str, top: int = 15) -> dict:
    import pyinstrument

    profiler = pyinstrument.Profiler(interval=0.001)
    result, total = run_in_env(env, lambda: profiler, reason="bench profile")
    Path(tree_path).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    tally = _tally(profiler.last_session.root_frame())

    def rank(kind: str) -> list[dict]:
        ordered = sorted(tally[kind].items(), key=lambda kv: kv[1], reverse=True)[:top]
        return [{"function": k, "seconds": v, "share": v / total} for k, v in ordered]

    return {"tool": f"pyinstrument {pyinstrument.__version__} (1 ms sampling)", "total_seconds": total,
            "rows": result.rows, "top_self": rank("self"), "top_project_cumulative": rank("cumulative"),
            "layers": {k: {"seconds": v, "share": v / total} for k, v in tally["layers"].items()},
            "top_self_outside_assets": rank("outside"), "tree": tree_path}


def _where(frame: Any, *, line: bool = True) -> str:
    """`function (file:line)`, the file below site-packages or the project."""
    file = frame.file_path or "?"
    for marker in ("site-packages/", "/work/main/"):
        file = file.split(marker, 1)[1] if marker in file else file
    return f"{frame.function} ({file}:{frame.line_no})" if line else f"{frame.function} ({file})"


def _key(frame: Any, *, caller_line: bool = True) -> str:
    """`function (file:line)`; a built-in (commit, fsync…) is told by its caller."""
    if frame.file_path in (None, "<built-in>") and frame.parent is not None:
        return f"{_where(frame)} ← {_where(frame.parent, line=caller_line)}"
    return _where(frame)


def _layer_of(frame: Any, layer: str | None) -> str | None:
    """The layer a frame starts, if it starts one; else the one it is in (our code stays ours)."""
    if layer not in (None, MACHINERY):
        return layer
    path = frame.file_path or ""
    if frame.function in ASSET_FUNCTIONS and "reval_assets/assets" in path:
        return OURS
    if frame.function == "from_config" and "dagster" in path:
        return INSTANCE
    if frame.function == "<module>" and "reval_assets/definitions" in path:
        return IMPORTS
    # the run's entry point: `execute_in_process`, or `execute_run` for a run made on the instance first
    return MACHINERY if frame.function in ("execute_in_process", "execute_run") else layer


def _tally(root: Any) -> dict[str, dict[str, float]]:
    """Self time per function; total time per project function (outermost call only); the time per layer
    (our asset code, Dagster around it, instance set-up, imports); self time outside our asset code."""
    out: dict[str, dict[str, float]] = {"self": {}, "cumulative": {}, "outside": {},
                                        "layers": dict.fromkeys((OURS, INSTANCE, IMPORTS, MACHINERY), 0.0)}

    def count(kind: str, key: str, seconds: float) -> None:
        out[kind][key] = out[kind].get(key, 0.0) + seconds

    def walk(frame: Any, layer: str | None, active: frozenset) -> None:
        if frame.is_synthetic:  # [self]/[await] time is already in its parent's total_self_time
            return
        count("self", _key(frame), frame.total_self_time)
        if "reval_assets" in (frame.file_path or "") and (where := _where(frame)) not in active:
            count("cumulative", where, frame.time)
            active = active | {where}
        if (layer := _layer_of(frame, layer)) is not None:
            count("layers", layer, frame.total_self_time)
        if layer == MACHINERY:
            count("outside", _key(frame, caller_line=False), frame.total_self_time)
        for child in frame.children:
            walk(child, layer, active)

    if root is not None:
        walk(root, None, frozenset())
    return out
