"""Shared by the benchmark modules: stores to run against, statistics, machine facts, child processes.

`python -m bench.common MODULE:FUNCTION 'JSON PARAMS'` runs one benchmark task (a function of a bench module,
called with the params) in a fresh process; it prints one JSON line.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("REVAL_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")
GIB, MIB = 1024**3, 1024**2
PACKAGES = ("reval_assets", "dagster", "pyarrow", "numpy", "SQLAlchemy", "psycopg", "adbc-driver-manager",
            "adbc-driver-sqlite", "adbc-driver-postgresql", "dlt", "deltalake", "pyiceberg")
# The core stages the benchmark times separately, in pipeline order.
STAGES = ("source", "transforms", "snapshot_write", "snapshot_read", "staging_load", "index_build", "views",
          "checks", "publish")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def summary(values: list[float], *, percentiles: bool = False) -> dict:
    """Median, min and max (and p50/p95 when asked) of repeated measurements."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    out = {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1], "n": len(ordered)}
    if percentiles:  # p95 linearly interpolated between the values
        p95 = statistics.quantiles(ordered, n=20, method="inclusive")[18] if len(ordered) > 1 else ordered[0]
        out.update(p50=out["median"], p95=p95)
    return out


def seconds_of(operation: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    operation(*args)
    return time.perf_counter() - started


def clean_env() -> dict[str, str]:
    """This process's environment without any REVAL_*/DAGSTER_* setting leaking into a child."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("REVAL_", "DAGSTER_"))}


# -- stores to run against ---------------------------------------------------------------------


@dataclass
class Store:
    """One live store for one benchmark run: a SQLite file or a PostgreSQL database of its own."""

    backend: str
    url: str
    home: Path

    def env(self, doctors: int, seed: int = 0) -> dict[str, str]:
        """The child environment of a `reval` command against this store."""
        return {**clean_env(), "REVAL_ENV": "dev", "REVAL_HOME": str(self.home), "REVAL_LIVE_URL": self.url,
                "REVAL_DOCTORS": str(doctors), "REVAL_SEED": str(seed), "REVAL_BATCHES": "16",
                "DAGSTER_HOME": str(self.home / "dagster"), "PYTHONPATH": str(ROOT)}


@contextmanager
def new_store(backend: str, workdir: Path, label: str = "run") -> Iterator[Store]:
    """A fresh REVAL_HOME (and for PostgreSQL a fresh database), removed afterwards."""
    home = workdir / f"{label}-{backend}-{uuid.uuid4().hex[:8]}"
    home.mkdir(parents=True)
    database = None if backend == "sqlite" else f"reval_bench_{uuid.uuid4().hex[:10]}"
    try:
        if database:
            pg_admin(f"CREATE DATABASE {database}")
        yield Store(backend, pg_url(database) if database else f"sqlite:///{home / 'live.db'}", home)
    finally:
        if database:
            pg_admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        shutil.rmtree(home, ignore_errors=True)


def pg_url(database: str, driver: str = "psycopg") -> str:
    import sqlalchemy as sa

    url = sa.engine.make_url(PG_ADMIN_URL).set(database=database)
    if driver != "psycopg":
        url = url.set(drivername=f"postgresql+{driver}" if driver else "postgresql")
    return url.render_as_string(hide_password=False)


def pg_admin(sql: str) -> object:
    """One statement on the admin database, in autocommit; its scalar result, if it has one."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            result = conn.exec_driver_sql(sql)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


# -- child processes ---------------------------------------------------------------------------


@dataclass
class ChildResult:
    code: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_bytes: int
    cpu_seconds: float

    def failure(self, what: str) -> str:
        return f"{what} failed (exit {self.code}):\n" + "\n".join(self.stderr.strip().splitlines()[-15:])


def run_measured(args: list[str], env: dict[str, str], *, timeout: float | None = None) -> ChildResult:
    """Run a child, reaped with wait4 to read its own peak RSS (Linux ru_maxrss is KiB) and CPU time. Its output
    goes to files, not pipes: nothing reads a pipe while it runs, and a full one would stall it."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=err)
        while not (reaped := os.wait4(process.pid, os.WNOHANG))[0]:
            if timeout is not None and time.perf_counter() > started + timeout:
                process.kill()
            time.sleep(0.01)
        seconds, (_, status, usage) = time.perf_counter() - started, reaped
        out.seek(0)
        err.seek(0)
        return ChildResult(os.waitstatus_to_exitcode(status), out.read(), err.read(), seconds,
                           usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime)


def worker(task: str, params: dict) -> dict:
    """Run `bench.common MODULE:FUNCTION PARAMS` in a fresh process; return its JSON (plus its peak memory)."""
    env = {**clean_env(), "PYTHONPATH": str(ROOT), "RUNTIME__DLTHUB_TELEMETRY": "false"}
    result = run_measured([sys.executable, "-m", "bench.common", task, json.dumps(params)], env)
    if result.code != 0:
        raise RuntimeError(result.failure(f"worker {task}"))
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    payload.update(process_seconds=result.seconds, process_max_rss_bytes=result.max_rss_bytes,
                   process_cpu_seconds=result.cpu_seconds)
    return payload


def _run_task() -> None:
    task, params = sys.argv[1], json.loads(sys.argv[2])
    module, function = task.split(":")
    result = getattr(importlib.import_module(f"bench.{module}"), function)(**params)
    sys.stdout.write("\n" + json.dumps(result, default=str) + "\n")


# -- machine and versions ----------------------------------------------------------------------


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine shows up here."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    import pyarrow as pa

    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "processor": _cpu_model(), "memory_bytes": memory, "memory_gib": round(memory / GIB, 1),
            "postgresql": _pg_version(), "sqlite": sqlite3.sqlite_version,
            # the `reval` children inherit this environment, hence the same allocator
            "arrow_memory_pool": pa.default_memory_pool().backend_name}


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE) if cpuinfo.exists() else []
    return models[0].strip() if models else platform.processor() or "unknown"


def _pg_version() -> object:
    try:
        return pg_admin("SHOW server_version")
    except Exception:  # noqa: BLE001 - unreachable: reported as None
        return None


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


if __name__ == "__main__":
    _run_task()
