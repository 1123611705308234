"""Disk room: a sync checks it has space before it writes, and gives back what it wrote if the disk fills.

A full disk must never make live unreadable: SQLite readers need a little room (its `-shm` file) to
open the database. So a sync refuses to start without room for about twice the live version's
snapshot files (at least `RESERVE_BYTES`) on the filesystems of the snapshot home and of an
embedded live store, and a sync that still runs out of space deletes the snapshot files it wrote
that no version reaches, then says "disk full" with how much it needs.
"""

from __future__ import annotations

import errno
import shutil
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from reval_assets.errors import RevalError
from reval_assets.pipeline.runtime import Runtime
from reval_assets.pipeline.steps import Landing

RESERVE_BYTES = 64 * 2**20


class DiskFull(RevalError):
    """No room to write a sync; nothing was published."""

    kind = "disk_full"


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def needed_bytes(runtime: Runtime) -> int:
    live = runtime.live.live_version()
    if live is None:
        return RESERVE_BYTES
    version = sum(ref.bytes for ref in runtime.snapshots.manifest(live).all_files())
    return max(RESERVE_BYTES, 2 * version)


def require_room(runtime: Runtime) -> None:
    """Raise DiskFull, before anything is written, if a folder the sync writes has too little free space."""
    needed = needed_bytes(runtime)
    for folder in _written_folders(runtime):
        free = shutil.disk_usage(folder).free
        if free < needed:
            raise DiskFull(f"disk full: {folder} has {_size(free)} free, and a sync needs about {_size(needed)} "
                           f"(twice the live version's snapshot files, at least {_size(RESERVE_BYTES)}). Free some "
                           "space (`reval gc` drops old versions) and sync again. Nothing was written; live is "
                           "unchanged.")


def give_back(runtime: Runtime, since: float, cause: BaseException) -> str:
    """After a disk-full failure: delete the snapshot files written since `since` that no version reaches
    (the next sync writes them again); returns the message to show."""
    snapshots = runtime.snapshots
    reachable = {ref.path for row in runtime.live.versions() for ref in _files(runtime, row["version"])}
    reachable |= {ref.path for version in snapshots.manifest_ids() for ref in _files(runtime, version)}
    reachable |= {ref.path for ref in _live_landing_files(runtime)}
    freed = 0
    for path in snapshots.file_paths():
        if str(path.relative_to(snapshots.root)) in reachable or path.stat().st_mtime < since:
            continue
        freed += path.stat().st_size
        path.unlink(missing_ok=True)
    for path in snapshots.root.rglob(".tmp-*"):
        path.unlink(missing_ok=True)
    free = min(shutil.disk_usage(folder).free for folder in _written_folders(runtime))
    cause_text = " ".join(str(cause).split())
    return (f"disk full ({cause_text}): the sync stopped and gave back the {_size(freed)} of new files it had "
            f"written ({_size(free)} free now, a sync needs about {_size(needed_bytes(runtime))}). Free some space "
            "(`reval gc` drops old versions) and sync again; live is unchanged.")


def started() -> float:
    """A time to pass to `give_back` (file times are compared, so a second of margin)."""
    return time.time() - 1


def _files(runtime: Runtime, version: str) -> list:
    try:
        return list(runtime.snapshots.manifest(version).all_files())
    except KeyError:
        return []


def _live_landing_files(runtime: Runtime) -> list:
    """The files of the landings the live version was built from (its raw inputs and quarantine)."""
    live = runtime.live.live_version()
    if live is None:
        return []
    bodies = (runtime.snapshots.landing(key) for key in runtime.snapshots.manifest(live).landings)
    return [ref for body in bodies if body for ref in Landing.from_body(body).files()]


def _written_folders(runtime: Runtime) -> list[Path]:
    folders = [runtime.snapshots.root]
    url = make_url(runtime.settings.live_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        folders.append(Path(url.database).parent)
    return [_existing(folder) for folder in folders]


def _existing(folder: Path) -> Path:
    while not folder.exists():
        folder = folder.parent
    return folder


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} GiB"
