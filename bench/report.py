"""Render results.json as RESULTS.md: our figures beside the targets (a table of data), then the detail."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import GIB, MIB, STAGES

HEE, NATIONAL = "100000", "1000000"
BACKENDS = ("sqlite", "postgresql")
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
Add = Callable[[str], None]
Part = tuple[str, "bool | None"]  # a cell's text for one scale or peer, and whether it meets the target
Parts = Callable[[dict, str], list[Part]]


# -- formatting -------------------------------------------------------------------------------


def s(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f} s" if x >= 100 else f"{x:.1f} s" if x >= 10 else f"{x:.2f} s"


def ms(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms"


def mrange(stat: dict | None) -> str:
    """median (min–max), in seconds."""
    if not stat or not stat.get("n"):
        return "—"
    if stat["n"] == 1:
        return s(stat["median"])
    return f"{s(stat['median'])} ({s(stat['min']).split()[0]}–{s(stat['max'])})"


def rate(x: float | None) -> str:
    return "—" if x is None else f"{x / 1e6:.2f}M rows/s" if x >= 1e5 else f"{x / 1e3:.0f}k rows/s"


def mem(x: float | None) -> str:
    return "—" if x is None else f"{x / GIB:.2f} GiB" if x >= GIB else f"{x / MIB:.0f} MiB"


def doctors_label(n: str | int) -> str:
    return f"{int(n):,}" + {100_000: " (hee)", 1_000_000: " (national)"}.get(int(n), "")


def times(x: float) -> str:
    """A speed ratio: 14×, 2.3×, 0.13×."""
    return f"{x:,.0f}×" if x >= 10 else f"{x:.1f}×" if x >= 1 else f"{x:.2f}×"


def p50_p95(stat: dict | None) -> str:
    return f"{ms(stat.get('p50'))} / {ms(stat.get('p95'))}" if stat and stat.get("n") else "—"


def get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def table(add: Add, header: list[str], rows: list[list[str]]) -> None:
    add("| " + " | ".join(header) + " |")
    add("|" + "---|" * len(header))
    for row in rows:
        add("| " + " | ".join(row) + " |")
    add("")


def para(add: Add, text: str) -> None:
    add(text)
    add("")


def by_scale(data: dict | None) -> list[tuple[str, str, Any]]:
    """(backend, doctors, figures) of a {backend: {doctors: figures}} section."""
    return [(b, d, v) for b, scales in (data or {}).items() for d, v in scales.items()]


def sync_seconds(r: dict, b: str, doctors: str, kind: str = "full") -> float | None:
    return get(r, "sync", b, doctors, kind, "command_seconds", "median")


# -- the targets, as data: (figure, target, the parts of a backend's cell, text when there are none) --


def _sync_target(scale: str, limit: float, *, memory: bool) -> Parts:
    def parts(r: dict, b: str) -> list[Part]:
        st = get(r, "sync", b, scale, "full")
        if not st:
            return []
        med, rss = sync_seconds(r, b, scale), get(st, "max_rss_bytes", "max")
        extra = f"peak {mem(rss)}" if memory else f"process {s(get(st, 'process_seconds', 'median'))}"
        ok = None if med is None else med <= limit and (not memory or rss <= 2 * GIB)
        return [(f"{mrange(st.get('command_seconds'))}; {extra}", ok)]
    return parts


def _latency(op: str) -> Parts:
    def parts(r: dict, b: str) -> list[Part]:
        milestones = get(r, "latency", b, "milestones") or {}
        if not milestones:
            return []
        p95 = {n: get(v, f"{op}_ms", "p95") for n, v in milestones.items()}
        text = "p95 " + ", ".join(f"{ms(v)} @{n}" for n, v in p95.items())
        limit = 5.0 if b == "sqlite" else 10.0
        return [(text, all(v is not None and v <= limit for v in p95.values()))]
    return parts


def _staging(r: dict, b: str) -> list[Part]:
    scale = NATIONAL if get(r, "stages", b, NATIONAL) else HEE
    if not (st := get(r, "stages", b, scale)):
        return []
    v = get(st, "staging_rows_per_second", "median")
    both = get(st, "staging_and_index_rows_per_second", "median")
    limit = 0.8e6 if b == "sqlite" else 0.6e6
    return [(f"{rate(v)} ({rate(both)} with indexes), {doctors_label(scale)}",
             None if v is None else v >= limit)]


def _each(keys: tuple[str, ...], cell: Callable[[dict, str, str], Part | None]) -> Parts:
    """A target's parts: one per scale (or peer) with figures."""
    return lambda r, b: [part for key in keys if (part := cell(r, b, key))]


