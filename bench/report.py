"""Render bench/results.json as bench/RESULTS.md: our figures beside the targets, then the detail."""

from __future__ import annotations

from bench.common import GIB, MIB, STAGES

HEE, NATIONAL = "100000", "1000000"
BACKEND_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
STAGE_ORDER = (*STAGES, "other")


# -- formatting -------------------------------------------------------------------------------


def s(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:,.0f} s"
    if x >= 10:
        return f"{x:.1f} s"
    return f"{x:.2f} s"


def ms(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms"


def mrange(stat: dict | None, unit=s) -> str:  # type: ignore[no-untyped-def]
    """median (min–max)."""
    if not stat or not stat.get("n"):
        return "—"
    if stat["n"] == 1:
        return unit(stat["median"])
    return f"{unit(stat['median'])} ({unit(stat['min']).split()[0]}–{unit(stat['max'])})"


def rate(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x / 1e6:.2f}M rows/s" if x >= 1e5 else f"{x / 1e3:.0f}k rows/s"


def mem(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x / GIB:.2f} GiB" if x >= GIB else f"{x / MIB:.0f} MiB"


def doctors_label(n: str | int) -> str:
    n = int(n)
    name = {100_000: " (hee)", 1_000_000: " (national)"}.get(n, "")
    return f"{n:,}{name}"


def times(x: float) -> str:
    """A speed ratio: 14×, 2.3×, 0.13×."""
    return f"{x:,.0f}×" if x >= 10 else f"{x:.1f}×" if x >= 1 else f"{x:.2f}×"


def _minutes(r: dict) -> str:
    this = (r.get("bench_seconds") or 0) / 60
    passes = r.get("merged_from") or []
    if not passes:
        return f"{this:.1f} min"
    total = this + sum((p.get("bench_seconds") or 0) for p in passes) / 60
    return f"{total:.0f} min over {len(passes) + 1} passes (this pass {this:.1f} min)"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("✅ met" if ok else "❌ not met")


def get(data: dict | None, *path: str):  # type: ignore[no-untyped-def]
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


# -- the report -------------------------------------------------------------------------------


def render(r: dict) -> str:
    lines: list[str] = []
    add = lines.append
    m = r["machine"]
    add("# reval_assets benchmark results")
    add("")
    add(
        f"Profile **{r['bench_profile']}** (`make bench` is `small`, `make bench-full` is `full`), started "
        f"{r['started_at']}, took {_minutes(r)}. Written by `python -m bench`; "
        "the raw figures, every run included, are in `results.json`."
    )
    add("")
    passes = r.get("merged_from", [])
    if passes:
        add("Built from several passes; a later pass replaces the figures it measured again:")
        add("")
        for p in [*passes, r]:
            cfg = p.get("config") or {}
            this = " (this one)" if p is r else ""
            add(
                f"- **{p.get('bench_profile')}** pass{this} started {p.get('started_at')}: scales "
                f"{', '.join(f'{n:,}' for n in cfg.get('scales', []))}; sections "
                f"{', '.join(p.get('sections') or ['see results.json'])}; load average at start "
                f"{p.get('load_average_start')}"
            )
        add("")
    add(
        f"**Machine:** {m['cores']} cores ({m['processor']}), {m['memory_gib']} GiB memory, {m['platform']}; "
        f"Python {m['python']}, PostgreSQL {m.get('postgresql') or 'n/a'}, SQLite {m['sqlite']}"
        + (f", Arrow memory pool {m['arrow_memory_pool']}." if m.get("arrow_memory_pool") else ".")
    )
    add("")
    add("**Libraries:** " + ", ".join(f"{k} {v}" for k, v in r["libraries"].items() if v) + ".")
    missing = [k for k, v in r["libraries"].items() if not v]
    if missing:
        add(f" Not installed: {', '.join(missing)}.")
    add("")
    add(
        f"**Load average** (1/5/15 min) at start {r.get('load_average_start')}, at end {r.get('load_average_end')}. "
        "The machine is shared: other work running at the same time inflates wall-clock figures (a load above "
        f"{m['cores']} means processes were queueing for a core). CPU seconds of the sync process are given "
        "beside wall seconds; they are much less sensitive to that."
    )
    add("")
    add(
        "Every figure is the median over the repeats, with (min–max); latencies give p50 and p95. "
        "“Sync” is the real `reval sync --json` command run as a subprocess on a fresh store: Dagster in "
        "process, two runs (batch assets, then release_candidate + checks + live_release). Its figure is the "
        "`seconds` the command reports (time inside `run_sync`); the process's wall time, which adds "
        "interpreter start and imports, is shown too."
    )
    add("")
    _targets(r, add)
    _floors(r, add)
    _sync(r, add)
    _stages(r, add)
    _versions(r, add)
    _resync(r, add)
    _peers(r, add)
    _profile(r, add)
    if r.get("notes"):
        add("## Notes and problems")
        add("")
        for note in r["notes"]:
            add(f"- {note}")
        add("")
    return "\n".join(lines) + "\n"


def _sync_stat(r: dict, backend: str, doctors: str, kind: str = "full") -> dict | None:
    return get(r, "sync", backend, doctors, kind)


def _targets(r: dict, add) -> None:  # type: ignore[no-untyped-def]
    add("## Where we stand against the targets")
    add("")
    add("| figure | target | SQLite | PostgreSQL | verdict |")
    add("|---|---|---|---|---|")
    backends = ("sqlite", "postgresql")

    # end-to-end hee
    cells, oks = [], []
    for b in backends:
        st = _sync_stat(r, b, HEE)
        med = get(st, "command_seconds", "median")
        cells.append(
            f"{mrange(get(st, 'command_seconds'))}; process {s(get(st, 'process_seconds', 'median'))}"
            if st
            else "not run"
        )
        if med is not None:
            oks.append(med <= 5)
    add(f"| end-to-end sync, hee (100k doctors) | ≤ 5 s | {cells[0]} | {cells[1]} | {_all(oks)} |")

    cells, oks = [], []
    for b in backends:
        st = _sync_stat(r, b, NATIONAL)
        med = get(st, "command_seconds", "median")
        rss = get(st, "max_rss_bytes", "max")
        cells.append(f"{mrange(get(st, 'command_seconds'))}; peak {mem(rss)}" if st else "not run (`make bench-full`)")
        if med is not None:
            oks.append(med <= 30 and rss <= 2 * GIB)
    add(
        f"| end-to-end sync, national (1M doctors) | ≤ 30 s, peak memory ≤ 2 GiB | {cells[0]} | {cells[1]} | "
        f"{_all(oks)} |"
    )

    for op, label in (("publish", "publish"), ("rollback", "rollback")):
        cells, oks = [], []
        for b, limit in zip(backends, (5.0, 10.0), strict=True):
            ms_ = get(r, "latency", b, "milestones") or {}
            if not ms_:
                cells.append("not run")
                continue
            p95 = {n: get(v, f"{op}_ms", "p95") for n, v in ms_.items()}
            persistent = {n: get(v, f"{op}_persistent_ms", "p95") for n, v in ms_.items()}
            cells.append(
                "p95 "
                + ", ".join(f"{ms(v)} @{n}" for n, v in p95.items())
                + (
                    " — one persistent connection: " + ", ".join(f"{ms(v)} @{n}" for n, v in persistent.items())
                    if b == "sqlite"
                    else ""
                )
            )
            oks.append(all(v is not None and v <= limit for v in p95.values()))
        add(
            f"| {label} p95, shipped code, by retained versions | ≤ 5 ms SQLite, ≤ 10 ms PostgreSQL, flat 1→1,000 | "
            f"{cells[0]} | {cells[1] if len(cells) > 1 else '—'} | {_all(oks)} |"
        )

    cells, oks = [], []
    for b, limit in zip(backends, (0.8e6, 0.6e6), strict=True):
        scale = NATIONAL if get(r, "stages", b, NATIONAL) else HEE
        st = get(r, "stages", b, scale)
        v = get(st, "staging_rows_per_second", "median")
        both = get(st, "staging_and_index_rows_per_second", "median")
        bare = get(st, "loader_ceiling", "adbc_rows_per_second", "median")
        ceiling = f"; the bare loader here: {rate(bare)} ({v / bare:.0%} of it)" if v and bare else ""
        cells.append(f"{rate(v)} ({rate(both)} with indexes), {doctors_label(scale)}{ceiling}" if st else "not run")
        if v is not None:
            oks.append(v >= limit)
    add(f"| staging load | ≥ 0.8M rows/s SQLite, ≥ 0.6M rows/s PostgreSQL | {cells[0]} | {cells[1]} | {_all(oks)} |")

    def resync(b: str) -> list[tuple[str, bool]]:
        parts = []
        for scale in (HEE, NATIONAL):
            one = get(_sync_stat(r, b, scale, "one_batch"), "command_seconds", "median")
            full = get(_sync_stat(r, b, scale, "full_changed"), "command_seconds", "median")
            if one and full:
                parts.append((f"{one / full:.0%} at {doctors_label(scale)} ({s(one)} vs {s(full)})",
                              one / full <= 0.15))
        return parts

    def dlt(b: str) -> list[tuple[str, bool]]:
        parts = []
        for scale in (HEE, NATIONAL):
            ratio = _dlt_ratio(r, b, scale)
            if ratio:
                parts.append((f"{times(ratio[0])} at {doctors_label(scale)} ({s(ratio[1])} vs dlt {s(ratio[2])})",
                              ratio[0] >= 5))
        return parts

    def lakes(b: str) -> list[tuple[str, bool]]:
        parts = []
        for peer in ("delta", "iceberg"):
            ratio = _lake_ratio(r, b, peer)
            if ratio:
                parts.append((f"{times(ratio[0])} vs {peer} @{ratio[3]} ({ms(ratio[1])} vs {ms(ratio[2])}, p50)",
                              ratio[0] >= 10))
        return parts

    def legacy(b: str) -> list[tuple[str, bool]]:
        parts = []
        for scale in (HEE, NATIONAL):
            theirs = get(r, "peers", "legacy", b, scale, "extrapolated_seconds")
            ours = get(_sync_stat(r, b, scale), "command_seconds", "median")
            if theirs and ours:
                parts.append((f"{times(theirs / ours)} at {doctors_label(scale)} ({s(ours)} vs ~{s(theirs)} "
                              "extrapolated)", theirs / ours >= 1000))
        return parts

    for figure, target, parts_of in (
        ("one-batch resync (1 of 16 batches changed)", "≤ 15 % of a full sync", resync),
        ("vs dlt replace, same tables and store (end to end)", "≥ 5× faster", dlt),
        ("rollback vs deltalake restore and pyiceberg rollback at 500 versions", "≥ 10× faster", lakes),
        ("vs the one-doctor-at-a-time design", "≥ 1,000× faster", legacy),
    ):
        parts = {b: parts_of(b) for b in backends}
        cells = ["; ".join(text for text, _ in parts[b]) or "not run" for b in backends]
        oks = [ok for b in backends for _, ok in parts[b]]
        add(f"| {figure} | {target} | {cells[0]} | {cells[1]} | {_all(oks)} |")
    add("")


def _floors(r: dict, add) -> None:  # type: ignore[no-untyped-def]
    """What a target needs, beside what this pass measured of the fixed costs standing in its way."""
    backends = ("sqlite", "postgresql")
    rows: list[tuple[str, list[str]]] = []

    def need_vs_floor(need: float | None, floor: float | None, what: str) -> str:
        if not need or not floor:
            return "—"
        return f"needs ≤ {s(need)}; {what} takes {s(floor)}" + (" (above it)" if floor > need else "")

    small = "10000"

    def source(b: str, scale: str) -> float | None:
        return get(r, "stages", b, scale, "seconds", "source", "median")

    for scale, name in ((HEE, "hee"), (NATIONAL, "national")):
        cells = []
        for b in backends:
            full = get(_sync_stat(r, b, scale, "full_changed"), "command_seconds", "median")
            small_one = get(_sync_stat(r, b, small, "one_batch"), "command_seconds", "median")
            export, small_export = source(b, scale), source(b, small)
            floor = small_one - small_export + export if small_one and export and small_export else None
            cells.append(need_vs_floor(full * 0.15 if full else None, floor,
                                       f"generating its export ({s(export)}) plus a one-batch resync of 10,000 "
                                       f"doctors without its own ({s(small_one)} − {s(small_export)})"))
        rows.append((f"one-batch resync ≤ 15 % at {name}", cells))
    cells = []
    for b in backends:
        ratio = _dlt_ratio(r, b, HEE)
        floor = get(_sync_stat(r, b, small), "command_seconds", "median")
        cells.append(need_vs_floor(ratio[2] / 5 if ratio else None, floor, "a cold sync of 10,000 doctors"))
    rows.append(("≥ 5× dlt at hee", cells))
    cells = []
    for b in backends:
        theirs = get(r, "peers", "legacy", b, HEE, "extrapolated_seconds")
        floor = get(r, "stages", b, HEE, "seconds", "source", "median")
        cells.append(need_vs_floor(theirs / 1000 if theirs else None, floor, "generating the export alone"))
    rows.append(("≥ 1,000× one doctor per transaction at hee", cells))
    rows = [(label, cells) for label, cells in rows if any(c != "—" for c in cells)]  # figures this pass has
    if not rows:
        return
    add("What the unmet ratio targets need, against lower bounds measured in this pass. A sync of 10,000 "
        "doctors does less of every kind of work than one of 100,000, so it cannot take longer; most of it is "
        "the part that does not shrink with the data (the Dagster instance, two runs and their events; compare "
        "the stage-by-stage total without Dagster below). Every sync reads the export whole, because real "
        "exports are whole files.")
    add("")
    add("| target | SQLite | PostgreSQL |")
    add("|---|---|---|")
    for label, cells in rows:
        add(f"| {label} | {cells[0]} | {cells[1]} |")
    add("")


def _all(oks: list[bool]) -> str:
    if not oks:
        return "—"
    if all(oks):
        return verdict(True)
    return verdict(False) if not any(oks) else "⚠️ partly"


def _dlt_ratio(r: dict, backend: str, scale: str) -> tuple[float, float, float] | None:
    """Ours (full resync of changed data on a live store) vs dlt (our source + transforms + a replace run)."""
    dlt = get(r, "peers", "dlt", backend, scale, "strategies")
    stages = get(r, "stages", backend, scale, "seconds")
    ours = get(_sync_stat(r, backend, scale, "full_changed"), "command_seconds", "median") or get(
        _sync_stat(r, backend, scale), "command_seconds", "median"
    )
    if not dlt or not stages or not ours:
        return None
    best = min(v["replace_seconds"]["median"] for v in dlt.values() if v["replace_seconds"].get("n"))
    theirs = stages["source"]["median"] + stages["transforms"]["median"] + best
    return theirs / ours, ours, theirs


def _lake_ratio(r: dict, backend: str, peer: str) -> tuple[float, float, float, str] | None:
    ours_m = get(r, "latency", backend, "milestones") or {}
    theirs_m = get(r, "peers", peer, "milestones") or {}
    if not ours_m or not theirs_m:
        return None
    n = max(theirs_m, key=int)
    ours_key = n if n in ours_m else max((k for k in ours_m if int(k) <= int(n)), key=int, default=None)
    if ours_key is None:
        return None
    ours = get(ours_m[ours_key], "rollback_ms", "median")
    theirs = get(theirs_m[n], "rollback_ms", "median")
    if not ours or not theirs:
        return None
    return theirs / ours, ours, theirs, n


def _sync(r: dict, add) -> None:  # type: ignore[no-untyped-def]
    if not r.get("sync"):
        return
    add("## 1. End-to-end sync (`reval sync`)")
    add("")
    add("Fresh store each repeat (cold: nothing cached, no live version yet).")
    add("")
    add("| store | doctors | rows | sync (command) | process wall | CPU | rows/s | peak memory |")
    add("|---|---|---|---|---|---|---|---|")
    for backend, scales in r["sync"].items():
        for doctors, kinds in scales.items():
            st = kinds["full"]
            add(
                f"| {BACKEND_NAMES[backend]} | {doctors_label(doctors)} | {st['rows_total']:,} | "
                f"{mrange(st['command_seconds'])} | {mrange(st['process_seconds'])} | {mrange(st['cpu_seconds'])} | "
                f"{rate(st['rows_per_second']['median'])} | {mem(st['max_rss_bytes']['max'])} (max) |"
            )
    add("")
    add("Dagster step durations (from the runs' event logs, STEP_START → STEP_SUCCESS), median seconds:")
    add("")
    add("| store | doctors | raw_inputs | entities | release_candidate (+ checks) | live_release |")
    add("|---|---|---|---|---|---|")
    for backend, scales in r["sync"].items():
        for doctors, kinds in scales.items():
            steps = kinds["full"]["dagster_steps"]
            add(
                f"| {BACKEND_NAMES[backend]} | {doctors_label(doctors)} | "
                + " | ".join(
                    s(get(steps, k, "median")) for k in ("raw_inputs", "entities", "release_candidate", "live_release")
                )
                + " |"
            )
    add("")


def _stages(r: dict, add) -> None:  # type: ignore[no-untyped-def]
    if not r.get("stages"):
        return
    add("### Stage by stage (core steps timed directly, same process, same data, no Dagster)")
    add("")
    add(
        "`bench/stages.py` wraps the core's own functions with timers and runs land → land_batch → build_batch → "
        "stage_candidate → check_candidate → publish on a fresh store. `transforms` is conform + batch split + "
        "build_entities; `snapshot_read` is reading files back (build inputs, sha256 checks when composing the "
        "manifest, Parquet decoding for the load); `other` is what no timer covers (landing evidence, heads, "
        "manifest, catalog queries). The gap to the command's figure above is Dagster and process overhead. "
        "The *bare loader* rows load the same batch tables again, already in memory and typed, into an empty "
        "database (`CREATE TABLE`, ingest, commit; no indexes, no registry; as many connections as the staging "
        "load): the bulk loader's own rate on this machine, the ceiling of the staging load."
    )
    add("")
    header = [(b, d) for b, scales in r["stages"].items() for d in scales]
    add("| stage | " + " | ".join(f"{BACKEND_NAMES[b]} {doctors_label(d)}" for b, d in header) + " |")
    add("|---|" + "---|" * len(header))
    for stage in STAGE_ORDER:
        row = []
        for b, d in header:
            st = r["stages"][b][d]
            med = get(st, "seconds", stage, "median")
            total = st["total_seconds"]["median"]
            row.append(f"{s(med)} ({med / total:.0%})" if med is not None else "—")
        add(f"| {stage} | " + " | ".join(row) + " |")
    add("| **total** | " + " | ".join(mrange(r["stages"][b][d]["total_seconds"]) for b, d in header) + " |")
    add(
        "| staging load rate | "
        + " | ".join(rate(r["stages"][b][d]["staging_rows_per_second"]["median"]) for b, d in header)
        + " |"
    )
    add(
        "| load + index rate | "
        + " | ".join(rate(r["stages"][b][d]["staging_and_index_rows_per_second"]["median"]) for b, d in header)
        + " |"
    )
    for key, label in (("adbc_rows_per_second", "bare loader: ADBC ingest"),
                       ("psycopg_csv_copy_rows_per_second", "bare loader: psycopg CSV COPY")):
        cells = [rate(get(r["stages"][b][d], "loader_ceiling", key, "median")) for b, d in header]
        if any(c != "—" for c in cells):
            add(f"| {label} | " + " | ".join(cells) + " |")
    add(
        "| peak memory (no Dagster) | "
        + " | ".join(mem(r["stages"][b][d]["max_rss_bytes"]["max"]) for b, d in header)
        + " |"
    )
    add(
        "| rollback's file re-hash | "
        + " | ".join(s(r["stages"][b][d]["rollback_verify_seconds"]["median"]) for b, d in header)
        + " |"
    )
    add("")
    detail = []
    for b, d in header:
        parts = r["stages"][b][d]["transforms_detail"].items()
        detail.append(
            f"{BACKEND_NAMES[b]} {doctors_label(d)}: "
            + ", ".join(f"{k.removeprefix('transforms_')} {s(v['median'])}" for k, v in parts)
        )
    add("Transforms in detail (median): " + "; ".join(detail) + ".")
    add("")


def _versions(r: dict, add) -> None:  # type: ignore[no-untyped-def]
    if not r.get("latency"):
        return
    add("## 2. Publish and rollback latency by retained versions")
    add("")
    first = next(iter(r["latency"].values()))
    add(
        f"{first['doctors']:,} doctors per version. Versions beyond the first re-stage the same batch files "
        "(new manifest, new views over the shared batch tables). Three ways, each timed in its own block: "
        "**shipped** = `LiveStore.publish/rollback` as the code is (the one transaction; SQLite opens a new "
        "connection per operation: NullPool); **operations** = `operations.publish/rollback`, what `live_release` "
        "and `reval rollback` call (rollback first re-hashes every file of the target version); **persistent** = "
        "the same `LiveStore` methods through one kept-open connection (what pooling would add). p50 / p95:"
    )
    add("")
    for backend, data in r["latency"].items():
        add(f"**{BACKEND_NAMES[backend]}**")
        add("")
        add(
            "| versions | publish (shipped) | rollback (shipped) | operations.publish | operations.rollback | "
            "publish (persistent) | rollback (persistent) |"
        )
        add("|---|---|---|---|---|---|---|")
        for n, v in data["milestones"].items():
            cells = []
            for k in (
                "publish_ms",
                "rollback_ms",
                "operations_publish_ms",
                "operations_rollback_ms",
                "publish_persistent_ms",
                "rollback_persistent_ms",
            ):
                st = v.get(k) or {}
                cells.append(f"{ms(st.get('p50'))} / {ms(st.get('p95'))}" if st.get("n") else "—")
            add(f"| {int(n):,} | " + " | ".join(cells) + " |")
        add("")


def _resync(r: dict, add) -> None:  # type: ignore[no-untyped-def]
    rows = []
    for backend, scales in (r.get("sync") or {}).items():
        for doctors, kinds in scales.items():
            if "one_batch" in kinds:
                one, full, cold = kinds["one_batch"], kinds["full_changed"], kinds["full"]
                steps = one["dagster_steps"]
                rows.append(
                    f"| {BACKEND_NAMES[backend]} | {doctors_label(doctors)} | {mrange(one['command_seconds'])} | "
                    f"{mrange(full['command_seconds'])} | {mrange(cold['command_seconds'])} | "
                    f"{one['command_seconds']['median'] / full['command_seconds']['median']:.0%} | "
                    f"{mem(one['max_rss_bytes']['max'])} / {mem(full['max_rss_bytes']['max'])} | "
                    + ", ".join(f"{k} {s(v['median'])}" for k, v in steps.items())
                    + " |"
                )
    if not rows:
        return
    add("## 3. One-batch resync against a full sync")
    add("")
    add(
        "On the store the cold sync left live: `reval sync --batches 3` of a changed population (seed 1; only "
        "batch 3 is taken), then a full sync of a changed population (seed 2). Both read the whole source: the "
        "export files are whole, batching happens after reading."
    )
    add("")
    add(
        "| store | doctors | one batch | full, data changed | full, cold | ratio (one / full changed) | "
        "peak memory, one batch / full changed (max) | one-batch Dagster steps |"
    )
    add("|---|---|---|---|---|---|---|---|")
    for row in rows:
        add(row)
    add("")


def _peers(r: dict, add) -> None:  # type: ignore[no-untyped-def]
    p = r.get("peers")
    if not p:
        return
    add("## 4. Peers (same data, same machine, same run)")
    add("")
    if p.get("legacy"):
        add("### The original design: delete live, then one transaction per doctor (extrapolated)")
        add("")
        add(
            "The three live tables (with key indexes) are filled, deleted in one transaction (the incident's first "
            "step), then doctors are upserted one at a time, one transaction each (doctor, connection, delete + "
            "insert recommendations), on one open connection with prepared statements: a generous stand-in for "
            "the original's one message per doctor. **Time of a sample, extrapolated to the population.**"
        )
        add("")
        add("| store | doctors | sample | per doctor | extrapolated full resync | ours (sync) | ours faster by |")
        add("|---|---|---|---|---|---|---|")
        for backend, scales in p["legacy"].items():
            for doctors, v in scales.items():
                ours = get(_sync_stat(r, backend, doctors), "command_seconds", "median")
                add(
                    f"| {BACKEND_NAMES[backend]} | {doctors_label(doctors)} | {v['sample_doctors']:,} doctors "
                    f"({v['sample_rows']:,} rows) | {ms(v['seconds_per_doctor'] * 1000)} | "
                    f"~{s(v['extrapolated_seconds'])} | {s(ours)} | "
                    f"{times(v['extrapolated_seconds'] / ours) if ours else '—'} |"
                )
        add("")
        add(
            "For scale: the incident's real full resync took 5 h 48 min (20,880 s), through queues and a search "
            "index rather than straight into a database."
        )
        add("")
    if p.get("dlt"):
        add('### dlt, `write_disposition="replace"`')
        add("")
        add(
            "The same three Arrow tables (built by our transforms) loaded by `dlt` into the same kind of store "
            "(SQLite through dlt's `sqlalchemy` destination, PostgreSQL through its `postgres` destination, which "
            "uses ADBC/Parquet when available). Run 1 creates the tables; later runs replace them. "
            "dlt end to end = our source + transforms (stage table) + dlt's replace run; ours = a full sync of "
            "changed data onto a live store."
        )
        add("")
        add(
            "| store | doctors | strategy | first run | replace run | extract / normalize / load (replace) | "
            "dlt end to end | ours | ours faster by |"
        )
        add("|---|---|---|---|---|---|---|---|---|")
        for backend, scales in p["dlt"].items():
            for doctors, v in scales.items():
                stages = get(r, "stages", backend, doctors, "seconds")
                prep = (stages["source"]["median"] + stages["transforms"]["median"]) if stages else None
                ours = get(_sync_stat(r, backend, doctors, "full_changed"), "command_seconds", "median") or get(
                    _sync_stat(r, backend, doctors), "command_seconds", "median"
                )
                for strategy, sv in v["strategies"].items():
                    rep = sv["replace_seconds"].get("median")
                    last = (sv["replace_runs"] or [sv["first_run"]])[-1]["steps"]
                    e2e = prep + rep if prep is not None and rep else None
                    add(
                        f"| {BACKEND_NAMES[backend]} | {doctors_label(doctors)} | {strategy} | "
                        f"{s(sv['first_run']['seconds'])} | {mrange(sv['replace_seconds'])} | "
                        + " / ".join(s(last.get(k)) for k in ("extract", "normalize", "load"))
                        + f" | {s(e2e)} | {s(ours)} | {times(e2e / ours) if e2e and ours else '—'} |"
                    )
        add("")
    lake = [(k, p[k]) for k in ("delta", "iceberg") if p.get(k)]
    if lake:
        add("### Snapshot-and-rollback: Delta Lake `restore` and Iceberg rollback")
        add("")
        add(
            f"{lake[0][1]['doctors']:,} doctors; a version is an overwrite of the three tables; the rollback of a "
            "release is three table operations (neither library has a transaction across tables), timed on "
            "already-open table handles. Delta: `DeltaTable.restore(previous)`; Iceberg (SQL catalog on SQLite): "
            "`manage_snapshots().rollback_to_snapshot(previous)` (alternating with `set_current_snapshot(newest)`). "
            "“2 versions” is the smallest history with a previous version to go back to. Ours: `LiveStore.rollback` "
            "as shipped, same population."
        )
        add("")
        add(
            "| versions | " + " | ".join(f"{name} p50 / p95" for name, _ in lake) + " | ours SQLite p50 / p95 | "
            "ours PostgreSQL p50 / p95 |"
        )
        add("|---|" + "---|" * (len(lake) + 2))
        for n in lake[0][1]["milestones"]:
            cells = []
            for _, v in lake:
                st = get(v, "milestones", n, "rollback_ms") or {}
                cells.append(f"{ms(st.get('p50'))} / {ms(st.get('p95'))}")
            for backend in ("sqlite", "postgresql"):
                ours = get(r, "latency", backend, "milestones", n, "rollback_ms")
                cells.append(f"{ms(ours['p50'])} / {ms(ours['p95'])}" if ours else "—")
            add(f"| {int(n):,} | " + " | ".join(cells) + " |")
        add("")
        add(
            "Writing one version (3 tables): "
            + "; ".join(f"{name} {mrange(v['write_version_seconds'])}" for name, v in lake)
            + "."
        )
        add("")


def _profile(r: dict, add) -> None:  # type: ignore[no-untyped-def]
    pr = r.get("profile")
    if not pr:
        return
    add("## 5. Profile of the hee sync")
    add("")
    add(
        f"`run_sync` on SQLite, {sum(pr['rows'].values()):,} rows, {s(pr['total_seconds'])} under {pr['tool']}; "
        "full call tree in `profile_hee.txt`."
    )
    add("")
    if pr.get("layers"):
        add("Where the time goes:")
        add("")
        add("| part | seconds | share |")
        add("|---|---|---|")
        for name, v in pr["layers"].items():
            add(f"| {name} | {v['seconds']:.2f} | {v['share']:.0%} |")
        add("")
        add("Inside Dagster's run machinery (outside our asset code), by self time:")
        add("")
        add("| function | seconds | share of the sync |")
        add("|---|---|---|")
        for row in pr.get("top_self_outside_assets", []):
            add(f"| `{row['function']}` | {row['seconds']:.2f} | {row['share']:.0%} |")
        add("")
    add("Project functions by total time (outermost call):")
    add("")
    add("| function | seconds | share |")
    add("|---|---|---|")
    for row in pr["top_project_cumulative"]:
        add(f"| `{row['function']}` | {row['seconds']:.2f} | {row['share']:.0%} |")
    add("")
    add("Functions by self time (where the time is actually spent):")
    add("")
    add("| function | seconds | share |")
    add("|---|---|---|")
    for row in pr["top_self"]:
        add(f"| `{row['function']}` | {row['seconds']:.2f} | {row['share']:.0%} |")
    add("")


if __name__ == "__main__":  # `python -m bench.report [bench/results.json]`: re-render RESULTS.md beside it
    import json
    import sys
    from pathlib import Path

    source = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results.json")
    (source.parent / "RESULTS.md").write_text(render(json.loads(source.read_text())))
