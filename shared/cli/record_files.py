"""Records from CSV and JSONL files, for `python -m shared enqueue`, with errors that name line and column.

CSV (UTF-8, header row required): each row is one record of `--table`.
- `column` -> data[column], sent as text; `column:int`, `column:number`, `column:bool`, `column:text` convert
  (an empty cell is left out, so it does not blank the column in Dataverse; `--empty-as-null` sends null);
- `navigation@table.column` -> a lookup by alternate key, e.g. `parentcustomerid_account@account.accountnumber`
  (several columns with the same navigation property make a multi-column key);
- `--key col[,col]` names the key columns (default: the table's only configured alternate key, or its primary
  id column, when the header has it).
JSONL: one JSON object per line, either a contract record (it has `key`, `data` or `table`; `--table`,
`--environment`, `--operation` fill what it leaves out) or a flat row of columns treated like a CSV row with JSON
types. Every record gets `source_id` "<file name>:<line>", so dead letters point back to the file.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from shared.config.settings import EnvironmentConfig
from shared.sync.catalog import primary_id_column
from shared.sync.problems import join_path

TYPES = ("text", "int", "number", "bool")
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


class FileProblem(ValueError):
    """A problem in the file itself (encoding, header, options) that stops reading."""


@dataclass(frozen=True)
class LineError:
    line: int
    column: str | None  # CSV column header / JSON member, or None for the whole line
    message: str

    def describe(self, file: str) -> str:
        where = f"{file}:{self.line}" + (f": column {self.column!r}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass
class FileRecords:
    """The records of a file, each with the line it starts on; errors found while reading."""

    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # record path prefix -> source column, for errors


@dataclass(frozen=True)
class RecordDefaults:
    table: str | None
    environment: str | None = None
    operation: str | None = None
    key_columns: tuple[str, ...] | None = None
    empty_as_null: bool = False
    from_line: int = 1


@dataclass(frozen=True)
class _Column:
    header: str
    name: str  # column logical name, or navigation property for a lookup
    kind: str  # a TYPES entry
    lookup_table: str | None = None
    lookup_column: str | None = None


def read_records(path: Path, defaults: RecordDefaults, environment: EnvironmentConfig | None) -> FileRecords:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, defaults, environment)
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(path, defaults, environment)
    raise FileProblem(f"{path.name}: unsupported file type {suffix or '(none)'}; use .csv or .jsonl")


# --- CSV --------------------------------------------------------------------------------------------------------


def _read_csv(path: Path, defaults: RecordDefaults, environment: EnvironmentConfig | None) -> FileRecords:
    if defaults.table is None:
        raise FileProblem("--table is required for CSV files")
    out = FileRecords()
    with _open(path) as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise FileProblem(f"{path.name} is empty: a header row is required") from None
        except csv.Error as exc:
            raise FileProblem(f"{path.name}:1: {exc}") from None
        columns = _columns(header)
        key_columns = _key_columns(defaults, [c.name for c in columns if c.lookup_table is None], environment)
        out.columns = _column_paths(columns, key_columns)
        line = reader.line_num + 1
        try:
            for row in reader:
                start, line = line, reader.line_num + 1
                if start < defaults.from_line or not any(cell.strip() for cell in row):
                    continue
                _csv_row(
                    row,
                    start,
                    columns=columns,
                    key_columns=key_columns,
                    defaults=defaults,
                    file_name=path.name,
                    out=out,
                )
        except csv.Error as exc:
            raise FileProblem(f"{path.name}:{reader.line_num}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise FileProblem(f"{path.name}: not UTF-8 near byte {exc.start}") from None
    return out


def _columns(header: Sequence[str]) -> list[_Column]:
    seen: set[str] = set()
    columns: list[_Column] = []
    for position, raw in enumerate(header, start=1):
        text = raw.strip()
        if not text:
            raise FileProblem(f"header column {position} is empty")
        if text in seen:
            raise FileProblem(f"header column {position} {text!r} appears twice")
        seen.add(text)
        columns.append(_column(text))
    return columns


def _column(text: str) -> _Column:
    if "@" in text:
        navigation, _, target = text.partition("@")
        table, _, column = target.partition(".")
        if not (navigation and table and column):
            raise FileProblem(f"header {text!r}: a lookup column is written navigation@table.column")
        return _Column(text, navigation, "text", table, column)
    name, _, kind = text.partition(":")
    kind = kind or "text"
    if kind not in TYPES:
        raise FileProblem(f"header {text!r}: unknown type {kind!r} (use {', '.join(TYPES)})")
    return _Column(text, name, kind)


def _key_columns(defaults: RecordDefaults, names: list[str], environment: EnvironmentConfig | None) -> tuple[str, ...]:
    if defaults.key_columns:
        missing = [c for c in defaults.key_columns if c not in names]
        if missing:
            raise FileProblem(f"--key column(s) {', '.join(missing)} not in the header")
        return defaults.key_columns
    if defaults.operation == "create":
        return ()
    table = environment.tables.get(defaults.table or "") if environment else None
    if table is not None:
        present = [tuple(k) for k in table.alternate_keys if all(c in names for c in k)]
        if len(present) == 1:
            return present[0]
        primary = primary_id_column(defaults.table or "", table)
        if not present and primary in names:
            return (primary,)
    raise FileProblem("name the key columns with --key col[,col] (no single configured alternate key in the header)")


def _column_paths(columns: list[_Column], key_columns: tuple[str, ...]) -> dict[str, str]:
    paths: dict[str, str] = {}
    for column in columns:
        if column.lookup_table is not None:
            paths[join_path("lookups", column.name, "key", column.lookup_column or "")] = column.header
            paths[join_path("lookups", column.name)] = column.header
        elif column.name in key_columns:
            paths[join_path("key", column.name)] = column.header
        else:
            paths[join_path("data", column.name)] = column.header
    return paths


def _csv_row(
    row: list[str],
    line: int,
    *,
    columns: list[_Column],
    key_columns: tuple[str, ...],
    defaults: RecordDefaults,
    file_name: str,
    out: FileRecords,
) -> None:
    if len(row) != len(columns):
        out.errors.append(LineError(line, None, f"{len(row)} cells, but the header has {len(columns)} columns"))
        return
    record = _new_record(defaults, file_name, line)
    failed = False
    for column, cell in zip(columns, row, strict=True):
        value = _convert(column, cell, defaults.empty_as_null)
        if isinstance(value, LineError):
            out.errors.append(LineError(line, column.header, value.message))
            failed = True
        elif value is not _SKIP:
            _place(record, column, value, key_columns)
    if not failed:
        out.records.append(record)
        out.lines.append(line)


_SKIP = object()


def _convert(column: _Column, cell: str, empty_as_null: bool) -> Any:
    if not cell.strip():
        return None if empty_as_null and column.lookup_table is None else _SKIP
    converter = _CONVERTERS.get(column.kind)
    if converter is None:
        return cell  # text is sent as is, spaces included
    try:
        return converter(cell.strip())
    except ValueError as exc:
        return LineError(0, column.header, f"{cell.strip()[:40]!r} is not {exc}")


def _boolean(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError("a boolean (true/false, yes/no, 1/0)")


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("an integer") from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("a number") from None
    if not math.isfinite(value):
        raise ValueError("a finite number")
    return value


_CONVERTERS = {"int": _integer, "number": _number, "bool": _boolean}


def _place(record: dict[str, Any], column: _Column, value: Any, key_columns: tuple[str, ...]) -> None:
    if column.lookup_table is not None:
        lookup = record.setdefault("lookups", {}).setdefault(column.name, {"table": column.lookup_table, "key": {}})
        lookup["key"][column.lookup_column] = value
    elif column.name in key_columns:
        record.setdefault("key", {})[column.name] = value
    else:
        record.setdefault("data", {})[column.name] = value


def _new_record(defaults: RecordDefaults, file_name: str, line: int) -> dict[str, Any]:
    return _with_defaults({"table": defaults.table}, defaults, file_name, line)


def _with_defaults(record: dict[str, Any], defaults: RecordDefaults, file_name: str, line: int) -> dict[str, Any]:
    """What the record leaves out, from the command's options; `source_id` points back to the file's line."""
    if defaults.environment:
        record.setdefault("environment", defaults.environment)
    if defaults.operation:
        record.setdefault("operation", defaults.operation)
    record.setdefault("source_id", f"{file_name[:200]}:{line}")
    return record


# --- JSONL ------------------------------------------------------------------------------------------------------


def _read_jsonl(path: Path, defaults: RecordDefaults, environment: EnvironmentConfig | None) -> FileRecords:
    out = FileRecords()
    key_columns: tuple[str, ...] | None = None
    with _open(path) as handle:
        try:
            for number, text in enumerate(handle, start=1):
                if number < defaults.from_line or not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    out.errors.append(LineError(number, f"character {exc.colno}", f"invalid JSON: {exc.msg}"))
                    continue
                except RecursionError:
                    out.errors.append(LineError(number, None, "JSON nested too deeply"))
                    continue
                if not isinstance(value, dict):
                    out.errors.append(LineError(number, None, "each line must be a JSON object"))
                    continue
                if _is_contract_record(value):
                    record = _complete(value, defaults, path.name, number, out)
                else:
                    if key_columns is None:
                        key_columns = _key_columns(defaults, [k for k in value if "@" not in k], environment)
                    record = _flat_row(
                        value, number, defaults=defaults, key_columns=key_columns, file_name=path.name, out=out
                    )
                if record is not None:
                    out.records.append(record)
                    out.lines.append(number)
        except UnicodeDecodeError as exc:
            raise FileProblem(f"{path.name}: not UTF-8 near byte {exc.start}") from None
    return out


def _is_contract_record(value: Mapping[str, Any]) -> bool:
    return any(member in value for member in ("key", "data", "table", "lookups"))


def _complete(
    value: dict[str, Any], defaults: RecordDefaults, file_name: str, line: int, out: FileRecords
) -> dict[str, Any] | None:
    record = dict(value)
    if defaults.table is not None and record.setdefault("table", defaults.table) != defaults.table:
        out.errors.append(LineError(line, "table", f"{record['table']!r} differs from --table {defaults.table}"))
        return None
    return _with_defaults(record, defaults, file_name, line)


def _flat_row(
    value: dict[str, Any],
    line: int,
    *,
    defaults: RecordDefaults,
    key_columns: tuple[str, ...],
    file_name: str,
    out: FileRecords,
) -> dict[str, Any] | None:
    if defaults.table is None:
        out.errors.append(LineError(line, None, "a flat row needs --table"))
        return None
    record = _new_record(defaults, file_name, line)
    for name, cell in value.items():
        try:
            column = _column(name) if "@" in name else _Column(name, name, "text")
        except FileProblem as exc:
            out.errors.append(LineError(line, name, str(exc)))
            return None
        if cell is None and column.lookup_table is not None:
            continue
        _place(record, column, cell, key_columns)
    return record


def _open(path: Path) -> TextIO:
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise FileProblem(f"cannot read {path}: {exc.strerror}") from None


def column_for(path: str, columns: Mapping[str, str]) -> str | None:
    """The source column of a record path (`data.name` -> `name`), for error messages."""
    candidates = [p for p in columns if path == p or path.startswith(p + ".") or path.startswith(p + "[")]
    return columns[max(candidates, key=len)] if candidates else None