def _resync(r: dict, b: str, scale: str) -> Part | None:
    one, full = sync_seconds(r, b, scale, "one_batch"), sync_seconds(r, b, scale, "full_changed")
    if not (one and full):
        return None
    return f"{one / full:.0%} at {doctors_label(scale)} ({s(one)} vs {s(full)})", one / full <= 0.15


def _dlt(r: dict, b: str, scale: str) -> Part | None:
    if not (ratio := _dlt_ratio(r, b, scale)):
        return None
    return f"{times(ratio[0])} at {doctors_label(scale)} ({s(ratio[1])} vs dlt {s(ratio[2])})", ratio[0] >= 5


def _lakes(r: dict, b: str, peer: str) -> Part | None:
    """Our rollback against the peer's at its longest history (ours at the nearest milestone not above it)."""
    ours_m, theirs_m = get(r, "latency", b, "milestones") or {}, get(r, "peers", peer, "milestones") or {}
    if not ours_m or not theirs_m:
        return None
    n = max(theirs_m, key=int)
    if (at := max((k for k in ours_m if int(k) <= int(n)), key=int, default=None)) is None:
        return None
    ours, theirs = get(ours_m[at], "rollback_ms", "median"), get(theirs_m[n], "rollback_ms", "median")
    if not ours or not theirs:
        return None
    shortest = min(theirs_m, key=int)  # how the peer's rollback grows with its history
    grows = f"; {peer} {ms(get(theirs_m[shortest], 'rollback_ms', 'median'))} @{shortest}" if shortest != n else ""
    return f"{times(theirs / ours)} vs {peer} @{n} ({ms(ours)} vs {ms(theirs)}, p50{grows})", theirs / ours >= 10


def _legacy(r: dict, b: str, scale: str) -> Part | None:
    legacy, ours = get(r, "peers", "legacy", b, scale), sync_seconds(r, b, scale)
    if not (legacy and ours):
        return None
    theirs, sample = legacy["extrapolated_seconds"], f"{legacy['sample_doctors']:,}-doctor sample"
    text = (f"{times(theirs / ours)} at {doctors_label(scale)} ({s(ours)} vs ~{s(theirs)}, extrapolated from "
            f"{ms(legacy['seconds_per_doctor'] * 1000)} a doctor over a {sample})")
    return text, theirs / ours >= 1000


SCALES = (HEE, NATIONAL)
LATENCY_TARGET = "≤ 5 ms SQLite, ≤ 10 ms PostgreSQL, flat 1→1,000"
TARGETS: tuple[tuple[str, str, Parts, str], ...] = (
    ("end-to-end sync, hee (100k doctors)", "≤ 5 s", _sync_target(HEE, 5, memory=False), "not run"),
    ("end-to-end sync, national (1M doctors)", "≤ 30 s, peak memory ≤ 2 GiB", _sync_target(NATIONAL, 30, memory=True),
     "not run (`make bench-full`)"),
    ("publish p95, shipped code, by retained versions", LATENCY_TARGET, _latency("publish"), "not run"),
    ("rollback p95, shipped code, by retained versions", LATENCY_TARGET, _latency("rollback"), "not run"),
    ("staging load", "≥ 0.8M rows/s SQLite, ≥ 0.6M rows/s PostgreSQL", _staging, "not run"),
    ("one-batch resync (1 of 16 batches changed)", "≤ 15 % of a full sync", _each(SCALES, _resync), "not run"),
    ("vs dlt replace, same tables and store (end to end)", "≥ 5× faster", _each(SCALES, _dlt), "not run"),
    ("rollback vs deltalake restore and pyiceberg rollback at 500 versions", "≥ 10× faster",
     _each(("delta", "iceberg"), _lakes), "not run"),
    ("vs the one-doctor-at-a-time design", "≥ 1,000× faster", _each(SCALES, _legacy), "not run"),
)


def _verdict(oks: list[bool]) -> str:
    if not oks:
        return "—"
    return "✅ met" if all(oks) else "❌ not met" if not any(oks) else "⚠️ partly"


def _targets(r: dict, add: Add) -> None:
    prose(add, "targets")
    rows = []
    for figure, target, parts_of, empty in TARGETS:
        parts = {b: parts_of(r, b) for b in BACKENDS}
        cells = ["; ".join(text for text, _ in parts[b]) or empty for b in BACKENDS]
        rows.append([figure, target, *cells, _verdict([ok for b in BACKENDS for _, ok in parts[b] if ok is not None])])
    table(add, ["figure", "target", "SQLite", "PostgreSQL", "verdict"], rows)


