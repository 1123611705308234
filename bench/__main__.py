"""`python -m bench [--profile smoke|small|full]`: run the benchmark, write results.json and RESULTS.md.

The profiles are bench/profiles.toml (`make bench` is small, `make bench-full` full); see bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import tomllib
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.common import BACKENDS, PG_ADMIN_URL, ROOT, load_average, log, machine, new_store, summary, versions
from bench.common import worker as run_worker
from bench.sync import cli_sync
from reval_assets.store.bulk import unreachable

SECTIONS = ("sync", "stages", "latency", "peers")
RESYNC_BATCH = 3
PROFILES: dict[str, dict] = tomllib.loads((Path(__file__).parent / "profiles.toml").read_text())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="small")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--scales", default=None, help="override the profile's populations, e.g. 10000,100000")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", default=str(ROOT / "bench"), help="folder for results.json and RESULTS.md")
    return parser.parse_args()


def configure(args: argparse.Namespace) -> dict:
    """The profile, with the command line's overrides."""
    config = dict(PROFILES[args.profile])
    if args.scales:
        scales = config["scales"] = [int(s) for s in args.scales.split(",")]
        config["resync_scales"] = [s for s in config["resync_scales"] if s in scales] or scales[-1:]
        for key in ("legacy_scales", "dlt_scales"):
            config[key] = [s for s in config[key] if s in scales]
    config["repeats"] = args.repeats or config["repeats"]
    config["out_dir"] = str(Path(args.out).absolute())
    return config


def main() -> None:
    args = parse_args()
    config, sections = configure(args), [s for s in args.sections.split(",") if s]
    backends, notes = [b for b in args.backends.split(",") if b], []
    if "postgresql" in backends and (problem := unreachable(PG_ADMIN_URL)):
        notes.append(f"PostgreSQL skipped: unreachable ({problem}); set REVAL_BENCH_PG_URL")
        backends.remove("postgresql")
    results: dict = {
        "bench_profile": args.profile, "config": config, "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(), "libraries": versions(), "backends": backends, "sections": sections, "notes": notes,
        "load_average_start": load_average()}
    workdir, out_dir, started = Path(tempfile.mkdtemp(prefix="reval-bench-")), Path(args.out), time.perf_counter()
    try:
        for section in (s for s in SECTIONS if s in sections):
            log(f"section {section}")
            try:
                results[section] = RUNNERS[section](config, backends, workdir, notes)
            except Exception as error:  # noqa: BLE001 - one failed section must not lose the others
                notes.append(f"section {section} failed: {type(error).__name__}: {str(error)[:500]}")
                log(traceback.format_exc())
            _write(results, out_dir, started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log(f"done in {time.perf_counter() - started:.0f}s: {out_dir / 'results.json'}, {out_dir / 'RESULTS.md'}")


def _write(results: dict, out_dir: Path, started: float) -> None:
    results.update(finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
                   bench_seconds=time.perf_counter() - started, load_average_end=load_average())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out_dir / "RESULTS.md").write_text(report.render(results))


# -- sections: each returns its part of results.json ---------------------------------------------

Section = Callable[[dict, list[str], Path, list[str]], dict]


def _summaries(runs: list[dict], keys: list[str]) -> dict:
    return {k: summary([r[k] for r in runs]) for k in keys}


def _grid(backends: list[str], scales: list[int], measure: Callable[[str, int], dict | None]) -> dict:
    """{backend: {doctors: measure(backend, doctors)}}, leaving out what gave nothing."""
    out = {b: {str(d): v for d in scales if (v := measure(b, d)) is not None} for b in backends}
    return {b: v for b, v in out.items() if v}


def _on_new_store(backend: str, workdir: Path, task: str, **params: object) -> dict:
    """A worker task against a fresh store of its own."""
    with new_store(backend, workdir, task.split(":")[1]) as store:
        log(f"{task} {backend}: {', '.join(f'{k} {v}' for k, v in params.items())}")
        return run_worker(task, {"url": store.url, "home": str(store.home), **params})


def run_sync_section(config: dict, backends: list[str], workdir: Path, notes: list[str]) -> dict:
    """Per backend and scale: cold full sync (fresh store, `reval sync`); at resync scales, on the same
    store, a one-batch resync of changed data (seed 1, batch 3), then a full resync of changed data (seed 2)."""
    def measure(backend: str, doctors: int) -> dict:
        runs: dict[str, list[dict]] = {"full": [], "one_batch": [], "full_changed": []}
        for repeat in range(config["repeats"]):
            with new_store(backend, workdir, "sync") as store:
                log(f"sync {backend} {doctors:,} doctors, repeat {repeat + 1}: full")
                runs["full"].append(cli_sync(store, doctors))
                if doctors in config["resync_scales"]:
                    log(f"sync {backend} {doctors:,}: one batch changed, then everything changed")
                    runs["one_batch"].append(cli_sync(store, doctors, seed=1, batches=[RESYNC_BATCH]))
                    runs["full_changed"].append(cli_sync(store, doctors, seed=2))
        return {k: _sync_summary(v) for k, v in runs.items() if v}

    return _grid(backends, config["scales"], measure)


