"""The file source: the four export files of the contract, in one folder.

Each file is read once (its bytes both hashed for the fingerprint and parsed with orjson),
and every wire field becomes one text column, built with one comprehension per field. The
recommendation payload's list is found by looking its key up in the *parsed* object, never
by rewriting the text: the Dec 2023 incident was a regex on `"traineeInfo":` that stopped
matching once the JSON was pretty-printed as `"traineeInfo" : [`.

Only file-level problems fail here (a missing file, invalid JSON, a wrong shape).
A recommendation list under an unknown key is different: it is the Dec 2023 fault itself, so
the input is returned empty with an input-level problem (`WireInput.problems`) naming the
file, the keys found and the keys expected, and the release's blocking checks fail on it,
never as "0 rows". Record-level problems (bad enum, date, GMC number, duplicate key) are
passed through as text and quarantined later by `reval_assets.domain.conform`.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from reval_assets.domain.schemas import RAW_SPECS, RECOMMENDATION_LIST_KEYS, RECORD_COLUMN, RawSpec
from reval_assets.sources.base import SourceError, WireInput

RECOMMENDATIONS_FILE = RAW_SPECS["recommendation_records"].file
EXPECTED_FILES: tuple[str, ...] = tuple(spec.file for spec in RAW_SPECS.values())
_FINGERPRINT_VERSION = b"reval-files-v1"
_UTF8_BOM = b"\xef\xbb\xbf"


def _json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _key_list(keys: Iterable[object], sep: str = ", ") -> str:
    return sep.join(f"'{k}'" for k in keys) or "none"


class MissingListKeyError(SourceError):
    """The recommendation payload holds no list under a known key (e.g. it was renamed)."""


def recommendation_items(payload: object, file: str) -> list:
    """The recommendation records of the summary payload `{"countTotal": N, "<key>": [...]}`.

    The list key is `recommendationInfo` or `traineeInfo` (RECOMMENDATION_LIST_KEYS), looked up
    in the parsed object. Both keys with records is ambiguous; a `countTotal` that differs from
    the number of records means a truncated or paged payload. Either fails rather than guess.
    """
    expected = _key_list(RECOMMENDATION_LIST_KEYS, " or ")
    if not isinstance(payload, dict):
        raise SourceError(
            f"expected a JSON object with countTotal and a list under {expected}, found {_json_type(payload)}",
            file=file,
        )
    present = [key for key in RECOMMENDATION_LIST_KEYS if key in payload]
    if not present:
        raise MissingListKeyError(
            f"no recommendation list: expected key {expected}, found keys {_key_list(payload)}", file=file
        )
    lists = {key: _list_value(payload[key], key, file) for key in present}
    filled = [key for key, items in lists.items() if items]
    if len(filled) > 1:
        counts = ", ".join(f"'{key}' has {len(lists[key])}" for key in filled)
        raise SourceError(f"ambiguous recommendation list: both keys hold records ({counts})", file=file)
    key = filled[0] if filled else present[0]
    items = lists[key]
    _check_count(payload.get("countTotal"), "countTotal" in payload, key, len(items), file)
    return items


def _list_value(value: object, key: str, file: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SourceError(f"'{key}' must be a JSON array, found {_json_type(value)}", file=file, field=key)
    return value


def _check_count(count: object, present: bool, key: str, length: int, file: str) -> None:
    if not present:
        return
    if type(count) is not int:
        raise SourceError(f"countTotal must be an integer, found {_json_type(count)}", file=file, field="countTotal")
    if count != length:
        raise SourceError(
            f"truncated payload: countTotal is {count} but '{key}' has {length} records", file=file, field="countTotal"
        )


def _text(value: object) -> str | None:
    """A JSON value as the text the wire table holds (numbers and booleans as JSON text)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


def _column(records: list[dict], wire: str) -> pa.Array:
    values = [record.get(wire) for record in records]
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # a number, boolean or nested value: rare, so a second pass
        return pa.array([_text(v) for v in values], pa.string())


