"""Everything a step needs, built from `Settings`: the source and the two stores."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from reval_assets.settings import Settings, SettingsError
from reval_assets.sources.base import Source
from reval_assets.store.live import LiveStore
from reval_assets.store.snapshots import SnapshotStore


@dataclass
class Runtime:
    settings: Settings
    read_only: bool = False  # a reader never creates the live store's catalog

    @cached_property
    def snapshots(self) -> SnapshotStore:
        return SnapshotStore(self.settings.snapshot_root)

    @cached_property
    def live(self) -> LiveStore:
        return LiveStore(self.settings.live_url, create=not self.read_only)

    def source(self) -> Source:
        if self.settings.source == "files":
            from reval_assets.sources.files import FileSource

            if self.settings.source_dir is None:
                raise SettingsError("REVAL_SOURCE=files needs REVAL_SOURCE_DIR, the folder of the export files")

            return FileSource(self.settings.source_dir, designated_bodies=self.settings.designated_bodies)
        from reval_assets.sources.synthetic import SyntheticSource

        return SyntheticSource(doctors=self.settings.doctors, seed=self.settings.seed, faults=self.settings.faults,
                               designated_bodies=self.settings.designated_bodies)

    def close(self) -> None:
        if "live" in self.__dict__:
            self.live.close()
