"""Immutable, content-addressed snapshot files and manifests."""

import os
import stat

import pyarrow as pa
import pytest

from reval_assets.store.files import atomic_write
from reval_assets.store.snapshots import CorruptFileError, FileRef, Manifest, SnapshotStore, UnknownVersionError

TABLE = pa.table({"gmc_reference_number": ["1234567", "7654321"], "n": [1, 2]})


def test_writing_the_same_table_twice_reuses_the_file(tmp_path):
    store = SnapshotStore(tmp_path)
    first, existed_first = store.put_table("doctors", 3, TABLE)
    second, existed_second = store.put_table("doctors", 3, TABLE)
    assert (existed_first, existed_second) == (False, True)
    assert first == second
    assert first.path == f"files/doctors/batch=3/{first.sha256}.parquet"
    assert store.read_table(first).equals(TABLE)


def test_snapshot_folders_and_files_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0o000)
    try:
        store = SnapshotStore(tmp_path / "snap")
        ref, _ = store.put_table("doctors", 0, TABLE)
    finally:
        os.umask(old)
    path = store.root / ref.path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (store.root, path.parent, path.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_flipped_byte_is_caught_and_the_error_names_the_file(tmp_path):
    store = SnapshotStore(tmp_path)
    ref, _ = store.put_table("doctors", 0, TABLE)
    path = store.root / ref.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match=str(path)):
        store.read_table(ref)
    assert "sha256" in store.check(ref)


def test_a_truncated_or_missing_file_is_caught(tmp_path):
    store = SnapshotStore(tmp_path)
    ref, _ = store.put_table("doctors", 0, TABLE)
    path = store.root / ref.path
    path.write_bytes(path.read_bytes()[:10])
    assert store.check(ref) is not None
    path.unlink()
    assert "missing" in store.check(ref)


def test_a_crash_mid_write_leaves_no_file_under_the_final_name(tmp_path, monkeypatch):
    target = tmp_path / "files" / "x.parquet"

    def crash(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, b"data")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def _manifest(version: str) -> Manifest:
    ref = FileRef(path="files/doctors/batch=0/ab.parquet", sha256="ab", rows=2, bytes=10)
    return Manifest(version=version, parent=None, created_at="2026-01-01T00:00:00+00:00", actor="t", reason="r",
                    env="dev", source="synthetic", batches=1, files={"doctors": [ref]})


def test_manifests_are_immutable_and_round_trip(tmp_path):
    store = SnapshotStore(tmp_path)
    manifest = _manifest("v20260101_000000_abcdef")
    store.put_manifest(manifest)
    assert store.manifest(manifest.version) == manifest
    with pytest.raises(FileExistsError, match="immutable"):
        store.put_manifest(manifest)


def test_only_generated_version_ids_are_accepted(tmp_path):
    store = SnapshotStore(tmp_path)
    with pytest.raises(ValueError, match="generated version id"):
        store.put_manifest(_manifest("v1; DROP TABLE doctors"))
    with pytest.raises(UnknownVersionError):
        store.manifest("../../etc/passwd")
    with pytest.raises(UnknownVersionError):
        store.manifest("v20260101_000000_000000")


def test_unverified_reads_of_tables_just_written_come_from_memory_verified_reads_from_disk(tmp_path):
    store = SnapshotStore(tmp_path)
    table = pa.table({"gmc_reference_number": [f"{n:07d}" for n in range(100)]})
    ref, _ = store.put_table("doctors", 0, table, keep=True)
    (tmp_path / ref.path).write_bytes(b"flipped")
    assert store.read_table(ref, verify=False).equals(table)  # what this process wrote and hashed
    with pytest.raises(CorruptFileError):
        store.read_table(ref)


def test_tables_kept_in_memory_are_bounded_and_the_oldest_go_first(tmp_path, monkeypatch):
    from reval_assets.store import snapshots

    monkeypatch.setattr(snapshots, "_RECENT", snapshots._RecentTables(limit_bytes=1500))
    store = SnapshotStore(tmp_path)
    refs = [store.put_table("doctors", b, pa.table({"n": list(range(b * 100, b * 100 + 100))}), keep=True)[0]
            for b in range(3)]  # 800 bytes each: only the newest fits
    for ref in refs:
        (tmp_path / ref.path).unlink()
    with pytest.raises(FileNotFoundError):
        store.read_table(refs[0], verify=False)
    assert store.read_table(refs[2], verify=False)["n"][0].as_py() == 200


@pytest.fixture(params=["column by column", "small files whole"])
def lazy_reads(request, monkeypatch):
    """Both ways a lazy table reads a file: a column at a time, or (a small file) whole, once."""
    from reval_assets.store import snapshots

    if request.param == "column by column":
        monkeypatch.setattr(snapshots, "SMALL_FILE_ROWS", 0)
    return request.param


def test_a_lazy_table_reads_its_files_only_when_asked_and_answers_as_the_whole_table(tmp_path, lazy_reads):
    store = SnapshotStore(tmp_path)
    parts = [pa.table({"n": list(range(b * 10, b * 10 + 10)), "name": [f"x{b}"] * 10}) for b in range(3)]
    refs = [store.put_table("doctors", b, part)[0] for b, part in enumerate(parts)]
    in_memory = {refs[1].sha256: parts[1]}
    lazy = store.lazy_table(refs, in_memory=in_memory)
    (tmp_path / refs[0].path).unlink()
    with pytest.raises(CorruptFileError):  # nothing was read before a column was asked for
        lazy["n"]
    store.put_table("doctors", 0, parts[0])
    whole = pa.concat_tables(parts)
    assert (lazy.num_rows, lazy.column_names) == (whole.num_rows, whole.column_names)
    assert lazy["n"].equals(whole["n"]) and lazy["name"].equals(whole["name"])
    (tmp_path / refs[1].path).unlink()  # the part held in memory is read there
    assert lazy.parts([False, True, True])["n"].to_pylist() == list(range(10, 30))
    with pytest.raises(KeyError):
        lazy["missing"]


def test_a_lazy_table_whose_file_is_gone_says_which_file(tmp_path, lazy_reads):
    store = SnapshotStore(tmp_path)
    refs = [store.put_table("doctors", b, pa.table({"n": [b]}))[0] for b in range(2)]
    lazy = store.lazy_table(refs)
    (tmp_path / refs[1].path).unlink()
    with pytest.raises(CorruptFileError, match=f"{refs[1].sha256}.parquet: file is missing"):
        lazy["n"]