def _dlt_ratio(r: dict, b: str, scale: str) -> tuple[float, float, float] | None:
    """Ours (full resync of changed data on a live store) vs dlt (our source + transforms + a replace run)."""
    replace, prep = get(r, "peers", "dlt", b, scale, "replace_seconds", "median"), _dlt_prep(r, b, scale)
    ours = sync_seconds(r, b, scale, "full_changed") or sync_seconds(r, b, scale)
    if not replace or prep is None or not ours:
        return None
    return (prep + replace) / ours, ours, prep + replace


def _dlt_prep(r: dict, b: str, scale: str) -> float | None:
    """What dlt is handed by our side: the source and transforms, from the stage timing."""
    stages = get(r, "stages", b, scale, "seconds")
    return stages["source"]["median"] + stages["transforms"]["median"] if stages else None


# -- the report: prose from report_template.md, figures from here ----------------------------


def _blocks(path: Path) -> dict[str, list[str]]:
    """The template's blocks, `<!-- name -->` to the next marker: paragraphs, their lines joined by spaces."""
    parts = re.split(r"^<!-- (\w+) -->\n", path.read_text(), flags=re.MULTILINE)
    return {name: [" ".join(p.splitlines()) for p in body.strip().split("\n\n")]
            for name, body in zip(parts[1::2], parts[2::2], strict=True)}


BLOCKS = _blocks(Path(__file__).with_name("report_template.md"))


def prose(add: Add, name: str, **fields: object) -> None:
    for paragraph in BLOCKS[name]:
        para(add, paragraph.format(**fields))


def render(r: dict) -> str:
    lines: list[str] = []
    for section in (_preamble, _targets, _sync, _stages, _versions, _resync_table, _peers):
        section(r, lines.append)
    if r.get("notes"):
        prose(lines.append, "notes")
        lines.extend([*(f"- {note}" for note in r["notes"]), ""])
    return "\n".join(lines) + "\n"


def _preamble(r: dict, add: Add) -> None:
    m, libraries = r["machine"], r["libraries"]
    prose(add, "intro", profile=r["bench_profile"], started=r["started_at"],
          minutes=f"{(r.get('bench_seconds') or 0) / 60:.1f} min")
    pool = f", Arrow memory pool {m['arrow_memory_pool']}." if m.get("arrow_memory_pool") else "."
    prose(add, "machine", **{**m, "postgresql": m.get("postgresql") or "n/a", "pool": pool})
    missing = [k for k, v in libraries.items() if not v]
    para(add, "**Libraries:** " + ", ".join(f"{k} {v}" for k, v in libraries.items() if v) + "."
         + (f" Not installed: {', '.join(missing)}." if missing else ""))
    prose(add, "load", load_start=r.get("load_average_start"), load_end=r.get("load_average_end"), cores=m["cores"])


def _sync(r: dict, add: Add) -> None:
    if not r.get("sync"):
        return
    prose(add, "sync")
    cold = [(NAMES[b], doctors_label(d), kinds["full"]) for b, d, kinds in by_scale(r["sync"])]
    table(add, ["store", "doctors", "rows", "sync (command)", "process wall", "CPU", "rows/s", "peak memory"], [
        [b, d, f"{st['rows_total']:,}", mrange(st["command_seconds"]), mrange(st["process_seconds"]),
         mrange(st["cpu_seconds"]), rate(st["rows_per_second"]["median"]), f"{mem(st['max_rss_bytes']['max'])} (max)"]
        for b, d, st in cold])
    prose(add, "sync_steps")
    table(add, ["store", "doctors", "raw_inputs", "entities", "release_candidate (+ checks)", "live_release"],
          [[b, d, *(s(_step(st, *keys)) for keys in SYNC_STEPS)] for b, d, st in cold])


# The blocking checks are their own step (candidate_checks) since issue 17; results from before have them inside
# release_candidate's, so the column sums the two.
SYNC_STEPS = (("raw_inputs",), ("entities",), ("release_candidate", "candidate_checks"), ("live_release",))


def _step(st: dict, *keys: str) -> float | None:
    medians = [m for k in keys if (m := get(st["dagster_steps"], k, "median")) is not None]
    return sum(medians) if medians else None


