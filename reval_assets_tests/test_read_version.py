"""`reval_assets.read_version`: one call from a notebook to an entity of a version as a pandas DataFrame."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import reval_assets
from reval_assets.pipeline.read import NothingLiveError, read_version, version_table
from reval_assets.pipeline.runtime import Runtime
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.snapshots import CorruptFileError, UnknownVersionError
from reval_assets_tests.core_sync import NEW_POPULATION, publish, stage


def _files_table(runtime: Runtime, version: str, entity: str) -> pa.Table:
    manifest = runtime.snapshots.manifest(version)
    return pa.concat_tables([runtime.snapshots.read_table(ref) for ref in manifest.files[entity]])


def test_default_is_the_live_version_and_any_version_can_be_named(
        reval_env: Path, open_runtime: Callable[[], Runtime]) -> None:
    runtime = open_runtime()
    live = publish(runtime)
    staged = stage(runtime, SyntheticSource(doctors=900, seed=3), thresholds=NEW_POPULATION)  # not published
    frame = reval_assets.read_version("doctors")
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == runtime.snapshots.manifest(live).rows()["doctors"] == 1500
    assert frame.equals(_files_table(runtime, live, "doctors").to_pandas())
    staged_rows = runtime.snapshots.manifest(staged).rows()["doctors"]  # doctors live had are carried forward
    assert staged_rows != 1500 and len(read_version("doctors", staged)) == staged_rows
    assert version_table("recommendations", staged).equals(_files_table(runtime, staged, "recommendations"))


def test_home_names_another_home_than_the_environment(
        reval_env: Path, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    version = publish(open_runtime())
    monkeypatch.setenv("REVAL_HOME", str(tmp_path / "elsewhere"))
    assert len(read_version("connections", home=reval_env)) == 1500
    assert len(read_version("connections", version, home=str(reval_env))) == 1500


def test_unknown_entity_or_version_says_what_exists(reval_env: Path, open_runtime: Callable[[], Runtime]) -> None:
    publish(open_runtime())
    with pytest.raises(ValueError, match="unknown entity 'doctor'; the entities are doctors, connections"):
        read_version("doctor")
    with pytest.raises(UnknownVersionError) as raised:
        read_version("doctors", "v20990101_000000_abcdef")
    assert "`reval versions` lists the retained ones" in str(raised.value)
    with pytest.raises(UnknownVersionError):
        read_version("doctors", "../store")


def test_nothing_live_yet_asks_for_a_version(reval_env: Path, open_runtime: Callable[[], Runtime]) -> None:
    staged = stage(open_runtime())
    with pytest.raises(NothingLiveError, match="nothing is live in sqlite:.* yet; pass a version"):
        read_version("doctors")
    assert len(read_version("doctors", staged)) == 1500


def test_a_home_without_snapshots_is_named_and_not_created(tmp_path: Path) -> None:
    empty = tmp_path / "no-home"
    with pytest.raises(FileNotFoundError, match="holds no snapshots"):
        read_version("doctors", home=empty)
    assert not empty.exists()


def test_a_damaged_file_is_refused(reval_env: Path, open_runtime: Callable[[], Runtime]) -> None:
    runtime = open_runtime()
    version = publish(runtime)
    ref = runtime.snapshots.manifest(version).files["doctors"][4]
    (runtime.snapshots.root / ref.path).write_bytes(b"not parquet")
    with pytest.raises(CorruptFileError, match="sha256 is .* the manifest says"):
        read_version("doctors")


def test_the_package_attribute_is_lazy_and_the_core_reader_needs_no_dagster() -> None:
    code = ("import sys, reval_assets; assert 'reval_assets.pipeline.read' not in sys.modules; "
            "reval_assets.read_version; import reval_assets.pipeline.read; assert 'dagster' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="no attribute 'read_versions'"):
        reval_assets.read_versions  # noqa: B018
