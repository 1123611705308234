"""The file source: the export files of the contract, in one folder, in any shape the real services write.

Each file is read once (its bytes both hashed for the fingerprint and parsed), its layout and shape found
from its content (`json_documents`, `documents`, `gmc_soap`), and every wire field becomes one text column,
built with one comprehension per field name the services use for it (`Column.wire_names`).

Only file-level problems fail here (a missing file, invalid JSON, a wrong shape, a failed SOAP response).
A recommendation list under an unknown key is different: it is the Dec 2023 fault itself, so the input
is returned empty with an input-level problem (`WireInput.problems`) and the release's blocking checks
fail on it, never as "0 rows". Record-level problems (bad enum, date, GMC number, duplicate key) are
passed through as text and quarantined later by `reval_assets.domain.conform`.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.schemas import RAW_SPECS, RECORD_COLUMN, Column, RawSpec
from reval_assets.sources import documents
from reval_assets.sources.base import SourceError, WireInput
from reval_assets.sources.json_documents import decode, json_type, wire_text

GMC_FOLDER = "gmc"  # gmc/<DBC>.xml: one saved GetDoctorsForDB response per designated body
EXPECTED_FILES: tuple[str, ...] = tuple(spec.file for spec in RAW_SPECS.values() if not spec.optional)
_FINGERPRINT_VERSION = b"reval-files-v2"


def _column(records: list[dict], wire: str) -> pa.Array:
    values = [record.get(wire) for record in records]
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # a number, boolean, array or Extended JSON: a second pass
        return pa.array([wire_text(v) for v in values], pa.string())


def _field(records: list[dict], column: Column, present: set[str]) -> pa.Array:
    """The field under whichever of its names the records use (the first name that has a value wins)."""
    arrays = [_column(records, name) for name in column.wire_names if name in present]
    if not arrays:
        return pa.nulls(len(records), pa.string())
    return arrays[0] if len(arrays) == 1 else pc.coalesce(*arrays)


def wire_table(spec: RawSpec, records: list, file: str) -> pa.Table:
    """One text column per wire field of `spec` (absent → null) plus `_record`, the position."""
    bad = next((i for i, record in enumerate(records) if type(record) is not dict), None)
    if bad is not None:
        raise SourceError(f"record is not a JSON object (found {json_type(records[bad])})", file=file, record=bad)
    present: set[str] = set().union(*records) if records else set()
    columns = {column.wire: _field(records, column, present) for column in spec.columns}
    columns[RECORD_COLUMN] = pa.array(np.arange(len(records), dtype=np.int64))
    return pa.table(columns)


@dataclass(frozen=True)
class PerFileInput(WireInput):
    """An input read from several files one after another (`gmc/<DBC>.xml`, one per designated body):
    `files` names each file with how many records it gave, in record order, so a quarantined record
    names its own file rather than the folder (`origins_of_records`)."""

    files: tuple[tuple[str, int], ...] = ()


def origins_of_records(wire: WireInput, quarantine: pa.Table) -> pa.Table:
    """`quarantine` (rows of `wire`'s records) with each row's origin the file its record came from, where
    `wire` was read from several files; otherwise as it is."""
    if not isinstance(wire, PerFileInput) or not wire.files or quarantine.num_rows == 0:
        return quarantine
    names = pa.array([name for name, _ in wire.files], pa.string())
    ends = np.cumsum([count for _, count in wire.files])  # record positions of file i are below ends[i]
    which = np.searchsorted(ends, quarantine["record"].to_numpy(), side="right")
    if which.max() >= len(names):
        raise ValueError(f"a quarantined record lies past the {int(ends[-1])} records of {wire.origin}")
    return quarantine.set_column(quarantine.schema.get_field_index("origin"), "origin", names.take(which))


def _kind(path: Path) -> str:
    """What is at `path` (following symlinks), in words: "a regular file", "missing", "a FIFO"..."""
    try:
        mode = path.stat().st_mode
    except OSError:  # not there, or not reachable: reported as missing, as before
        return "missing"
    kinds = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "an unknown kind of file")


class FileSource:
    """The export files of the contract in `directory`.

    Each file is read once per instance: `fingerprint()` and `extract()` share the same bytes,
    so they always describe the same data. Make a new instance to see later changes. GMC doctors come
    from `doctors_for_db.json` or from `gmc/<DBC>.xml`; with `designated_bodies`, every one of them
    must have its response there.
    """

    def __init__(self, directory: Path | str, designated_bodies: Sequence[str] | None = None,
                 elsewhere: Sequence[str] = ()):
        self.directory = Path(directory).expanduser().absolute()
        self.description = f"files: {self.directory}"
        self.designated_bodies = tuple(designated_bodies) if designated_bodies is not None else None
        self.elsewhere = frozenset(elsewhere)  # inputs a live system provides (`sources.overlay`): not read here
        self._data: dict[str, bytes] | None = None
        self._extracted: dict[str, WireInput] | None = None

    def __repr__(self) -> str:
        return f"FileSource({str(self.directory)!r})"

    def path(self, name: str) -> Path:
        return self.directory / RAW_SPECS[name].file

    def fingerprint(self) -> str:
        digest = hashlib.sha256(_FINGERPRINT_VERSION)
        for name, data in self._read().items():
            file = name.encode()
            digest.update(len(file).to_bytes(8, "big") + file + len(data).to_bytes(8, "big"))
            digest.update(data)
        return digest.hexdigest()

    def signature(self) -> str:
        """The export's files with their sizes and modification times (no byte read): what changes while it is
        being written. Fails like `extract` when a required file is missing."""
        parts = []
        for name in self._files():
            info = (self.directory / name).stat()
            parts.append(f"{name}:{info.st_size}:{info.st_mtime_ns}")
        return "|".join(parts)

    def extract(self) -> dict[str, WireInput]:
        if self._extracted is None:
            data = self._read()
            self._extracted = {name: self._extract_one(spec, data) for name, spec in RAW_SPECS.items()}
        return self._extracted

    def exported_at(self) -> datetime:
        """When the export was written: the oldest modification time of the files it is read from."""
        oldest = min((self.directory / name).stat().st_mtime for name in self._read())
        return datetime.fromtimestamp(oldest, UTC)

    def _extract_one(self, spec: RawSpec, data: dict[str, bytes]) -> WireInput:
        file = str(self.directory / spec.file)
        if spec.name in self.elsewhere:
            return WireInput.empty(spec, file, "not read from the files: a live system provides it")
        if spec.name == "gmc_doctors" and spec.file not in data:
            return self._soap_doctors(spec, data)
        if spec.file not in data:  # an optional input left out
            read = documents.Read([], f"absent ({spec.file} is not in the export, so it is empty)")
        else:
            content, layout = decode(data[spec.file], file)
            read = documents.READERS[spec.name](content, layout, file)
        return WireInput(wire_table(spec, read.records, file), file, problems=read.problems, read_as=read.read_as)

    def _soap_doctors(self, spec: RawSpec, data: dict[str, bytes]) -> PerFileInput:
        from reval_assets.sources.gmc_soap import read_soap_response  # lxml: only for an export that needs it

        responses = {Path(name).stem: body for name, body in data.items() if name.startswith(f"{GMC_FOLDER}/")}
        records: list[dict] = []
        files: list[tuple[str, int]] = []
        for body, xml in responses.items():
            path = self.directory / GMC_FOLDER / f"{body}.xml"
            # A response has no last-updated time: the doctors were confirmed when it was saved, as the nightly
            # sync stamps each doctor it collects with the collection's time.
            saved = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            doctors = read_soap_response(xml, body, str(path))
            records += [{**r, "gmcLastUpdatedDateTime": saved} for r in doctors]
            files.append((str(path), len(doctors)))
        said = (f"{len(responses)} GetDoctorsForDB responses ({', '.join(responses)}), "
                f"{len(records):,} doctors")
        folder = str(self.directory / GMC_FOLDER)
        return PerFileInput(wire_table(spec, records, folder), folder, read_as=said, files=tuple(files))

    def _read(self) -> dict[str, bytes]:
        """Every file the export is read from, by its name in the folder."""
        if self._data is None:
            self._data = {name: self._read_one(self.directory / name) for name in self._files()}
        return self._data

    def _files(self) -> list[str]:
        self._check_folder()
        wanted = [spec for spec in RAW_SPECS.values() if spec.name not in self.elsewhere]
        present = [spec.file for spec in wanted if (self.directory / spec.file).is_file()]
        gmc = self.directory / GMC_FOLDER
        doctors_file = RAW_SPECS["gmc_doctors"].file
        if gmc.is_dir() and "gmc_doctors" not in self.elsewhere:
            if doctors_file in present:
                raise SourceError(f"the export holds both {doctors_file} and {GMC_FOLDER}/: GMC doctors must come "
                                  "from one of them; remove the other", file=str(gmc))
            present += self._soap_files(gmc)
        required = [spec.file for spec in wanted if not spec.optional]
        missing = [f for f in required if f not in present and not (f == doctors_file and gmc.is_dir())]
        if missing:
            expected = ", ".join(EXPECTED_FILES)
            raise SourceError(
                f"missing export file(s) {', '.join(missing)} in {self.directory}; expected all of {expected} "
                f"(GMC doctors may instead be {GMC_FOLDER}/<DBC>.xml)", file=str(self.directory / missing[0]))
        return present

    def _soap_files(self, gmc: Path) -> list[str]:
        found = {p.stem: p for p in gmc.glob("*.xml") if p.is_file()}
        wanted = self.designated_bodies if self.designated_bodies is not None else tuple(sorted(found))
        missing = [body for body in wanted if body not in found]
        if missing:
            raise SourceError(f"no GetDoctorsForDB response for designated bod{'y' if len(missing) == 1 else 'ies'} "
                              f"{', '.join(missing)} (expected {', '.join(f'{GMC_FOLDER}/{b}.xml' for b in missing)})",
                              file=str(gmc / f"{missing[0]}.xml"))
        if not found:
            raise SourceError(f"{GMC_FOLDER}/ holds no <DBC>.xml GetDoctorsForDB response", file=str(gmc))
        return [f"{GMC_FOLDER}/{found[body].name}" for body in sorted(set(wanted) | set(found))]

    def _check_folder(self) -> None:
        if not self.directory.is_dir():
            raise SourceError(f"export folder not found; it must hold {', '.join(EXPECTED_FILES)}",
                              file=str(self.directory))
        odd = [(spec.file, _kind(self.directory / spec.file)) for spec in RAW_SPECS.values()]
        odd = [(file, kind) for file, kind in odd if kind not in ("a regular file", "missing")]
        if odd:  # never opened: reading a FIFO would wait for a writer for ever
            raise SourceError(
                f"{', '.join(f'{file} is {kind}' for file, kind in odd)}, not a regular file; the export must be "
                f"the files themselves in {self.directory}", file=str(self.directory / odd[0][0]),
            )

    @staticmethod
    def _read_one(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as error:
            raise SourceError(f"cannot read export file: {error.strerror or error}", file=str(path)) from None
