"""Immutable, content-addressed Parquet files, batch heads and version manifests.

Layout under the snapshot root:

    files/<kind>/batch=<b>/<sha256>.parquet   one immutable file (kind: raw input or entity)
    heads/<group>/batch=<b>.json               the newest files of a batch, written together
    landing/<fingerprint>.json                 a source read once and split into batches
    versions/<version>.json                    a manifest: one file per entity x batch

A file's name is the sha256 of its bytes, so writing the same data again costs a hash
and no write, and a version that re-syncs one batch shares the other batches' files.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from reval_assets.domain.summaries import LandingSummary
from reval_assets.errors import CORRUPT, UNKNOWN_VERSION, RevalError
from reval_assets.parallel import map_in_threads
from reval_assets.spans import timed
from reval_assets.store.files import atomic_write, new_private_dir

VERSION_ID = re.compile(r"^v\d{8}_\d{6}_[0-9a-f]{6}$")


class CorruptFileError(RevalError):
    """A snapshot file is missing or its bytes no longer match the sha256 recorded for it."""

    exit_code, kind = CORRUPT, "corrupt"

    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}. Run `reval verify` to list every damaged file; "
                         "roll back to (or re-sync) a version whose files verify.")
        self.path = path


class UnknownVersionError(RevalError, KeyError):
    exit_code, kind = UNKNOWN_VERSION, "unknown_version"

    def __str__(self) -> str:
        return f"unknown version {self.args[0]!r}; `reval versions` lists the retained ones"


@dataclass(frozen=True)
class FileRef:
    path: str  # relative to the snapshot root
    sha256: str
    rows: int
    bytes: int

    @classmethod
    def from_dict(cls, data: dict) -> FileRef:
        return cls(path=data["path"], sha256=data["sha256"], rows=int(data["rows"]), bytes=int(data["bytes"]))


@dataclass(frozen=True)
class Manifest:
    """A version: for each entity exactly one file per batch, plus where it came from."""

    version: str
    parent: str | None
    created_at: str
    actor: str
    reason: str
    env: str
    source: str
    batches: int
    files: dict[str, list[FileRef]]
    quarantined: dict[str, int] = field(default_factory=dict)
    run_id: str | None = None
    # What the quality checks need from the source, kept with the version (landings are gc'ed):
    # per landing its batches, export time, and per input the counts, input-level problems,
    # quarantine reasons and records that match no doctor (`domain.summaries`, `pipeline.steps.compose_manifest`).
    landings: dict[str, LandingSummary] = field(default_factory=dict)
    exported_at: str | None = None  # ISO time of the oldest export any batch was built from

    def rows(self) -> dict[str, int]:
        return {entity: sum(ref.rows for ref in refs) for entity, refs in self.files.items()}

    def all_files(self) -> Iterator[FileRef]:
        for refs in self.files.values():
            yield from refs

    def to_json(self) -> bytes:
        body = asdict(self) | {"landings": {key: s.to_dict() for key, s in self.landings.items()}}
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        raw["files"] = {e: [FileRef.from_dict(r) for r in refs] for e, refs in raw["files"].items()}
        raw["landings"] = {key: LandingSummary.from_dict(s) for key, s in raw.get("landings", {}).items()}
        return cls(**raw)


def _parquet_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", compression_level=1, write_statistics=True)
    return sink.getvalue()


def _final(paths: Iterable[Path]) -> Iterator[Path]:
    """Files under their final names: not the `.tmp-*` half-writes an aborted `atomic_write` can leave."""
    return (p for p in paths if not p.name.startswith(".tmp-"))


def _sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class _RecentTables:
    """Tables this process wrote with `keep=True`, by sha256 (content, so any store may use them),
    for unverified reads in the same process: a sync stages and checks what its build just wrote.
    Bounded; the oldest go first."""

    def __init__(self, limit_bytes: int):
        self._tables: OrderedDict[str, pa.Table] = OrderedDict()
        self._limit = limit_bytes
        self._lock = threading.Lock()

    def put(self, sha: str, table: pa.Table) -> None:
        with self._lock:
            self._tables[sha] = table
            self._tables.move_to_end(sha)
            total = sum(t.nbytes for t in self._tables.values())
            while total > self._limit:
                total -= self._tables.popitem(last=False)[1].nbytes

    def get(self, sha: str) -> pa.Table | None:
        with self._lock:
            return self._tables.get(sha)


_RECENT = _RecentTables(limit_bytes=256 * 2**20)
# A lazy table reads a file this small whole, once: reading it a column at a time costs more (each
# Parquet read has ~0.2 ms of set-up, more than decoding a column of 9,000 rows) and saves little memory.
SMALL_FILE_ROWS = 25_000


@dataclass(frozen=True)
class LazyTable:
    """A table kept as its files (one part each) and read a column at a time, when asked.

    It answers what the checks ask of a `pa.Table` (`num_rows`, `column_names`, `table[name]`),
    so they can hold the live version's columns one or two at a time instead of all of it beside
    the candidate.
    """

    schema: pa.Schema
    rows: tuple[int, ...]  # of each part
    readers: tuple[Callable[[str], pa.ChunkedArray], ...]  # each reads one column of its part

    @property
    def num_rows(self) -> int:
        return sum(self.rows)

    @property
    def column_names(self) -> list[str]:
        return self.schema.names

    def __getitem__(self, name: str) -> pa.ChunkedArray:
        kind = self.schema.field(name).type  # KeyError for a column the table lacks, as pa.Table raises
        columns = map_in_threads(lambda read: read(name), self.readers)
        return pa.chunked_array([chunk for column in columns for chunk in column.chunks], type=kind)

    def parts(self, keep: Sequence[bool]) -> LazyTable:
        """The table of the parts whose `keep` is true."""
        chosen = [i for i, wanted in enumerate(keep) if wanted]
        return LazyTable(self.schema, tuple(self.rows[i] for i in chosen), tuple(self.readers[i] for i in chosen))


class SnapshotStore:
    def __init__(self, root: Path | str):
        """A missing root is created 0700; an existing one is left as it is (it may be read-only: verify, diff)."""
        self.root = Path(root)
        new_private_dir(self.root)

    # -- files -------------------------------------------------------------------------
    @timed("snapshot_write")
    def put_table(self, kind: str, batch: int, table: pa.Table, *, keep: bool = False) -> tuple[FileRef, bool]:
        """Store `table` as an immutable file; returns its ref and whether it already existed.

        `keep`: also hold the table in memory for `read_table(ref, verify=False)` in this process.
        """
        data = _parquet_bytes(table)
        sha = hashlib.sha256(data).hexdigest()
        relative = f"files/{kind}/batch={batch}/{sha}.parquet"
        path = self.root / relative
        ref = FileRef(path=relative, sha256=sha, rows=table.num_rows, bytes=data.size)
        existed = path.exists() and path.stat().st_size == data.size and _sha256_of(path) == sha
        if not existed:  # new, or replacing a damaged copy with the right bytes
            atomic_write(path, memoryview(data))
        else:
            self.touch(ref)
        if keep:
            _RECENT.put(sha, table)
        return ref, existed  # existed: written before, complete and intact (by checksum), reused

    @timed("snapshot_read")
    def read_table(self, ref: FileRef, *, verify: bool = True) -> pa.Table:
        """The file's table; `verify` checks the bytes on disk against the sha256 first. Unverified
        reads of a table this process wrote with `keep=True` are served from memory."""
        kept = None if verify else _RECENT.get(ref.sha256)
        if kept is not None:
            return kept
        data = self.read_bytes(ref) if verify else (self.root / ref.path).read_bytes()
        return pq.read_table(pa.BufferReader(data))

    def _parquet_file(self, ref: FileRef) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(self.root / ref.path)
        except FileNotFoundError:
            raise CorruptFileError(self.root / ref.path, "file is missing") from None

    def lazy_table(self, refs: Sequence[FileRef], *, in_memory: dict[str, pa.Table] | None = None) -> LazyTable:
        """The files' table, read a column at a time (a small file whole, once), unverified; a file whose
        table is `in_memory` (by sha256), or was written by this process with `keep=True`, is read there."""
        if not refs:
            raise ValueError("a table needs at least one file")
        held = in_memory or {}

        def reader(ref: FileRef) -> Callable[[str], pa.ChunkedArray]:
            table = held.get(ref.sha256)
            if table is None:
                table = _RECENT.get(ref.sha256)
            if table is not None:
                return lambda name: table[name]
            file = functools.cache(lambda: self._parquet_file(ref))  # its footer is parsed once, not per column
            if ref.rows <= SMALL_FILE_ROWS:
                whole = functools.cache(lambda: file().read())
                return lambda name: whole()[name]
            return lambda name: file().read(columns=[name])[name]

        first = held.get(refs[0].sha256)
        schema = first.schema if first is not None else self._parquet_file(refs[0]).schema_arrow
        return LazyTable(schema, tuple(ref.rows for ref in refs), tuple(reader(ref) for ref in refs))

    @timed("snapshot_read")
    def read_bytes(self, ref: FileRef) -> bytes:
        """The file's bytes, after checking them against the recorded sha256."""
        path = self.root / ref.path
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CorruptFileError(path, "file is missing") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != ref.sha256:
            raise CorruptFileError(path, f"sha256 is {actual[:12]}…, the manifest says {ref.sha256[:12]}…")
        return data

    def check(self, ref: FileRef) -> str | None:
        """None if the file is intact, else what is wrong with it."""
        try:
            self.read_bytes(ref)
        except CorruptFileError as error:
            return str(error).split(". Run")[0]
        return None

    def touch(self, ref: FileRef) -> None:
        """Mark a file as just used: gc spares files younger than its grace period, so a file a running
        sync reuses is not deleted under it however old its bytes are."""
        os.utime(self.root / ref.path)

    def file_paths(self) -> Iterator[Path]:
        files = self.root / "files"
        if files.exists():
            yield from _final(files.rglob("*.parquet"))

    # -- heads -------------------------------------------------------------------------
    def set_head(self, group: str, batch: int, refs: dict[str, FileRef], **extra: object) -> None:
        body = {"refs": {k: asdict(v) for k, v in refs.items()}, **extra}
        atomic_write(self._head_path(group, batch), json.dumps(body, sort_keys=True).encode())

    def head(self, group: str, batch: int) -> dict[str, FileRef] | None:
        body = self.head_body(group, batch)
        return None if body is None else {k: FileRef.from_dict(v) for k, v in body["refs"].items()}

    def head_body(self, group: str, batch: int) -> dict | None:
        path = self._head_path(group, batch)
        return json.loads(path.read_bytes()) if path.exists() else None

    def head_refs(self) -> Iterator[FileRef]:
        heads = self.root / "heads"
        if heads.exists():
            for path in _final(heads.rglob("*.json")):
                yield from (FileRef.from_dict(r) for r in json.loads(path.read_bytes())["refs"].values())

    def _head_path(self, group: str, batch: int) -> Path:
        return self.root / "heads" / group / f"batch={batch}.json"

    # -- landing -----------------------------------------------------------------------
    def landing_path(self, key: str) -> Path:
        return self.root / "landing" / f"{key}.json"

    def put_landing(self, key: str, body: dict) -> None:
        atomic_write(self.landing_path(key), json.dumps(body, sort_keys=True).encode())

    def touch_landing(self, key: str) -> None:
        os.utime(self.landing_path(key))

    def landing(self, key: str) -> dict | None:
        path = self.landing_path(key)
        return json.loads(path.read_bytes()) if path.exists() else None

    def landings(self) -> list[Path]:
        folder = self.root / "landing"
        return sorted(_final(folder.glob("*.json")), key=lambda p: p.stat().st_mtime) if folder.exists() else []

    # -- identity ----------------------------------------------------------------------
    def identity(self) -> dict | None:
        """Which live store this home serves (`store.json`: store_id, env, batches, live_url), or None."""
        path = self.root / "store.json"
        return json.loads(path.read_bytes()) if path.exists() else None

    def put_identity(self, identity: dict) -> None:
        atomic_write(self.root / "store.json", json.dumps(identity, sort_keys=True, default=str).encode())

    # -- the journal ---------------------------------------------------------------------
    def journal(self, entry: dict) -> bool:
        """Append one line to `journal.jsonl`: what the catalog decided (checks, publish, rollback), so
        `reval recover` can rebuild a lost catalog from this home alone. Written after the catalog has
        committed, so it never fails the change: False if the home cannot be written (read-only)."""
        stamped = {"logged_at": datetime.now(UTC).isoformat(), **entry}
        line = (json.dumps(stamped, sort_keys=True, default=str) + "\n").encode()
        try:
            fd = os.open(self.root / "journal.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError:
            return False
        try:
            os.write(fd, line)
            os.fsync(fd)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def journal_entries(self) -> list[dict]:
        path = self.root / "journal.jsonl"
        if not path.exists():
            return []
        entries = []
        for line in path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash mid-write
        return entries

    # -- versions ----------------------------------------------------------------------
    def put_manifest(self, manifest: Manifest) -> str:
        """Write a manifest once; returns its sha256 (recorded in the live catalog)."""
        if not VERSION_ID.match(manifest.version):
            raise ValueError(f"not a generated version id: {manifest.version!r}")
        data = manifest.to_json()
        path = self._manifest_path(manifest.version)
        if path.exists():
            raise FileExistsError(f"version {manifest.version} already has a manifest; versions are immutable")
        atomic_write(path, data)
        return hashlib.sha256(data).hexdigest()

    def manifest(self, version: str) -> Manifest:
        if not VERSION_ID.match(version):
            raise UnknownVersionError(version)
        path = self._manifest_path(version)
        if not path.exists():
            raise UnknownVersionError(version)
        return Manifest.from_json(path.read_bytes())

    def manifest_ids(self) -> list[str]:
        folder = self.root / "versions"
        return sorted(p.stem for p in _final(folder.glob("*.json"))) if folder.exists() else []

    def delete_manifest(self, version: str) -> None:
        self._manifest_path(version).unlink(missing_ok=True)

    def _manifest_path(self, version: str) -> Path:
        return self.root / "versions" / f"{version}.json"
