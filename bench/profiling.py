"""Profile one `run_sync` (what `reval sync` does) with pyinstrument, or cProfile if it is missing.

Reports the functions with the most self time and the project functions with the most
total time, as shares of the sync's wall time; writes the full call tree as text.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROJECT = "reval_assets"


def run_profile(*, env: dict[str, str], tree_path: str, top: int = 15) -> dict:
    os.environ.update(env)  # before the project is imported: partitions are read at import
    from reval_assets.pipeline.runtime import Runtime
    from reval_assets.run import run_sync
    from reval_assets.settings import Settings

    runtime = Runtime(Settings.from_env())
    try:
        import pyinstrument
    except ImportError:
        pyinstrument = None
    started = time.perf_counter()
    if pyinstrument is not None:
        profiler = pyinstrument.Profiler(interval=0.001)
        profiler.start()
        result = run_sync(runtime, batches=list(range(16)), reason="bench profile", actor="bench", confirm=None)
        profiler.stop()
        total = time.perf_counter() - started
        Path(tree_path).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        root = profiler.last_session.root_frame()
        self_times, cumulative = _from_pyinstrument(root)
        layers, outside = _layers(root)
        tool = f"pyinstrument {pyinstrument.__version__} (1 ms sampling)"
    else:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        result = run_sync(runtime, batches=list(range(16)), reason="bench profile", actor="bench", confirm=None)
        profile.disable()
        total = time.perf_counter() - started
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").dump_stats(tree_path + ".pstats")
        self_times, cumulative = {}, {}
        for (file, line, name), (_, _, tottime, cumtime, _) in stats.stats.items():
            key = f"{name} ({_short(file)}:{line})"
            self_times[key] = tottime
            if PROJECT in file:
                cumulative[key] = cumtime
        layers, outside = {}, {}
        tool = "cProfile (deterministic; inflates Python-heavy code)"
    runtime.close()
    if not result.published:
        raise RuntimeError(f"profiled sync did not publish: {result.error or result.blocked_by}")

    def rank(table: dict[str, float]) -> list[dict]:
        ordered = sorted(table.items(), key=lambda kv: kv[1], reverse=True)[:top]
        return [{"function": k, "seconds": v, "share": v / total} for k, v in ordered]

    return {
        "tool": tool,
        "total_seconds": total,
        "rows": result.rows,
        "top_self": rank(self_times),
        "top_project_cumulative": rank(cumulative),
        "layers": {k: {"seconds": v, "share": v / total} for k, v in layers.items()},
        "top_self_outside_assets": rank(outside),
        "tree": tree_path,
    }


def _short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def _from_pyinstrument(root) -> tuple[dict[str, float], dict[str, float]]:  # type: ignore[no-untyped-def]
    """Self time per function, and total time per project function (outermost call only)."""
    self_times: dict[str, float] = {}
    cumulative: dict[str, float] = {}

    def key(frame) -> str:  # type: ignore[no-untyped-def]
        return f"{frame.function} ({_short(frame.file_path or '?')}:{frame.line_no})"

    def walk(frame, active: frozenset) -> None:  # type: ignore[no-untyped-def]
        if frame.is_synthetic:  # [self]/[await] time is already in its parent's total_self_time
            return
        k = key(frame)
        own = k
        if frame.file_path in (None, "<built-in>") and frame.parent is not None:
            own = f"{k} ← {key(frame.parent)}"  # a built-in (commit, fsync…) is told by its caller
        self_times[own] = self_times.get(own, 0.0) + frame.total_self_time
        inside = active
        if PROJECT in (frame.file_path or "") and k not in active:
            cumulative[k] = cumulative.get(k, 0.0) + frame.time
            inside = active | {k}
        for child in frame.children:
            walk(child, inside)

    if root is not None:
        walk(root, frozenset())
    return self_times, cumulative


ASSET_FUNCTIONS = {"raw_inputs", "entities", "release_candidate", "live_release"}


def _layers(root) -> tuple[dict[str, float], dict[str, float]]:  # type: ignore[no-untyped-def]
    """Split the sync's time: our asset code, Dagster around it, instance set-up, imports; and the
    functions with the most self time outside our asset code (Dagster's own cost)."""
    layers = {
        "our asset code (raw_inputs, entities, release_candidate, live_release)": 0.0,
        "Dagster instance set-up (DagsterInstance.from_config)": 0.0,
        "importing the definitions": 0.0,
        "Dagster run machinery (everything else in execute_in_process)": 0.0,
    }
    outside: dict[str, float] = {}
    names = list(layers)

    def key(frame) -> str:  # type: ignore[no-untyped-def]
        text = f"{frame.function} ({_short(frame.file_path or '?')}:{frame.line_no})"
        if frame.file_path in (None, "<built-in>") and frame.parent is not None:
            parent = frame.parent
            text += f" ← {parent.function} ({_short(parent.file_path or '?')})"
        return text

    def walk(frame, layer: str | None) -> None:  # type: ignore[no-untyped-def]
        if frame.is_synthetic:
            return
        path = frame.file_path or ""
        if layer is None or layer == names[3]:
            if frame.function in ASSET_FUNCTIONS and "reval_assets/assets" in path:
                layer = names[0]
            elif frame.function == "from_config" and "dagster" in path:
                layer = names[1]
            elif frame.function == "<module>" and "reval_assets/definitions" in path:
                layer = names[2]
            elif frame.function == "execute_in_process":
                layer = names[3]
        if layer is not None:
            layers[layer] += frame.total_self_time
            if layer == names[3]:
                k = key(frame)
                outside[k] = outside.get(k, 0.0) + frame.total_self_time
        for child in frame.children:
            walk(child, layer)

    if root is not None:
        walk(root, None)
    return layers, outside
