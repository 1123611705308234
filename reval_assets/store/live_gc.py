"""Garbage collection: dropping versions, batch tables no version reads, and stray per-version views; and
the GMC evidence folders (`$REVAL_HOME/gmc/<UTC time>/`) no kept version or landing names.

Part of `LiveStore` (the evidence functions are the home's, not the catalog's);
`reval_assets.pipeline.operations` decides what to drop.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

from reval_assets.domain.schemas import ENTITIES, ENTITY_SPECS
from reval_assets.store.bulk import identifier
from reval_assets.store.catalog import CatalogAccess, PublishError, file_tables, version_files, versions_table
from reval_assets.store.faults import fault_point
from reval_assets.store.snapshots import FileRef, SnapshotStore
from reval_assets.store.views import _entity_of, file_table, union_sql, version_view


class GarbageCollectMixin(CatalogAccess):
    """`LiveStore`'s reads and drops for `reval gc` (and the table fingerprints `reval verify` compares)."""

    # -- garbage collection ----------------------------------------------------------------
    def drop_version(self, version: str, *, actor: str = "reval", env: str = "", reason: str = "gc") -> None:
        """Drop a version from the catalog; audited as `gc_drop` in the same transaction."""
        with self.engine.begin() as conn:
            if self._live_version(conn) == version:
                raise PublishError(f"refusing to drop the live version {version}")
            if self.dialect == "postgresql":
                for view in ("discrepancies", *ENTITIES):
                    conn.exec_driver_sql(f"DROP VIEW IF EXISTS {version_view(version, view)}")
            conn.execute(version_files.delete().where(version_files.c.version == version))
            conn.execute(versions_table.delete().where(versions_table.c.version == version))
            self._audit(conn, "gc_drop", version, actor, env, reason, None)
            fault_point("gc_drop")

    def table_fingerprint(self, entity: str, ref: FileRef) -> tuple[int, ...]:
        """What `fingerprint(table)` gives for the rows now in the table that `ref` was loaded into."""
        schema = ENTITY_SPECS[entity].schema
        sums = [f"COUNT({identifier(f.name)})" for f in schema]
        sums += [f"COALESCE(SUM(LENGTH({identifier(f.name)})), 0)" for f in schema if pa.types.is_string(f.type)]
        with self.reader.connect() as conn:
            row = conn.exec_driver_sql(f"SELECT COUNT(*), {', '.join(sums)} FROM {file_table(ref)}").one()
        return tuple(int(v) for v in row)

    def loaded_tables(self) -> set[str]:
        with self.reader.connect() as conn:
            return set(conn.execute(sa.select(file_tables.c.table_name)).scalars())

    def drop_tables(self, names: Iterable[str], *, actor: str = "reval", env: str = "", reason: str = "gc") -> int:
        """Drop batch tables no version reads; audited (with how many) in the same transaction."""
        names = list(names)
        if not names:
            return 0
        with self.engine.begin() as conn:
            for name in names:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {identifier(name)}")
                conn.execute(file_tables.delete().where(file_tables.c.table_name == name))
            self._audit(conn, "gc_tables", None, actor, env, reason, {"tables": len(names)})
        return len(names)

    def stray_version_views(self) -> list[str]:
        """Per-version views no version owns: on SQLite every one (stores made before
        `reval_version_files` kept them), on PostgreSQL those of versions gc has dropped. Never the
        live version's (a store whose live version an older release published still reads them)."""
        views = [v for v in sa.inspect(self.reader).get_view_names() if v.startswith("rv")]
        with self.reader.connect() as conn:
            keep = {self._live_version(conn)}
            if self.dialect == "postgresql":
                keep |= set(conn.execute(sa.select(versions_table.c.version)).scalars())
        # a version's discrepancies view may read its connections view: drop it first
        return sorted((v for v in views if v[1:24] not in keep), key=lambda v: (not v.endswith("_discrepancies"), v))

    def version_query(self, version: str, view: str) -> str:
        """The SELECT of one version's rows of a live view (what that view shows while it is live)."""
        with self.reader.connect() as conn:
            tables = self._version_tables(conn, version)
        return union_sql(view, tables[_entity_of(view)])

    def drop_views(self, names: Iterable[str]) -> None:
        with self.engine.begin() as conn:
            for name in names:
                conn.exec_driver_sql(f"DROP VIEW IF EXISTS {identifier(name)}")


# -- GMC evidence folders ---------------------------------------------------------------------
EVIDENCE_FOLDER = "gmc"  # under REVAL_HOME: one folder per live GMC pull, holding its saved answers
EVIDENCE_NAME_FORMAT = "%Y%m%dT%H%M%S.%fZ"  # the folder's name: the pull's UTC time
_EVIDENCE_NAME = re.compile(r"\d{8}T\d{6}\.\d{6}Z")
# How a landing or manifest names a folder (in the GMC input's origin): by name, so a moved home still matches.
_NAMED = re.compile(rf"{EVIDENCE_FOLDER}/({_EVIDENCE_NAME.pattern})(?![0-9A-Za-z])")


@dataclass(frozen=True)
class EvidencePlan:
    """The evidence folders gc would delete, and the bytes they hold."""

    folders: list[Path]
    bytes: int


def plan_evidence(snapshots: SnapshotStore, root: Path, versions: Iterable[str], kept_landings: Iterable[Path],
                  grace_seconds: float) -> EvidencePlan:
    """The evidence folders under `root` that neither the manifests of `versions` (those gc keeps, and manifests
    no catalog has seen) nor the landing files gc keeps name, and untouched for `grace_seconds` (a younger
    one may be a running sync's, between its pull and its landing)."""
    named = evidence_references(snapshots, versions, kept_landings)
    folders = [p for p in evidence_folders(root) if p.name not in named and _untouched_for(p, grace_seconds)]
    return EvidencePlan(folders=folders, bytes=sum(_bytes_in(p) for p in folders))


def evidence_references(snapshots: SnapshotStore, versions: Iterable[str], landings: Iterable[Path]) -> set[str]:
    """The names of the evidence folders that the manifests of `versions` and the landing files name."""
    texts = [snapshots.manifest(version).to_json().decode() for version in versions]
    texts += [path.read_text(encoding="utf-8") for path in landings]
    return {name for text in texts for name in _NAMED.findall(text)}


def evidence_folders(root: Path) -> list[Path]:
    """The folders live GMC pulls saved their answers in: only those named by a pull's time, never a symlink."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _EVIDENCE_NAME.fullmatch(p.name) and p.is_dir() and not p.is_symlink())


def delete_evidence(plan: EvidencePlan, grace_seconds: float) -> int:
    """Delete the planned folders still untouched for `grace_seconds`; how many were deleted."""
    deleted = 0
    for folder in plan.folders:
        if _untouched_for(folder, grace_seconds):  # not written by a sync since the plan, nor gone
            shutil.rmtree(folder)
            deleted += 1
    return deleted


def _untouched_for(folder: Path, seconds: float) -> bool:
    """Whether neither `folder` nor anything in it was written in the last `seconds` (False if it is gone)."""
    try:
        newest = max([folder.lstat().st_mtime, *(p.lstat().st_mtime for p in folder.rglob("*"))])
    except FileNotFoundError:
        return False
    return time.time() - newest > seconds


def _bytes_in(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