STAGE_FIGURES: tuple[tuple[str, Callable[[dict], str]], ...] = (
    ("**total**", lambda st: mrange(st["total_seconds"])),
    ("staging load rate", lambda st: rate(st["staging_rows_per_second"]["median"])),
    ("load + index rate", lambda st: rate(st["staging_and_index_rows_per_second"]["median"])),
    ("peak memory (no Dagster)", lambda st: mem(st["max_rss_bytes"]["max"])),
    ("rollback's file re-hash", lambda st: s(st["rollback_verify_seconds"]["median"])),
)


def _stages(r: dict, add: Add) -> None:
    if not r.get("stages"):
        return
    prose(add, "stages")
    runs = [(f"{NAMES[b]} {doctors_label(d)}", st) for b, d, st in by_scale(r["stages"])]

    def share(st: dict, stage: str) -> str:
        med = get(st, "seconds", stage, "median")
        return f"{s(med)} ({med / st['total_seconds']['median']:.0%})" if med is not None else "—"

    rows = [[stage, *(share(st, stage) for _, st in runs)] for stage in (*STAGES, "other")]
    rows += [[label, *(cell(st) for _, st in runs)] for label, cell in STAGE_FIGURES]
    table(add, ["stage", *(label for label, _ in runs)], rows)
    detail = [f"{label}: " + ", ".join(f"{k.removeprefix('transforms_')} {s(v['median'])}"
                                       for k, v in st["transforms_detail"].items()) for label, st in runs]
    para(add, "Transforms in detail (median): " + "; ".join(detail) + ".")


LATENCY_KINDS = ("publish", "rollback", "operations_publish", "operations_rollback")


def _versions(r: dict, add: Add) -> None:
    if not r.get("latency"):
        return
    prose(add, "versions", doctors=f"{next(iter(r['latency'].values()))['doctors']:,}")
    header = ["versions", "publish (shipped)", "rollback (shipped)", "operations.publish", "operations.rollback"]
    for backend, data in r["latency"].items():
        para(add, f"**{NAMES[backend]}**")
        table(add, header, [[f"{int(n):,}", *(p50_p95(v.get(f"{k}_ms")) for k in LATENCY_KINDS)]
                            for n, v in data["milestones"].items()])


def _resync_table(r: dict, add: Add) -> None:
    rows = [[NAMES[b], doctors_label(d), mrange(one["command_seconds"]), mrange(full["command_seconds"]),
             f"{one['command_seconds']['median'] / full['command_seconds']['median']:.0%}",
             f"{mem(one['max_rss_bytes']['max'])} / {mem(full['max_rss_bytes']['max'])}",
             ", ".join(f"{k} {s(v['median'])}" for k, v in one["dagster_steps"].items())]
            for b, d, kinds in by_scale(r.get("sync")) if "one_batch" in kinds
            for one, full in [(kinds["one_batch"], kinds["full_changed"])]]
    if rows:
        prose(add, "resync")
        table(add, ["store", "doctors", "one batch", "full, data changed", "ratio (one / full changed)",
                    "peak memory, one batch / full changed (max)", "one-batch Dagster steps"], rows)


def _peers(r: dict, add: Add) -> None:
    if not (peers := r.get("peers")):
        return
    prose(add, "peers")
    if peers.get("legacy"):
        prose(add, "legacy")
    if peers.get("dlt"):
        _dlt_table(r, add, peers["dlt"])
    if lake := [peers[k] for k in ("delta", "iceberg") if peers.get(k)]:
        prose(add, "lakes", doctors=f"{lake[0]['doctors']:,}")


def _dlt_table(r: dict, add: Add, dlt: dict) -> None:
    prose(add, "dlt")
    rows = []
    for b, d, v in by_scale(dlt):
        e2e, ours = (ratio[2], ratio[1]) if (ratio := _dlt_ratio(r, b, d)) else (None, None)
        steps = (v["replace_runs"] or [v["first_run"]])[-1]["steps"]
        rows.append([NAMES[b], doctors_label(d), s(v["first_run"]["seconds"]), mrange(v["replace_seconds"]),
                     " / ".join(s(steps.get(k)) for k in ("extract", "normalize", "load")), s(e2e), s(ours),
                     times(e2e / ours) if e2e and ours else "—"])
    table(add, ["store", "doctors", "first run", "replace run", "extract / normalize / load (replace)",
                "dlt end to end", "ours", "ours faster by"], rows)


if __name__ == "__main__":  # `python -m bench.report [results.json]`: re-render RESULTS.md beside it
    import json
    import sys

    source = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results.json")
    (source.parent / "RESULTS.md").write_text(render(json.loads(source.read_text())))