def _sync_summary(runs: list[dict]) -> dict:
    steps = sorted({k for r in runs for k in r["dagster_steps"]})
    return {"runs": runs, "rows_total": runs[0]["rows_total"],
            **_summaries(runs, ["command_seconds", "process_seconds", "cpu_seconds", "max_rss_bytes"]),
            "rows_per_second": summary([r["rows_total"] / r["command_seconds"] for r in runs]),
            "dagster_steps": {s: summary([r["dagster_steps"].get(s, 0.0) for r in runs]) for s in steps}}


def run_stages_section(config: dict, backends: list[str], workdir: Path, notes: list[str]) -> dict:
    return _grid(backends, config["scales"], lambda backend, doctors: _stages_summary([
        _on_new_store(backend, workdir, "stages:run_stages", doctors=doctors) for _ in range(config["repeats"])]))


def _stages_summary(runs: list[dict]) -> dict:
    def each(key: str) -> dict:
        return {k: summary([r[key][k] for r in runs]) for k in runs[0][key]}

    def rate(stages: tuple[str, ...]) -> dict:
        return summary([r["rows_loaded"] / sum(r["seconds"][s] for s in stages) for r in runs])

    return {"runs": runs, "rows_total": runs[0]["rows_total"], "seconds": each("seconds"),
            "transforms_detail": each("transforms_detail"), "staging_rows_per_second": rate(("staging_load",)),
            "staging_and_index_rows_per_second": rate(("staging_load", "index_build")),
            **_summaries(runs, ["total_seconds", "rollback_verify_seconds", "max_rss_bytes"]),
            "snapshot_bytes": runs[0]["snapshot_bytes"]}


def run_versions_section(config: dict, backends: list[str], workdir: Path, notes: list[str]) -> dict:
    params = {k: config[k] for k in ("milestones", "publish_samples", "rollback_samples")}
    params["doctors"] = config["versions_doctors"]
    return {b: _on_new_store(b, workdir, "versions:run_versions", **params) for b in backends}


def run_peers_section(config: dict, backends: list[str], workdir: Path, notes: list[str]) -> dict:
    legacy = _grid(backends, config["legacy_scales"], lambda b, d: _on_new_store(
        b, workdir, "peers:peer_legacy", doctors=d, sample=config["legacy_sample"]))
    return {"legacy": legacy, "dlt": _dlt_peer(config, backends, workdir, notes),
            **{lake: _optional_peer(lake, notes, lambda lake=lake: _lake_peer(config, lake, workdir))
               for lake in ("delta", "iceberg")}}


def _dlt_peer(config: dict, backends: list[str], workdir: Path, notes: list[str]) -> dict:
    return _grid(backends, config["dlt_scales"], lambda backend, doctors: _optional_peer(
        f"dlt on {backend} at {doctors:,}", notes,
        lambda: _on_new_store(backend, workdir, "peers:peer_dlt", doctors=doctors, runs=config["dlt_runs"])))


def _lake_peer(config: dict, lake: str, workdir: Path) -> dict:
    with new_store("sqlite", workdir, lake) as scratch:  # a folder of its own, removed afterwards
        log(f"peer {lake}: versions {config['lake_milestones']}")
        return run_worker("peers:peer_lake", {"lake": lake, "doctors": config["versions_doctors"],
                                              "workdir": str(scratch.home), "milestones": config["lake_milestones"],
                                              "samples": config["lake_samples"]})


def _optional_peer(what: str, notes: list[str], measure: Callable[[], dict]) -> dict | None:
    """A peer's figures, or None with a note of why it failed (a missing package included: `pip install -e
    '.[bench]'`): a peer must not fail the section."""
    try:
        return measure()
    except RuntimeError as error:
        notes.append(f"{what} failed: {str(error).strip().splitlines()[-1][:500]}")  # the child's error
        return None


RUNNERS: dict[str, Section] = {"sync": run_sync_section, "stages": run_stages_section,
                               "latency": run_versions_section, "peers": run_peers_section}


if __name__ == "__main__":
    main()
