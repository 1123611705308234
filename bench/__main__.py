"""`python -m bench [--profile small|full]`: run the benchmark, write bench/results.json and bench/RESULTS.md.

`make bench` runs the small profile (10k and 100k doctors, 3 repeats, publish/rollback up to
100 versions); `make bench-full` the full one (10k, 100k and 1M doctors, up to 1,000
versions, peers at national scale). Sections can be picked with `--sections`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.common import (
    BACKENDS,
    ROOT,
    has,
    load_average,
    log,
    machine,
    new_store,
    pg_reachable,
    summary,
    versions,
    worker,
)
from bench.sync import api_sync, cli_sync

HEE, NATIONAL = 100_000, 1_000_000
SECTIONS = ("sync", "stages", "latency", "peers", "profile")
PEERS = ("legacy", "dlt", "delta", "iceberg")
RESYNC_BATCH = 3

PROFILES: dict[str, dict] = {
    "smoke": {  # checks the harness end to end in about a minute; its figures mean nothing
        "scales": [2_000],
        "repeats": 1,
        "resync_scales": [2_000],
        "versions_doctors": 2_000,
        "milestones": [1, 2, 5],
        "publish_samples": 3,
        "rollback_samples": 4,
        "legacy_scales": [2_000],
        "legacy_sample": 50,
        "dlt_scales": {2_000: ["truncate-and-insert"]},
        "dlt_runs": 2,
        "lake_milestones": [2, 5],
        "lake_samples": 4,
        "profile_doctors": 2_000,
    },
    "small": {
        "scales": [10_000, HEE],
        "repeats": 3,
        "resync_scales": [10_000, HEE],
        "versions_doctors": 10_000,
        "milestones": [1, 2, 10, 50, 100],
        "publish_samples": 10,
        "rollback_samples": 20,
        "legacy_scales": [HEE],
        "legacy_sample": 300,
        "dlt_scales": {HEE: ["truncate-and-insert"]},
        "dlt_runs": 2,
        "lake_milestones": [2, 50],
        "lake_samples": 20,
        "profile_doctors": HEE,
    },
    "full": {
        "scales": [10_000, HEE, NATIONAL],
        "repeats": 3,
        "resync_scales": [10_000, HEE, NATIONAL],  # 10,000: a resync's fixed cost, next to no data
        "versions_doctors": 10_000,
        "milestones": [1, 2, 10, 100, 500, 1000],
        "publish_samples": 20,
        "rollback_samples": 40,
        "legacy_scales": [HEE, NATIONAL],
        "legacy_sample": 1000,
        "dlt_scales": {
            HEE: ["truncate-and-insert", "insert-from-staging", "staging-optimized"],
            NATIONAL: ["truncate-and-insert"],
        },
        "dlt_runs": 3,
        "lake_milestones": [2, 500],
        "lake_samples": 40,
        "profile_doctors": HEE,
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="small")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--scales", default=None, help="override the profile's populations, e.g. 10000,100000")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--resync-repeats", type=int, default=None, help="repeats of the resync pair (default: all)")
    parser.add_argument("--stages-repeats", type=int, default=None, help="repeats of the stage timing (default: all)")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"the peers to run, of {', '.join(PEERS)} (with --merge, the others keep their figures)")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a new temp folder, removed)")
    parser.add_argument("--out", default=str(ROOT / "bench"), help="folder for results.json and RESULTS.md")
    parser.add_argument(
        "--merge", default=None, help="an earlier results.json to add this run's figures to (e.g. a national-only pass)"
    )
    args = parser.parse_args()

    config = dict(PROFILES[args.profile])
    if args.scales:
        config["scales"] = [int(s) for s in args.scales.split(",")]
        config["resync_scales"] = [s for s in config["resync_scales"] if s in config["scales"]] or config["scales"][-1:]
        config["legacy_scales"] = [s for s in config["legacy_scales"] if s in config["scales"]]
        config["dlt_scales"] = {s: v for s, v in config["dlt_scales"].items() if s in config["scales"]}
    if args.repeats:
        config["repeats"] = args.repeats
    config.setdefault("resync_repeats", config["repeats"])
    config.setdefault("stages_repeats", config["repeats"])
    if args.resync_repeats:
        config["resync_repeats"] = args.resync_repeats
    if args.stages_repeats:
        config["stages_repeats"] = args.stages_repeats
    config["out_dir"] = str(Path(args.out).absolute())
    config["peers"] = [p for p in args.peers.split(",") if p in PEERS]
    sections = [s for s in args.sections.split(",") if s]
    backends = [b for b in args.backends.split(",") if b]
    notes: list[str] = []
    if "postgresql" in backends:
        problem = pg_reachable()
        if problem:
            notes.append(f"PostgreSQL skipped: unreachable ({problem}); set REVAL_BENCH_PG_URL")
            backends.remove("postgresql")

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="reval-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    out_dir = Path(args.out)
    results: dict = {
        "bench_profile": args.profile,
        "config": {
            k: (v if not isinstance(v, dict) else {str(kk): vv for kk, vv in v.items()}) for k, v in config.items()
        },
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "libraries": versions(),
        "backends": backends,
        "sections": sections,
        "notes": notes,
        "load_average_start": load_average(),
    }
    if args.merge:
        earlier = json.loads(Path(args.merge).read_text())
        results["merged_from"] = earlier.get("merged_from", []) + [
            {
                k: earlier.get(k)
                for k in (
                    "bench_profile",
                    "config",
                    "started_at",
                    "finished_at",
                    "bench_seconds",
                    "load_average_start",
                    "load_average_end",
                )
            }
        ]
        results["notes"] = notes = earlier.get("notes", []) + notes
        for section in SECTIONS:
            if section in earlier:
                results[section] = earlier[section]
    started = time.perf_counter()
    try:
        for section in SECTIONS:
            if section not in sections:
                continue
            log(f"section {section}")
            try:
                fresh = RUNNERS[section](config, backends, workdir, notes)
                results[section] = _merged(results.get(section), fresh, MERGE_DEPTH[section])
            except Exception as error:  # noqa: BLE001 - one failed section must not lose the others
                notes.append(f"section {section} failed: {type(error).__name__}: {str(error)[:500]}")
                log(traceback.format_exc())
            _write(results, out_dir, started)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    _write(results, out_dir, started)
    log(f"done in {time.perf_counter() - started:.0f}s: {out_dir / 'results.json'}, {out_dir / 'RESULTS.md'}")


# How deep a later pass merges into an earlier one's figures, per section: below that, it replaces.
MERGE_DEPTH: dict[str, object] = {"sync": 2, "stages": 2, "latency": 1, "peers": {"legacy": 2, "dlt": 2}, "profile": 0}


def _merged(old: object, new: object, depth: object = 2) -> object:
    """`new` over `old` down to `depth` levels (e.g. backend, then scale): a later pass adds, drops nothing."""
    if not (isinstance(old, dict) and isinstance(new, dict)) or not depth:
        return new
    out = dict(old)
    for k, v in new.items():
        below = depth.get(k, 0) if isinstance(depth, dict) else depth - 1
        out[k] = _merged(old[k], v, below) if k in old else v
    return out


def _write(results: dict, out_dir: Path, started: float) -> None:
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["bench_seconds"] = time.perf_counter() - started
    results["load_average_end"] = load_average()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out_dir / "RESULTS.md").write_text(report.render(results))


# -- sections ---------------------------------------------------------------------------------


def run_sync_section(config: dict, backends: list[str], workdir: Path, notes: list[str]) -> dict:
    """Per backend and scale: cold full sync (fresh store, `reval sync`); at resync scales, on the same
    store, a one-batch resync of changed data (seed 1, batch 3), then a full resync of changed data
    (seed 2), both through `run_sync` with a drift reason (a new synthetic population drifts ~7 %)."""
    out: dict = {}
    for backend in backends:
        for doctors in config["scales"]:
            runs: dict[str, list[dict]] = {"full": [], "one_batch": [], "full_changed": []}
            for repeat in range(config["repeats"]):
                with new_store(backend, workdir, "sync") as store:
                    log(f"sync {backend} {doctors:,} doctors, repeat {repeat + 1}: full")
                    runs["full"].append(cli_sync(store, doctors))
                    if doctors in config["resync_scales"] and repeat < config["resync_repeats"]:
                        log(f"sync {backend} {doctors:,}: one batch changed, then everything changed")
                        runs["one_batch"].append(api_sync(store, doctors, seed=1, batches=[RESYNC_BATCH]))
                        runs["full_changed"].append(api_sync(store, doctors, seed=2))
            out.setdefault(backend, {})[str(doctors)] = {k: _sync_summary(v) for k, v in runs.items() if v}
    return out


def _sync_summary(runs: list[dict]) -> dict:
    steps = sorted({k for r in runs for k in r["dagster_steps"]})
    return {
        "runs": runs,
        "rows_total": runs[0]["rows_total"],
        "command_seconds": summary([r["command_seconds"] for r in runs]),
        "process_seconds": summary([r["process_seconds"] for r in runs]),
        "cpu_seconds": summary([r["cpu_seconds"] for r in runs]),
        "max_rss_bytes": summary([r["max_rss_bytes"] for r in runs]),
        "rows_per_second": summary([r["rows_total"] / r["command_seconds"] for r in runs]),
        "dagster_steps": {s: summary([r["dagster_steps"].get(s, 0.0) for r in runs]) for s in steps},
    }


def run_stages_section(config: dict, backends: list[str], workdir: Path, notes: list[str]) -> dict:
    out: dict = {}
    for backend in backends:
        for doctors in config["scales"]:
            runs = []
            for repeat in range(config["stages_repeats"]):
                with new_store(backend, workdir, "stages") as store:
                    log(f"stages {backend} {doctors:,} doctors, repeat {repeat + 1}")
                    runs.append(worker("stages", {"url": store.url, "home": str(store.home), "doctors": doctors}))
            stages = list(runs[0]["seconds"])
            out.setdefault(backend, {})[str(doctors)] = {
                "runs": runs,
                "rows_total": runs[0]["rows_total"],
                "seconds": {s: summary([r["seconds"][s] for r in runs]) for s in stages},
                "transforms_detail": {
                    s: summary([r["transforms_detail"][s] for r in runs]) for s in runs[0]["transforms_detail"]
                },
                "total_seconds": summary([r["total_seconds"] for r in runs]),
                "staging_rows_per_second": summary([r["rows_loaded"] / r["seconds"]["staging_load"] for r in runs]),
                "staging_and_index_rows_per_second": summary(
                    [r["rows_loaded"] / (r["seconds"]["staging_load"] + r["seconds"]["index_build"]) for r in runs]
                ),
                "rollback_verify_seconds": summary([r["rollback_verify_seconds"] for r in runs]),
                "loader_ceiling": {k: summary([r["loader_ceiling"][k] for r in runs])
                                   for k in runs[0]["loader_ceiling"] if k.endswith("_rows_per_second")},
                "snapshot_bytes": runs[0]["snapshot_bytes"],
                "max_rss_bytes": summary([r["max_rss_bytes"] for r in runs]),
            }
    return out


def run_versions_section(config: dict, backends: list[str], workdir: Path, notes: list[str]) -> dict:
    out: dict = {}
    for backend in backends:
        with new_store(backend, workdir, "versions") as store:
            log(f"versions {backend}: milestones {config['milestones']}")
            out[backend] = worker(
                "versions",
                {
                    "url": store.url,
                    "home": str(store.home),
                    "doctors": config["versions_doctors"],
                    "milestones": config["milestones"],
                    "publish_samples": config["publish_samples"],
                    "rollback_samples": config["rollback_samples"],
                },
            )
    return out


def run_peers_section(config: dict, backends: list[str], workdir: Path, notes: list[str]) -> dict:
    out: dict = {name: ({} if name in ("legacy", "dlt") else None) for name in config["peers"]}
    for backend in backends if "legacy" in out else []:
        for doctors in config["legacy_scales"]:
            with new_store(backend, workdir, "legacy") as store:
                log(f"peer one-doctor-at-a-time {backend} {doctors:,} doctors (sample {config['legacy_sample']})")
                out["legacy"].setdefault(backend, {})[str(doctors)] = worker(
                    "peer_legacy",
                    {
                        "url": store.url,
                        "doctors": doctors,
                        "sample": config["legacy_sample"],
                        "workdir": str(store.home),
                    },
                )
    if "dlt" in out and has("dlt"):
        for backend in backends:
            for doctors, strategies in config["dlt_scales"].items():
                if backend == "sqlite":
                    strategies = [s for s in strategies if s != "staging-optimized"]  # not offered for SQLite
                with new_store(backend, workdir, "dlt") as store:
                    log(f"peer dlt {backend} {doctors:,} doctors: {', '.join(strategies)}")
                    try:
                        out["dlt"].setdefault(backend, {})[str(doctors)] = worker(
                            "peer_dlt",
                            {
                                "url": store.url,
                                "doctors": doctors,
                                "strategies": strategies,
                                "runs": config["dlt_runs"],
                                "workdir": str(store.home),
                            },
                        )
                    except RuntimeError as error:
                        notes.append(f"dlt on {backend} at {doctors:,} failed: {str(error)[-400:]}")
    elif "dlt" in out:
        notes.append("dlt skipped: the package is not installed (pip install -e '.[bench]')")
    lake = {
        "doctors": config["versions_doctors"],
        "milestones": config["lake_milestones"],
        "samples": config["lake_samples"],
    }
    for name, module in (("delta", "deltalake"), ("iceberg", "pyiceberg")):
        if name not in out:
            continue
        if not has(module):
            notes.append(f"{name} skipped: {module} is not installed (pip install -e '.[bench]')")
            continue
        scratch = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
        log(f"peer {name}: versions {config['lake_milestones']}")
        try:
            out[name] = worker(f"peer_{name}", {**lake, "workdir": str(scratch)})
        except RuntimeError as error:
            notes.append(f"{name} failed: {str(error)[-400:]}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return out


def run_profile_section(config: dict, backends: list[str], workdir: Path, notes: list[str]) -> dict:
    doctors = config["profile_doctors"]
    with new_store("sqlite", workdir, "profile") as store:
        log(f"profile: reval sync (run_sync) on SQLite, {doctors:,} doctors")
        tree = Path(config["out_dir"]) / "profile_hee.txt"
        return worker("profile", {"env": store.env(doctors), "tree_path": str(tree)}, store.env(doctors))


RUNNERS = {
    "sync": run_sync_section,
    "stages": run_stages_section,
    "latency": run_versions_section,
    "peers": run_peers_section,
    "profile": run_profile_section,
}


if __name__ == "__main__":
    main()
