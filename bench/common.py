"""Shared by the benchmark modules: stores to run against, statistics, machine facts, child processes."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get("REVAL_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")
GIB = 1024**3
MIB = 1024**2

PACKAGES = (
    "reval_assets",
    "dagster",
    "pyarrow",
    "numpy",
    "SQLAlchemy",
    "psycopg",
    "adbc-driver-manager",
    "adbc-driver-sqlite",
    "adbc-driver-postgresql",
    "dlt",
    "deltalake",
    "pyiceberg",
    "psutil",
    "pyinstrument",
)


# The core stages the benchmark times separately, in pipeline order.
STAGES = (
    "source",
    "transforms",
    "snapshot_write",
    "snapshot_read",
    "staging_load",
    "index_build",
    "views",
    "checks",
    "publish",
)

def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- statistics -------------------------------------------------------------------------------


def summary(values: list[float], *, percentiles: bool = False) -> dict:
    """Median, min and max (and p50/p95 when asked) of repeated measurements."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    out = {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1], "n": len(ordered)}
    if percentiles:
        out["p50"] = out["median"]
        out["p95"] = percentile(ordered, 95)
    return out


def percentile(ordered: list[float], p: float) -> float:
    """Linear-interpolated percentile of sorted values."""
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@contextmanager
def timer(into: dict, key: str) -> Iterator[None]:
    """Adds the block's wall seconds to `into[key]`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + time.perf_counter() - started


# -- stores to run against ---------------------------------------------------------------------


@dataclass
class Store:
    """One live store for one benchmark run: a SQLite file or a PostgreSQL database of its own."""

    backend: str
    url: str
    home: Path
    pg_database: str | None = None

    def env(self, doctors: int, seed: int = 0) -> dict[str, str]:
        """The child environment of a `reval` command against this store (no other REVAL_* leaks in)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REVAL_", "DAGSTER_"))}
        env.update(
            {
                "REVAL_ENV": "dev",
                "REVAL_HOME": str(self.home),
                "REVAL_LIVE_URL": self.url,
                "REVAL_DOCTORS": str(doctors),
                "REVAL_SEED": str(seed),
                "REVAL_BATCHES": "16",
                "DAGSTER_HOME": str(self.home / "dagster"),
                "PYTHONPATH": str(ROOT),
            }
        )
        return env


def pg_reachable() -> str | None:
    from reval_assets.store.bulk import unreachable

    return unreachable(PG_ADMIN_URL)


@contextmanager
def new_store(backend: str, workdir: Path, label: str = "run") -> Iterator[Store]:
    """A fresh REVAL_HOME (and for PostgreSQL a fresh database), removed afterwards."""
    home = workdir / f"{label}-{backend}-{uuid.uuid4().hex[:8]}"
    home.mkdir(parents=True)
    database = None
    try:
        if backend == "sqlite":
            url = f"sqlite:///{home / 'live.db'}"
        else:
            database = f"reval_bench_{uuid.uuid4().hex[:10]}"
            pg_admin(f"CREATE DATABASE {database}")
            url = pg_url(database)
        yield Store(backend=backend, url=url, home=home, pg_database=database)
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


def pg_admin(sql: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
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
    cpu_seconds: float = 0.0


def run_measured(args: list[str], env: dict[str, str], *, timeout: float | None = None) -> ChildResult:
    """Like `run_child`, but reaps with wait4 to read the child's own peak RSS (Linux ru_maxrss is KiB)."""
    started = time.perf_counter()
    out_path = Path(env.get("TMPDIR", "/tmp")) / f"bench-out-{uuid.uuid4().hex}"
    err_path = out_path.with_suffix(".err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=err)
        deadline = None if timeout is None else started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if deadline and time.perf_counter() > deadline:
                process.kill()
            time.sleep(0.01)
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    stdout, stderr = out_path.read_text(), err_path.read_text()
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    return ChildResult(
        process.returncode, stdout, stderr, seconds, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime
    )


def worker(task: str, params: dict, env: dict[str, str] | None = None, *, timeout: float | None = None) -> dict:
    """Run `bench.worker TASK PARAMS` in a fresh process; return its JSON (plus its peak memory)."""
    env = dict(env or {k: v for k, v in os.environ.items() if not k.startswith(("REVAL_", "DAGSTER_"))})
    env.setdefault("PYTHONPATH", str(ROOT))
    env.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    result = run_measured([PYTHON, "-m", "bench.worker", task, json.dumps(params)], env, timeout=timeout)
    if result.code != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"worker {task} failed (exit {result.code}):\n{tail}")
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    payload["process_seconds"] = result.seconds
    payload["process_max_rss_bytes"] = result.max_rss_bytes
    payload["process_cpu_seconds"] = result.cpu_seconds
    return payload


# -- machine and versions ----------------------------------------------------------------------


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine shows up here."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict:
    info = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
    }
    try:
        import psutil

        info["memory_bytes"] = psutil.virtual_memory().total
    except ImportError:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["memory_bytes"] = pages
    info["memory_gib"] = round(info["memory_bytes"] / GIB, 1)
    info["postgresql"] = _pg_version()
    info["sqlite"] = _sqlite_version()
    info["arrow_memory_pool"] = _arrow_memory_pool()
    return info


def _arrow_memory_pool() -> str:
    """The allocator Arrow uses here; the `reval` children inherit the same environment, hence the same one."""
    import pyarrow as pa

    return pa.default_memory_pool().backend_name


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _pg_version() -> str | None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
        return version
    except Exception:  # noqa: BLE001 - unreachable: reported as None
        return None


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
