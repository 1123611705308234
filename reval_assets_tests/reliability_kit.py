"""Helpers for test_reliability: a sandboxed REVAL_HOME, real `reval` processes, faults, and invariants.

A `Sandbox` is one REVAL_HOME (on /dev/shm when there is one, so Dagster's per-event fsyncs do not
dominate the run time; a SIGKILL loses nothing a page cache holds, so this weakens no check) with a
live store (SQLite file or a PostgreSQL database of its own) and two export folders of the same
doctors: `a` and `b`, which differs from `a` in every doctor's first name, so a sync from one to the
other rewrites files in every batch, changes every view, and passes every check (same keys: no drift).

Faults are injected through `reval_assets.store.faults` (`REVAL_TEST_FAULT`), or by signalling the
process from outside (SIGKILL after a delay, SIGINT/SIGTERM at a pause point).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from reval_assets.pipeline import operations
from reval_assets.pipeline.runtime import Runtime
from reval_assets.settings import Settings
from reval_assets.sources.export import write_export
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.live import LIVE_VIEWS

CLI = [sys.executable, "-m", "reval_assets.cli"]
# After `reval` exits, how long a helper it started may still hold its output. Dagster mirrors a step's
# output with `tail -F` and a watcher that stops it within ~1 s of the parent dying; a kill that lands
# between starting the two leaves that `tail -F` for ever (a Dagster race), holding our pipes.
HELPER_GRACE_SECONDS = 5
DOCTORS = 600
BATCHES = 4


def scratch_root(fallback: Path) -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        root = shm / f"reval-reliability-{uuid.uuid4().hex[:10]}"
        root.mkdir()
        return root
    return fallback


def make_sources(root: Path, doctors: int = DOCTORS, seed: int = 7) -> tuple[Path, Path]:
    """Export `a` (a synthetic population) and `b` (the same doctors, every first name changed)."""
    a = write_export(SyntheticSource(doctors=doctors, seed=seed).extract(), root / "a")
    b = root / "b"
    b.mkdir()
    for path in a.iterdir():
        data = json.loads(path.read_bytes())
        if path.name in ("doctors_for_db.json", "trainee_info.json"):
            for record in data:
                if record.get("doctorFirstName"):
                    record["doctorFirstName"] += "-b"
        (b / path.name).write_text(json.dumps(data))
    return a, b


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str
    seconds: float
    pid: int
    wall_started: float  # time.time() when the process was started
    fired: list[str] = field(default_factory=list)  # fault points that fired, from REVAL_TEST_FAULT_LOG

    @property
    def data(self) -> dict:
        return json.loads(self.stdout) if self.stdout.strip() else {}

    @property
    def message(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def __str__(self) -> str:
        return (f"exit {self.code} after {self.seconds:.1f}s\nstdout: {self.stdout[-2000:]}\n"
                f"stderr: {self.stderr[-3000:]}")


@dataclass
class Sandbox:
    root: Path
    live_url: str
    source_dirs: dict[str, Path]
    hashes: dict[str, str] = field(default_factory=dict)  # version -> content hash of its four views

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def snapshots(self) -> Path:
        return self.home / "snapshots"

    def env(self, source: str = "a", fault: str | None = None, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REVAL_") and k != "DAGSTER_HOME"}
        env.update(REVAL_HOME=str(self.home), REVAL_LIVE_URL=self.live_url, REVAL_SOURCE="files",
                   REVAL_SOURCE_DIR=str(self.source_dirs[source]), REVAL_BATCHES=str(BATCHES),
                   REVAL_TEST_FAULT_LOG=str(self.root / "faults.log"))
        if fault:
            env["REVAL_TEST_FAULT"] = fault
        env.update(extra)
        return env

    # -- processes ------------------------------------------------------------------------
    def start(self, *args: str, source: str = "a", fault: str | None = None, prefix: tuple[str, ...] = (),
              **extra: str) -> subprocess.Popen:
        (self.root / "faults.log").unlink(missing_ok=True)
        wall_started = time.time()
        proc = subprocess.Popen([*prefix, *CLI, *args], env=self.env(source, fault, **extra), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)  # its group: see finish
        proc.wall_started = wall_started  # type: ignore[attr-defined]
        return proc

    def finish(self, proc: subprocess.Popen, started: float, timeout: float = 240) -> Ran:
        deadline, exited_at = time.monotonic() + timeout, None
        while True:
            try:
                out, err = proc.communicate(timeout=1)  # retried: no output is lost
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if proc.poll() is None and now > deadline:
                    _kill_group(proc)
                    _, err = proc.communicate()
                    raise AssertionError(f"`reval` did not finish within {timeout}s:\n{err[-3000:]}") from None
                if proc.poll() is not None:  # gone, but a helper it started still holds its output
                    exited_at = exited_at or now
                    if now - exited_at > HELPER_GRACE_SECONDS:
                        _kill_group(proc)
        log = self.root / "faults.log"
        fired = [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []
        return Ran(proc.returncode, out, err, time.monotonic() - started, proc.pid, proc.wall_started, fired)

    def reval(self, *args: str, source: str = "a", fault: str | None = None, timeout: float = 240,
              prefix: tuple[str, ...] = (), **extra: str) -> Ran:
        started = time.monotonic()
        return self.finish(self.start(*args, source=source, fault=fault, prefix=prefix, **extra), started, timeout)

    def sync(self, source: str, *args: str, expect: int = 0) -> Ran:
        ran = self.reval("sync", "--json", *args, source=source)
        assert ran.code == expect, str(ran)
        if ran.code == 0 and ran.data.get("published"):
            self.remember(ran.data["version"])
        return ran

    def paused(self, *args: str, source: str, point: str) -> tuple[subprocess.Popen, Path, float]:
        """Start `reval ARGS` that pauses at `point`; returns once it is there (process, marker, start)."""
        marker = self.root / f"pause-{uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        proc = self.start(*args, source=source, fault=f"{point}:pause={marker}")
        deadline = time.monotonic() + 180
        while not marker.exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"`reval {' '.join(args)}` ended (exit {proc.returncode}) before reaching "
                                     f"{point}:\n{err[-3000:]}")
            assert time.monotonic() < deadline, f"never reached {point}"
            time.sleep(0.02)
        return proc, marker, started

    # -- the stores -----------------------------------------------------------------------
    @contextmanager
    def runtime(self) -> Iterator[Runtime]:
        rt = Runtime(Settings.from_env(self.env()))
        try:
            yield rt
        finally:
            rt.close()

    def pointer(self) -> str | None:
        with self.runtime() as rt:
            return rt.live.live_version()

    def views_hash(self, version: str | None = None) -> str:
        """sha256 over every row of the four live views (or of what they show when `version` is live), in key order."""
        queries = {view: f"SELECT * FROM {view}" for view in LIVE_VIEWS}
        if version:
            with self.runtime() as rt:
                queries = {view: rt.live.version_query(version, view) for view in LIVE_VIEWS}
        engine = sa.create_engine(self.live_url, poolclass=sa.pool.NullPool)
        digest = hashlib.sha256()
        try:
            with engine.connect() as conn:
                for view, query in queries.items():
                    rows = sorted(tuple("" if v is None else str(v) for v in row)
                                  for row in conn.exec_driver_sql(query))
                    digest.update(f"{view}:{len(rows)}\n".encode())
                    for row in rows:
                        digest.update(("\x1f".join(row) + "\n").encode())
        finally:
            engine.dispose()
        return digest.hexdigest()

    def remember(self, version: str) -> str:
        """Record the content hash of a version (from its own views: what live must equal when it is live)."""
        self.hashes[version] = self.views_hash(version)
        return self.hashes[version]

    def check_whole(self, expected_live: str | None) -> dict:
        """Every invariant a fault must not break; returns figures for the report, raises on a breach."""
        try:
            return self._check_whole(expected_live)
        except sa.exc.OperationalError as error:  # say what the live store's files looked like
            listing = {p.name: p.stat().st_size for p in self.home.glob("live.db*")}
            raise AssertionError(f"{error}\nlive store files: {listing}") from error

    def _check_whole(self, expected_live: str | None) -> dict:
        pointer = self.pointer()
        assert pointer == expected_live, f"live is {pointer}, expected {expected_live}"
        if expected_live:
            assert self.views_hash() == self.hashes[expected_live], f"live views are not exactly {expected_live}"
        problems = store_problems(self.snapshots)
        assert not problems, problems
        with self.runtime() as rt:
            rows = rt.live.versions()
            statuses = [r["status"] for r in rows]
            assert statuses.count("live") == (1 if expected_live else 0), statuses
            for row in rows:
                report = operations.verify(rt, row["version"])
                assert report["problems"] == [], report
        temp = len(list(self.snapshots.rglob(".tmp-*"))) if self.snapshots.exists() else 0
        return {"versions": len(rows), "temp_files": temp}


def store_problems(snapshots: Path) -> list[str]:
    """Partial or damaged files under a final name, and manifests pointing at missing or damaged files."""
    problems = []
    if not snapshots.exists():
        return problems
    for path in snapshots.rglob("*.parquet"):
        if not path.name.startswith(".tmp-") and hashlib.sha256(path.read_bytes()).hexdigest() != path.stem:
            problems.append(f"{path}: bytes do not hash to the file's name (partial or damaged)")
    for manifest in (snapshots / "versions").glob("v*.json"):
        body = json.loads(manifest.read_bytes())  # a half-written manifest would not parse
        for refs in body["files"].values():
            for ref in refs:
                target = snapshots / ref["path"]
                if not target.exists():
                    problems.append(f"{manifest.name} points to missing {ref['path']}")
                elif hashlib.sha256(target.read_bytes()).hexdigest() != ref["sha256"]:
                    problems.append(f"{manifest.name} points to damaged {ref['path']}")
    return problems


def wait_for_exit(proc: subprocess.Popen, timeout: float) -> float:
    started = time.monotonic()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"process {proc.pid} did not stop within {timeout}s") from None
    return time.monotonic() - started


def terminate_transaction_backends(url: str) -> int:
    """pg_terminate_backend every other backend of this test's database that is inside a transaction."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return len(conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state = 'idle in transaction'").all())
    finally:
        engine.dispose()


