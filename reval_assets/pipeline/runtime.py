"""Everything a step needs, built from `Settings`: the source and the two stores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from reval_assets.settings import Settings, SettingsError
from reval_assets.sources.base import Source
from reval_assets.store.live import LiveStore
from reval_assets.store.live_gc import EVIDENCE_FOLDER, EVIDENCE_NAME_FORMAT
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

    @property
    def evidence_root(self) -> Path:
        """Where live GMC pulls keep their answers, a folder per pull (replayable; `reval gc` prunes them)."""
        return self.settings.home / EVIDENCE_FOLDER

    def source(self) -> Source:
        """The configured source: synthetic or the export files, with GMC doctors pulled over SOAP when
        REVAL_GMC_URL is set and TIS trainees read from the TCS database when REVAL_TCS_URL is."""
        settings = self.settings
        source = self._base_source()
        if settings.gmc_url:
            from reval_assets.sources.gmc_service import GmcClient, GmcSoapSource

            client = GmcClient(settings.gmc_url, settings.gmc_username, settings.gmc_password,
                               timeout=settings.gmc_timeout)
            evidence = self.evidence_root / datetime.now(UTC).strftime(EVIDENCE_NAME_FORMAT)
            source = GmcSoapSource(source, client, designated_bodies=settings.designated_bodies,
                                   evidence_dir=evidence)
        if settings.tcs_url:
            from reval_assets.sources.tcs_database import TcsTraineesSource

            source = TcsTraineesSource(source, settings.tcs_url, designated_bodies=settings.designated_bodies)
        return source

    def _base_source(self) -> Source:
        settings = self.settings
        if settings.source == "files":
            from reval_assets.sources.files import FileSource

            if settings.source_dir is None:
                raise SettingsError("REVAL_SOURCE=files needs REVAL_SOURCE_DIR, the folder of the export files")
            elsewhere = (("gmc_doctors",) if settings.gmc_url else ()) + (("tis_trainees",) if settings.tcs_url else ())
            return FileSource(settings.source_dir, designated_bodies=settings.designated_bodies, elsewhere=elsewhere)
        from reval_assets.sources.synthetic import SyntheticSource

        return SyntheticSource(doctors=settings.doctors, seed=settings.seed, faults=settings.faults,
                               designated_bodies=settings.designated_bodies)

    def close(self) -> None:
        if "live" in self.__dict__:
            self.live.close()
