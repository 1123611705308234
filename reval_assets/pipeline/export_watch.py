"""When a new complete export has arrived in REVAL_SOURCE_DIR (the new-export sensor's judgement, Dagster-free).

An export is new when its content fingerprint differs from the last one a sync was started for, and complete
when every required file is there and the files have stopped changing: their names, sizes and times were the
same at the previous look. A half-copied export therefore never starts a sync.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from reval_assets.settings import Settings
from reval_assets.sources.base import SourceError


@dataclass(frozen=True)
class Look:
    watch: ExportWatch
    why: str = ""  # why nothing starts
    fingerprint: str | None = None  # the new export's, when a sync should start


@dataclass(frozen=True)
class ExportWatch:
    files: str = ""  # the files' names, sizes and times at the last look
    checked: str = ""  # the files of the last fingerprint taken
    synced: str = ""  # the fingerprint a sync was last started for

    @classmethod
    def from_cursor(cls, cursor: str | None) -> ExportWatch:
        return cls(**json.loads(cursor)) if cursor else cls()

    def cursor(self) -> str:
        return json.dumps({"files": self.files, "checked": self.checked, "synced": self.synced})

    def look(self, settings: Settings) -> Look:
        if settings.source != "files" or settings.source_dir is None:
            return Look(self, "REVAL_SOURCE is not files (with REVAL_SOURCE_DIR): there is no export to watch")
        from reval_assets.sources.files import FileSource

        source = FileSource(settings.source_dir, designated_bodies=settings.designated_bodies)
        try:
            files = source.signature()
        except SourceError as error:
            return Look(replace(self, files=""), f"no complete export yet: {error}")
        if files != self.files:
            return Look(replace(self, files=files), "the export's files changed since the last look: waiting for "
                                                    "them to settle")
        if files == self.checked:
            return Look(self, "the export has not changed since the last sync")
        fingerprint = source.fingerprint()
        if fingerprint == self.synced:
            return Look(replace(self, checked=files), "the same content as the last sync (files touched, not changed)")
        return Look(replace(self, checked=files, synced=fingerprint), fingerprint=fingerprint)