def remove_tree(path: Path) -> None:
    if path.is_relative_to("/dev/shm"):
        shutil.rmtree(path, ignore_errors=True)


# -- sandboxes: fresh, or cloned from a per-backend template that already has `a` published ---------

def new_sandbox(parent: Path, url: str | None, backend: str) -> Sandbox:
    root = scratch_root(parent)
    a, b = make_sources(root / "exports")
    box = Sandbox(root=root, live_url=url or f"sqlite:///{root / 'home' / 'live.db'}", source_dirs={"a": a, "b": b})
    box.backend = backend  # type: ignore[attr-defined]
    return box


def clone(template: Sandbox, parent: Path, url: str | None) -> Sandbox:
    """A copy of a template sandbox (files, SQLite store, Dagster instance); `url` is a copy of its database."""
    root = scratch_root(parent)
    shutil.copytree(template.root / "exports", root / "exports")
    if template.home.exists():
        shutil.copytree(template.home, root / "home", symlinks=True)
    box = Sandbox(root=root, live_url=url or f"sqlite:///{root / 'home' / 'live.db'}",
                  source_dirs={"a": root / "exports" / "a", "b": root / "exports" / "b"},
                  hashes=dict(template.hashes))
    box.backend = template.backend  # type: ignore[attr-defined]
    box.base = getattr(template, "base", None)  # type: ignore[attr-defined]
    box.base_seconds = getattr(template, "base_seconds", None)  # type: ignore[attr-defined]
    return box


def create_database(server_url: str, template: str | None = None) -> str:
    """A new database on the test server (a copy of `template` if given); returns its URL."""
    name = f"reval_r_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    finally:
        admin.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    parsed = sa.engine.make_url(url)
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {parsed.database} WITH (FORCE)")
    finally:
        admin.dispose()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # every process of the group has exited already
        pass
