"""Everything a step needs, built from `Settings`: the source and the two stores."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from reval_assets.settings import Settings
from reval_assets.sources.base import Source
from reval_assets.store.live import LiveStore
from reval_assets.store.snapshots import SnapshotStore


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def snapshots(self) -> SnapshotStore:
        return SnapshotStore(self.settings.snapshot_root)

    @cached_property
    def live(self) -> LiveStore:
        return LiveStore(self.settings.live_url)

    def source(self) -> Source:
        if self.settings.source == "files":
            from reval_assets.sources.files import FileSource

            return FileSource(self.settings.source_dir)
        from reval_assets.sources.synthetic import SyntheticSource

        return SyntheticSource(doctors=self.settings.doctors, seed=self.settings.seed, faults=self.settings.faults)

    def close(self) -> None:
        if "live" in self.__dict__:
            self.live.close()
