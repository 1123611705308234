"""Profile one `run_sync` (what `reval sync` does) with pyinstrument: where the time goes, and the call tree."""

from __future__ import annotations

from pathlib import Path

from bench.sync import run_in_env

PROJECT = "reval_assets"
ASSET_FUNCTIONS = {"raw_inputs", "entities", "release_candidate", "live_release"}
OURS, INSTANCE, IMPORTS, MACHINERY = (
    "our asset code (raw_inputs, entities, release_candidate, live_release)",
    "Dagster instance set-up (DagsterInstance.from_config)",
    "importing the definitions",
    "Dagster run machinery (everything else in execute_in_process)",
)


def run_profile(*, env: dict[str, str], tree_path: str, top: int = 15) -> dict:
    import pyinstrument

    profiler = pyinstrument.Profiler(interval=0.001)
    result, total = run_in_env(env, lambda: profiler, reason="bench profile")
    Path(tree_path).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    tally = _tally(profiler.last_session.root_frame())

    def rank(times: dict[str, float]) -> list[dict]:
        ordered = sorted(times.items(), key=lambda kv: kv[1], reverse=True)[:top]
        return [{"function": k, "seconds": v, "share": v / total} for k, v in ordered]

    return {"tool": f"pyinstrument {pyinstrument.__version__} (1 ms sampling)", "total_seconds": total,
            "rows": result.rows, "top_self": rank(tally["self"]), "top_project_cumulative": rank(tally["cumulative"]),
            "layers": {k: {"seconds": v, "share": v / total} for k, v in tally["layers"].items()},
            "top_self_outside_assets": rank(tally["outside"]), "tree": tree_path}


def _short(file: str) -> str:
    for marker in ("site-packages/", "/work/main/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def _key(frame, *, caller_line: bool = True) -> str:  # type: ignore[no-untyped-def]
    """`function (file:line)`; a built-in (commit, fsync…) is told by its caller."""
    text = f"{frame.function} ({_short(frame.file_path or '?')}:{frame.line_no})"
    parent = frame.parent
    if frame.file_path in (None, "<built-in>") and parent is not None:
        where = f"{_short(parent.file_path or '?')}" + (f":{parent.line_no}" if caller_line else "")
        text += f" ← {parent.function} ({where})"
    return text


def _layer_of(frame, layer: str | None) -> str | None:  # type: ignore[no-untyped-def]
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


def _tally(root) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Self time per function; total time per project function (outermost call only); the time per layer
    (our asset code, Dagster around it, instance set-up, imports); self time outside our asset code."""
    out: dict[str, dict[str, float]] = {"self": {}, "cumulative": {}, "outside": {},
                                        "layers": dict.fromkeys((OURS, INSTANCE, IMPORTS, MACHINERY), 0.0)}

    def count(kind: str, key: str, seconds: float) -> None:
        out[kind][key] = out[kind].get(key, 0.0) + seconds

    def walk(frame, layer: str | None, active: frozenset) -> None:  # type: ignore[no-untyped-def]
        if frame.is_synthetic:  # [self]/[await] time is already in its parent's total_self_time
            return
        count("self", _key(frame), frame.total_self_time)
        k = f"{frame.function} ({_short(frame.file_path or '?')}:{frame.line_no})"
        if PROJECT in (frame.file_path or "") and k not in active:
            count("cumulative", k, frame.time)
            active = active | {k}
        layer = _layer_of(frame, layer)
        if layer is not None:
            count("layers", layer, frame.total_self_time)
        if layer == MACHINERY:
            count("outside", _key(frame, caller_line=False), frame.total_self_time)
        for child in frame.children:
            walk(child, layer, active)

    if root is not None:
        walk(root, None, frozenset())
    return out