def wire_table(spec: RawSpec, records: list, file: str) -> pa.Table:
    """One text column per wire field of `spec` (absent → null) plus `_record`, the position."""
    bad = next((i for i, record in enumerate(records) if type(record) is not dict), None)
    if bad is not None:
        raise SourceError(f"record is not a JSON object (found {_json_type(records[bad])})", file=file, record=bad)
    columns = {column.wire: _column(records, column.wire) for column in spec.columns}
    columns[RECORD_COLUMN] = pa.array(np.arange(len(records), dtype=np.int64))
    return pa.table(columns)


def _parse(data: bytes, file: str) -> object:
    try:
        return orjson.loads(data[len(_UTF8_BOM) :] if data.startswith(_UTF8_BOM) else data)
    except orjson.JSONDecodeError as error:
        raise SourceError(f"invalid JSON: {error}", file=file) from None


def _records(spec: RawSpec, parsed: object, file: str) -> list:
    if spec.file == RECOMMENDATIONS_FILE:
        return recommendation_items(parsed, file)
    if not isinstance(parsed, list):
        raise SourceError(f"expected a JSON array of records, found {_json_type(parsed)}", file=file)
    return parsed


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
    so they always describe the same data. Make a new instance to see later changes.
    """

    def __init__(self, directory: Path | str):
        self.directory = Path(directory).expanduser().absolute()
        self.description = f"files: {self.directory}"
        self._data: dict[str, bytes] | None = None
        self._extracted: dict[str, WireInput] | None = None

    def __repr__(self) -> str:
        return f"FileSource({str(self.directory)!r})"

    def path(self, name: str) -> Path:
        return self.directory / RAW_SPECS[name].file

    def fingerprint(self) -> str:
        digest = hashlib.sha256(_FINGERPRINT_VERSION)
        for name, data in self._read().items():
            file = RAW_SPECS[name].file.encode()
            digest.update(len(file).to_bytes(8, "big") + file + len(data).to_bytes(8, "big"))
            digest.update(data)
        return digest.hexdigest()

    def extract(self) -> dict[str, WireInput]:
        if self._extracted is None:
            self._extracted = {name: self._extract_one(name, data) for name, data in self._read().items()}
        return self._extracted

    def exported_at(self) -> datetime:
        """When the export was written: the oldest modification time of its four files."""
        self._check_present()
        oldest = min(self.path(name).stat().st_mtime for name in RAW_SPECS)
        return datetime.fromtimestamp(oldest, UTC)

    def _extract_one(self, name: str, data: bytes) -> WireInput:
        spec, file = RAW_SPECS[name], str(self.path(name))
        try:
            records = _records(spec, _parse(data, file), file)
        except MissingListKeyError as error:  # the input is unusable as a whole: a blocking check says so
            return WireInput(wire_table(spec, [], file), file, problems=(str(error),))
        return WireInput(wire_table(spec, records, file), file)

    def _read(self) -> dict[str, bytes]:
        if self._data is None:
            self._check_present()
            self._data = {name: self._read_one(name) for name in RAW_SPECS}
        return self._data

    def _check_present(self) -> None:
        expected = ", ".join(EXPECTED_FILES)
        if not self.directory.is_dir():
            raise SourceError(f"export folder not found; it must hold {expected}", file=str(self.directory))
        odd = [(spec.file, _kind(self.directory / spec.file)) for spec in RAW_SPECS.values()]
        odd = [(file, kind) for file, kind in odd if kind not in ("a regular file", "missing")]
        if odd:  # never opened: reading a FIFO would wait for a writer for ever
            raise SourceError(
                f"{', '.join(f'{file} is {kind}' for file, kind in odd)}, not a regular file; the export must be "
                f"the files themselves in {self.directory}", file=str(self.directory / odd[0][0]),
            )
        missing = [spec.file for spec in RAW_SPECS.values() if not (self.directory / spec.file).is_file()]
        if missing:
            raise SourceError(
                f"missing export file(s) {', '.join(missing)} in {self.directory}; expected all of {expected}",
                file=str(self.directory / missing[0]),
            )

    def _read_one(self, name: str) -> bytes:
        path = self.path(name)
        try:
            return path.read_bytes()
        except OSError as error:
            raise SourceError(f"cannot read export file: {error.strerror or error}", file=str(path)) from None
