"""Municipal file source: PX / CSV / XLSX files dropped into ``<data_dir>/inbox/commuting/``.

The catalogue's ``files:`` entries (dicts from the YAML, or ``regionstat.catalogue.FileSource`` objects) say which
files an entry takes (``pattern``, a glob on the file name, matched case-insensitively), which raw table they feed,
how source columns map to target columns (``columns``), which codes are valid (``codes``, checked by the GX suite)
and, optionally, ``limits`` overriding :data:`DEFAULT_LIMITS`.

* ``scan_inbox(inbox_dir, entries) -> [(path, entry | FileSourceError), ...]``: every non-hidden directory entry,
  looked at with ``lstat`` only. Symlinks, FIFOs, sockets, devices and directories are refused
  (:class:`RefusedFileError`) without being opened or followed. Office lock files (``~$*``) and partial downloads
  (``*.part``, ``*.tmp``, ``*.crdownload``) are skipped.
* ``read_file(path, entry) -> FileRead`` (table + detected encoding); ``read_file_source`` returns just the table,
  in the landing shape for file sources: the entry's target columns (``string``, in the order of the ``columns``
  mapping), ``value`` (float64, null where missing) and ``status`` (string: the PxWeb symbol such as ``..``/``-``,
  null where a number). Every problem is a :class:`FileSourceError` whose message is one line quoting at most a
  short, escaped snippet of the file's content.

Refused as a whole (the caller quarantines the file): a file over ``max_file_bytes``, more than ``max_rows`` data
rows, a CSV field over ``max_field_chars``, an XLSX whose members unpack (as declared in the zip directory, which
bounds what zipfile will inflate) to more than ``max_xlsx_unpacked_bytes``, a header without data rows, any control
character (NUL, CR inside a field, C1 codes...) in a header or cell.

Column rules (schema drift is an error, never a silent change):
  - every source column declared in ``columns`` must be present, else ``FileSourceError`` naming it;
  - a source column that is not declared is an error too (a PX variable would multiply the rows; a CSV/XLSX
    column would be silently dropped), except ``status`` in CSV/XLSX, which is taken as the status column.
  - PX: the source columns are the variable names as in the file (``typ``, ``stadsdel``, ...), holding value
    codes (``CODES``); the value comes from DATA. The file's own date (``LAST-UPDATED``, else ``CREATION-DATE``)
    is its upstream vintage: ``FileRead.updated``; CSV and XLSX files state none (None: vintage unknown).
    CSV/XLSX: the mapping must map some column to ``value``.

CSV: read as a stream (memory stays bounded by the table being built, not the file). Encoding: UTF-8 with or
without BOM; otherwise Windows-1252 (what Excel's "CSV" export writes on Swedish Windows; it agrees with Latin-1 on
every letter), or Latin-1 if the file holds a byte Windows-1252 leaves undefined. UTF-16 is refused. The detected
encoding is returned (and recorded in the landing manifest). The delimiter (``,``, ``;`` or tab) is sniffed from
the header line, which must be the first non-empty line. Numbers may use a decimal comma when the delimiter is not a
comma, and spaces as thousands separators. An empty value cell is a null value with no status; the PxWeb symbols
``.``, ``..``, ..., ``-`` go to ``status``; any other text is an error naming the file, line and column.

PxWeb CSV exports (entry ``format: pxweb_csv``, SCB's "comma-separated with heading"): the same CSV reading
(encoding, delimiter, limits, exact line numbers from the csv module), after up to five single-field title lines;
header columns that are periods (``2018``, ``2024K4``, ``2024M01``) are value columns, melted into the entry's
``period_column``; any other undeclared column is schema drift.

After reading, every format: ``labels`` split a ``"<code> <label>"`` cell at its first white space (the code
stays in the mapped column, the label goes to the named column), ``recode`` maps values (``men and women`` ->
``total``), ``constants`` add a column with one value (``basis: day``); for ``pxweb_csv`` the ``codes`` are checked
right here, so an unknown SNI label or a missing code prefix names the file line and the cell (other entries'
codes are checked by the GX suite). Columns are put in ``FileSource.target_columns`` order.

XLSX: the first sheet. The header row is the first row, among the first 10, that holds every declared source
column; title/note rows above it are skipped (documented choice: handled, not rejected). If no such row exists the
error names the missing columns as found in the best-matching row. Empty rows are skipped. Codes typed as numbers
in Excel come through as their integer text (``2021``, not ``2021.0``); leading zeros lost by Excel (``0580`` ->
``580``) cannot be recovered, so format code columns as text.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import fnmatch
import hashlib
import io
import itertools
import os
import re
import shutil
import stat
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from extract.px import STANDARD_SYMBOLS, read_px
from regionstat.batches import atomic_path
from regionstat.catalogue import CATALOGUE_PATH, FileSource, load_catalogue, load_regions
from regionstat.errors import CatalogueError, FileSourceError

__all__ = [
    "CATALOGUE_PATH",
    "DEFAULT_LIMITS",
    "FileLimits",
    "FileRead",
    "RefusedFileError",
    "discover",
    "file_limits",
    "file_sha256",
    "load_file_entries",
    "matching_entries",
    "read_file",
    "read_file_source",
    "scan_inbox",
    "snippet",
]

# A catalogue ``files:`` entry: the YAML dict or an ``regionstat.catalogue.FileSource`` (same fields).
Entry = Any
_SKIP_PREFIXES = (".", "~$")
_SKIP_SUFFIXES = (".part", ".tmp", ".crdownload")
_XLSX_HEADER_SCAN = 10
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_NUMBER_FULL = f"^{_NUMBER.pattern}$"  # the same, for Arrow's (RE2) full-cell match
_THOUSANDS = re.compile(r"(?<=\d)[ \u00a0\u202f](?=\d{3}\b)")
#: Unicode category Cc: C0 controls (NUL, tab, CR, LF, ...), DEL and the C1 controls Latin-1 maps 0x80-0x9f to.
_CONTROL = "[\\x00-\\x1f\\x7f-\\x9f]"
_CONTROL_RE = re.compile(_CONTROL)
_CHUNK_ROWS = 65_536
_READ_BYTES = 1 << 20
#: A header line longer than this is not a header (a binary file, or a file without line breaks).
_MAX_HEADER_CHARS = 1 << 20
#: Single-field lines (a PxWeb export's title, blank lines) skipped above a pxweb_csv header, at most.
_MAX_TITLE_LINES = 5
#: A period header column of a pxweb_csv export: a year, a quarter (2024K4) or a month (2024M01).
_PERIOD = re.compile(r"\d{4}(?:K[1-4]|M(?:0[1-9]|1[0-2]))?")


@dataclass(frozen=True)
class FileLimits:
    """What one inbox file may cost; beyond it the file is quarantined before it can exhaust memory or disk."""

    max_file_bytes: int = 512 * 2**20
    max_rows: int = 10_000_000
    max_field_chars: int = 131_072  # Python's csv default: a longer field is not a code or a number
    max_xlsx_unpacked_bytes: int = 128 * 2**20


DEFAULT_LIMITS = FileLimits()


@dataclass(frozen=True)
class FileRead:
    """A file read into the landing shape, and the text encoding it was decoded with (None for XLSX)."""

    table: pa.Table
    encoding: str | None
    lines: pa.ChunkedArray | None = None  # source line per row (CSV), for messages naming a row
    #: the upstream vintage the file states itself (PX ``LAST-UPDATED``/``CREATION-DATE``) as ISO-8601 UTC, and
    #: where it was read (``LAST-UPDATED="20260108" (line 15)``); None for files that carry no date (CSV, XLSX)
    updated: str | None = None
    updated_from: str | None = None


class RefusedFileError(FileSourceError):
    """An inbox entry that is not a regular file (symlink, FIFO, directory, ...): refused, never opened."""


def snippet(text: object, limit: int = 40) -> str:
    """A short, escaped quotation of file content for a one-line message (control characters shown as escapes)."""
    s = str(text)
    cut = len(s) > limit
    s = s[:limit]
    quoted = repr(s)
    return quoted + ("..." if cut else "")


def load_file_entries(catalogue_path: str | os.PathLike[str] | None = None) -> list[FileSource]:
    """The catalogue's ``files:`` entries (its typed model), checked for what this module needs."""
    catalogue = load_catalogue(catalogue_path)
    for i, e in enumerate(catalogue.files):
        if not isinstance(e.columns, dict) or not e.columns:
            raise CatalogueError(f"catalogue files[{i}] ({e.name}) 'columns' must be a non-empty mapping")
        file_limits(e)  # unknown or non-positive limits are a catalogue error, found at load time
    return list(catalogue.files)


def _f(entry: Any, key: str, default: Any = KeyError) -> Any:
    """A field of a catalogue entry: a dict from the YAML or an ``regionstat.catalogue.FileSource``."""
    if isinstance(entry, Mapping):
        if default is KeyError:
            return entry[key]
        return entry.get(key, default)
    if default is KeyError:
        return getattr(entry, key)
    return getattr(entry, key, default)


def file_limits(entry: Entry) -> FileLimits:
    """The entry's ``limits`` over :data:`DEFAULT_LIMITS`."""
    given = _f(entry, "limits", None) or {}
    known = set(FileLimits.__dataclass_fields__)
    unknown = sorted(set(given) - known)
    if unknown:
        raise CatalogueError(
            f"files entry {_f(entry, 'name')!r}: unknown limit(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    bad = [k for k, v in given.items() if not isinstance(v, int) or isinstance(v, bool) or v <= 0]
    if bad:
        raise CatalogueError(f"files entry {_f(entry, 'name')!r}: limit(s) {', '.join(bad)} must be positive integers")
    return FileLimits(**given)


# -- opening without following links --------------------------------------------------------------------------


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _refusal(path: Path, mode: int) -> RefusedFileError:
    return RefusedFileError(str(path), f"is {_kind(mode)}, not a regular file: refused without opening or following it")


@contextmanager
def _open_regular(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a regular file for reading; a symlink or special file is refused (O_NOFOLLOW, O_NONBLOCK, fstat)."""
    p = str(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise FileSourceError(p, "file does not exist") from exc
    except OSError as exc:
        try:
            mode = os.lstat(p).st_mode
        except OSError:
            mode = 0
        if mode and not stat.S_ISREG(mode):
            raise _refusal(Path(p), mode) from exc
        raise FileSourceError(p, f"cannot open: {exc.strerror or type(exc).__name__}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refusal(Path(p), mode)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a regular file's bytes; for anything else a stable digest of its ``lstat`` identity.

    A symlink or FIFO is never opened, yet still gets an identity, so that once refused it is not refused again
    on every run.
    """
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
        ident = f"{_kind(st.st_mode)}\0{Path(path).name}\0{target}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}"
        return hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()
    h = hashlib.sha256()
    with _open_regular(path) as fh:
        for chunk in iter(lambda: fh.read(_READ_BYTES), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_regular_file(source: str | os.PathLike[str], target: Path) -> None:
    """Stream a regular file (never a symlink's target) to ``target`` atomically (temp file + rename)."""
    with atomic_path(target) as tmp, _open_regular(source) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, _READ_BYTES)


def _matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def matching_entries(name: str, entries: Sequence[Entry]) -> list[Entry]:
    """The catalogue entries whose pattern a file name matches (case-insensitively); one, for a good drop."""
    return [e for e in entries if _matches(name, _f(e, "pattern"))]


def scan_inbox(
    inbox_dir: str | os.PathLike[str], entries: Sequence[Entry]
) -> list[tuple[Path, Entry | FileSourceError]]:
    """Every entry of the inbox (sorted by name) with its one matching catalogue entry, or the error saying why not.

    Lenient on purpose: one stray file must not stop the others; the caller quarantines it. Only ``lstat`` is
    used here: a symlink or special file is reported as :class:`RefusedFileError`, never opened.
    """
    inbox = Path(inbox_dir)
    if not inbox.is_dir():
        return []
    patterns = ", ".join(f"{_f(e, 'pattern')} ({_f(e, 'name')})" for e in entries)
    out: list[tuple[Path, Entry | FileSourceError]] = []
    with os.scandir(inbox) as it:
        found = sorted(it, key=lambda d: d.name)
    for d in found:
        name = d.name
        if name.startswith(_SKIP_PREFIXES) or name.lower().endswith(_SKIP_SUFFIXES):
            continue
        path = inbox / name
        mode = d.stat(follow_symlinks=False).st_mode
        if not stat.S_ISREG(mode):
            out.append((path, _refusal(path, mode)))
            continue
        hits = matching_entries(name, entries)
        if not hits:
            out.append(
                (path, FileSourceError(str(path), f"matches no catalogue file pattern; known patterns: {patterns}"))
            )
        elif len(hits) > 1:
            names = ", ".join(f"{_f(e, 'pattern')} ({_f(e, 'name')})" for e in hits)
            out.append((path, FileSourceError(str(path), f"matches more than one catalogue file pattern: {names}")))
        else:
            out.append((path, hits[0]))
    return out


def discover(inbox_dir: str | os.PathLike[str], entries: Sequence[Entry]) -> list[tuple[Path, Entry]]:
    """Pair every regular file in the inbox with the one catalogue entry whose pattern it matches; strict.

    Directories are left out (they are not drops); any other refusal or mismatch raises.
    """
    out: list[tuple[Path, Entry]] = []
    for path, hit in scan_inbox(inbox_dir, entries):
        if isinstance(hit, RefusedFileError) and path.is_dir() and not path.is_symlink():
            continue
        if isinstance(hit, FileSourceError):
            raise hit
        out.append((path, hit))
    return out


# -- value cells ---------------------------------------------------------------------------------------------


def _parse_value(cell: Any, *, decimal_comma: bool) -> tuple[float | None, str | None] | None:
    """A value cell -> (value, status); None when it is not a number, a symbol or empty."""
    if cell is None:
        return None, None
    if isinstance(cell, bool):
        return None
    if isinstance(cell, int | float):
        return float(cell), None
    s = str(cell).strip().strip('"').strip()
    if s == "":
        return None, None
    if s in STANDARD_SYMBOLS:
        return None, s
    s = _THOUSANDS.sub("", s)
    if decimal_comma and "," in s and "." not in s:
        s = s.replace(",", ".")
    if _NUMBER.fullmatch(s):
        return float(s), None
    return None


def _code_text(cell: Any) -> str | None:
    if cell is None:
        return None
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, bool):
        return str(cell)
    s = str(cell).strip()
    return s or None


# -- column mapping ----------------------------------------------------------------------------------------


def _targets(entry: Entry) -> list[str]:
    return [t for t in _f(entry, "columns").values() if t not in ("value", "status")]


def _names(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(snippet(n) for n in names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _check_columns(
    path: str, entry: Entry, found: Sequence[str], *, kind: str, line: int | None, allowed_extra: Iterable[str] = ()
) -> None:
    bad = [c for c in found if _CONTROL_RE.search(c)]
    if bad:
        raise FileSourceError(path, f"header {kind} {snippet(bad[0])} holds a control character", line=line)
    declared = list(_f(entry, "columns"))
    missing = [c for c in declared if c not in found]
    if missing:
        raise FileSourceError(
            path,
            f"schema drift: declared source {kind} {', '.join(repr(c) for c in missing)} missing "
            f"(the file has {_names(found)}; entry {_f(entry, 'name')!r})",
            line=line,
        )
    extra = [c for c in found if c not in _f(entry, "columns") and c not in allowed_extra]
    if extra:
        raise FileSourceError(
            path,
            f"schema drift: undeclared source {kind} {_names(extra)} "
            f"(declare it in the catalogue entry {_f(entry, 'name')!r} columns mapping)",
            line=line,
        )


class _TableBuilder:
    """Rows -> landing table, converted to Arrow every ``_CHUNK_ROWS`` rows so Python lists stay small.

    Each chunk is checked for control characters while its rows' source lines are at hand (for the message).
    With ``text_cells`` (CSV: every cell is a string) a chunk is converted column-wise with Arrow compute, and
    only the rare value cell that is not a plain number, a symbol or empty goes through :func:`_parse_value`.
    """

    def __init__(
        self,
        path: str,
        entry: Entry,
        header: list[str],
        *,
        decimal_comma: bool,
        limits: FileLimits,
        text_cells: bool = False,
        periods: Sequence[str] = (),
    ):
        mapping = _f(entry, "columns")
        pos = {c: i for i, c in enumerate(header)}
        self.path, self.limits, self.decimal_comma, self.text_cells = path, limits, decimal_comma, text_cells
        self.targets = _targets(entry)
        self.dims = [(t, pos[s]) for s, t in mapping.items() if t not in ("value", "status")]
        #: (period or None, position) of every value column: one for a long table, one per period when melting
        self.period_column: str | None = _f(entry, "period_column", None) if periods else None
        if periods:
            if not text_cells:
                raise FileSourceError(path, "period columns are melted only from CSV files")
            self.value_columns: list[tuple[str | None, int]] = [(p, pos[p]) for p in periods]
            self.spos = None
        else:
            value_src = [s for s, t in mapping.items() if t == "value"]
            if len(value_src) != 1:
                raise FileSourceError(
                    path, f"catalogue entry {_f(entry, 'name')!r} must map exactly one column to 'value'"
                )
            status_src = next(
                (s for s, t in mapping.items() if t == "status"), "status" if "status" in header else None
            )
            self.value_columns = [(None, pos[value_src[0]])]
            self.spos = pos[status_src] if status_src is not None else None
        self.header = header
        self.width = len(header)
        self.rows = 0
        self.batches: list[pa.RecordBatch] = []
        self.line_batches: list[pa.Array] = []
        self._reset()

    def _reset(self) -> None:
        self.cols: dict[str, list[str | None]] = {t: [] for t in self.targets}
        self.values: list[float | None] = []
        self.status: list[str | None] = []
        self.lines: list[int] = []
        self.raw: list[Sequence[str]] = []

    def add(self, line: int, row: Sequence[Any]) -> None:
        if len(row) != self.width:
            raise FileSourceError(self.path, f"row has {len(row)} fields, the header has {self.width}", line=line)
        self.rows += 1
        if self.rows > self.limits.max_rows:
            raise FileSourceError(
                self.path, f"more than {self.limits.max_rows:,} data rows (limit max_rows)", line=line
            )
        self.lines.append(line)
        if self.text_cells:
            self.raw.append(row)
        else:
            self._add_cells(line, row)
        if len(self.lines) >= _CHUNK_ROWS:
            self.flush()

    def _value_error(self, cell: Any, line: int, vpos: int) -> FileSourceError:
        return FileSourceError(
            self.path,
            f"column {self.header[vpos]!r}: {snippet(cell)} is not a number "
            f"(nor a symbol {', '.join(STANDARD_SYMBOLS)})",
            line=line,
        )

    def _add_cells(self, line: int, row: Sequence[Any]) -> None:
        [(_, vpos)] = self.value_columns
        cell = row[vpos]
        parsed = _parse_value(cell, decimal_comma=self.decimal_comma)
        if parsed is None:
            raise self._value_error(cell, line, vpos)
        value, sym = parsed
        if self.spos is not None:
            st = _code_text(row[self.spos])
            sym = st if st is not None else sym
        for t, i in self.dims:
            self.cols[t].append(_code_text(row[i]))
        self.values.append(value)
        self.status.append(sym)

    def _values(self, column: Sequence[str], vpos: int) -> tuple[pa.Array, pa.Array]:
        """One value column's text cells -> (value, status), with Arrow compute; the odd cell by the Python rules."""
        cells = pa.array(column, type=pa.string())
        text = pc.utf8_trim_whitespace(pc.utf8_trim(pc.utf8_trim_whitespace(cells), '"'))
        is_symbol = pc.is_in(text, value_set=pa.array(STANDARD_SYMBOLS, type=pa.string()))
        is_number = pc.match_substring_regex(text, _NUMBER_FULL)
        other = pc.invert(pc.or_(pc.or_(pc.equal(text, ""), is_symbol), is_number))
        values = pc.cast(pc.if_else(is_number, text, pa.scalar(None, pa.string())), pa.float64())
        status = pc.if_else(is_symbol, text, pa.scalar(None, pa.string()))
        if pc.any(other).as_py():  # thousands separators, decimal commas, or garbage: the exact Python rules
            value_list, status_list = values.to_pylist(), status.to_pylist()
            for k in pc.indices_nonzero(other).to_pylist():
                parsed = _parse_value(column[k], decimal_comma=self.decimal_comma)
                if parsed is None:
                    raise self._value_error(column[k], self.lines[k], vpos)
                value_list[k], status_list[k] = parsed
            values = pa.array(value_list, type=pa.float64())
            status = pa.array(status_list, type=pa.string())
        return values, status

    def _text_columns(self) -> list[list[pa.Array]]:
        """The buffered text rows, column-wise, one array list per value column: codes trimmed (empty -> null),
        values parsed, status resolved, and (when melting) the period of that value column."""
        columns = list(zip(*self.raw, strict=True))

        def codes(i: int) -> pa.Array:
            trimmed = pc.utf8_trim_whitespace(pa.array(columns[i], type=pa.string()))
            return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)

        dims = [codes(i) for _, i in self.dims]
        out = []
        for period, vpos in self.value_columns:
            values, status = self._values(columns[vpos], vpos)
            if self.spos is not None:
                given = codes(self.spos)
                status = pc.if_else(pc.is_null(given), status, given)
            periods = [pa.array([period] * len(values), type=pa.string())] if period is not None else []
            out.append([*dims, *periods, values, status])
        return out

    @property
    def names(self) -> list[str]:
        period = [self.period_column] if self.period_column else []
        return [*self.targets, *period, "value", "status"]

    def flush(self) -> None:
        if not self.lines:
            return
        if self.text_cells:
            chunks = self._text_columns()
        else:
            arrays = [pa.array(self.cols[t], type=pa.string()) for t in self.targets]
            arrays += [pa.array(self.values, type=pa.float64()), pa.array(self.status, type=pa.string())]
            chunks = [arrays]
        names = self.names
        for arrays in chunks:
            _check_control(self.path, dict(zip(names, arrays, strict=True)), self.lines)
            self.batches.append(pa.RecordBatch.from_arrays(arrays, names=names))
            if self.period_column:  # only pxweb_csv codes are checked after reading (a long CSV's memory stays)
                self.line_batches.append(pa.array(self.lines, type=pa.int64()))
        self._reset()

    def line_numbers(self) -> pa.ChunkedArray | None:
        """The source line of every row of :meth:`table` (melted exports only), for messages about a row."""
        return pa.chunked_array(self.line_batches, type=pa.int64()) if self.period_column else None

    def table(self) -> pa.Table:
        self.flush()
        fields = [pa.field(t, pa.string()) for t in self.names if t not in ("value", "status")]
        fields += [pa.field("value", pa.float64()), pa.field("status", pa.string())]
        return pa.Table.from_batches(self.batches, schema=pa.schema(fields))


# -- readers -----------------------------------------------------------------------------------------------


def _read_px(fh: IO[bytes], path: str, entry: Entry) -> FileRead:
    px = read_px(fh.read(), name=path)
    table = px.to_arrow(use_codes=True)
    names = [v.name for v in px.variables]
    _check_columns(path, entry, names, kind="variable", line=None)
    mapping = _f(entry, "columns")
    bad = [s for s, t in mapping.items() if t in ("value", "status")]
    if bad:
        raise FileSourceError(
            path,
            f"catalogue entry {_f(entry, 'name')!r} maps PX variable(s) {bad} to "
            "value/status; PX values come from DATA",
        )
    arrays = {mapping[n]: table.column(n) for n in mapping}
    arrays["value"] = table.column("value")
    arrays["status"] = table.column("status")
    vintage = px.vintage()
    if vintage is None:
        return FileRead(pa.table(arrays), px.encoding)
    return FileRead(pa.table(arrays), px.encoding, updated=vintage.updated, updated_from=vintage.statement)


def _line_of(fh: IO[bytes], offset: int) -> int:
    """1-based line number of a byte offset (re-reads the file up to it, in chunks)."""
    fh.seek(0)
    line, left = 1, offset
    while left > 0:
        chunk = fh.read(min(_READ_BYTES, left))
        if not chunk:
            break
        line += chunk.count(b"\n")
        left -= len(chunk)
    return line


def _detect_encoding(fh: IO[bytes], path: str) -> str:
    """UTF-8 (``utf-8-sig`` with a BOM), else Windows-1252, else Latin-1; one streaming pass per candidate.

    Deterministic on purpose: a statistical detector guesses among dozens of code pages and may call a short
    Swedish file cp1250 or MacRoman; our producers write UTF-8 or Excel's Windows-1252.
    """
    fh.seek(0)
    head = fh.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileSourceError(path, "is UTF-16 (Excel 'Unicode text'); save the CSV as UTF-8", line=1)
    bom = head.startswith(codecs.BOM_UTF8)
    for encoding in ("utf-8", "cp1252"):
        fh.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        offset = 0
        try:
            for chunk in iter(lambda: fh.read(_READ_BYTES), b""):
                decoder.decode(chunk)
                offset += len(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            if bom:
                at = offset + exc.start
                raise FileSourceError(
                    path,
                    f"starts with a UTF-8 BOM but byte 0x{exc.object[exc.start]:02x} is not UTF-8 (mixed encodings)",
                    line=_line_of(fh, at),
                ) from exc
            continue
        return "utf-8-sig" if bom else encoding
    return "latin-1"  # decodes any byte; C1 controls it yields are refused like any control character


def _read_csv(fh: IO[bytes], path: str, entry: Entry, limits: FileLimits) -> FileRead:
    encoding = _detect_encoding(fh, path)
    fh.seek(0)
    text = io.TextIOWrapper(fh, encoding=encoding, newline="")
    try:
        line_no = 0
        head = ""
        while True:
            head = text.readline(_MAX_HEADER_CHARS)
            if head == "":
                raise FileSourceError(path, "no header line: the file holds only blank lines (or just a BOM)", line=1)
            line_no += 1
            if len(head) >= _MAX_HEADER_CHARS and not head.endswith(("\n", "\r")):
                raise FileSourceError(
                    path, f"first line is longer than {_MAX_HEADER_CHARS:,} characters: not a CSV header", line=line_no
                )
            if head.strip():
                break
        delimiter = max((";", ",", "\t"), key=head.count)
        pxweb = _f(entry, "format", "table") == "pxweb_csv"
        titles = 0
        while pxweb and len(next(csv.reader([head], delimiter=delimiter))) < 2 and titles < _MAX_TITLE_LINES:
            # PxWeb's "with heading" export may open with the table title (and a blank line): not the header
            titles += 1
            head = text.readline(_MAX_HEADER_CHARS)
            line_no += 1
            if head == "":
                raise FileSourceError(path, "no header line after the title line(s)", line=line_no)
            delimiter = max((";", ",", "\t"), key=head.count)
        header_line = line_no
        old_limit = csv.field_size_limit(limits.max_field_chars)
        try:
            header = [c.strip() for c in next(csv.reader([head], delimiter=delimiter))]
            ignored = tuple(_f(entry, "ignore", ()) or ())
            periods: list[str] = []
            if pxweb:
                mapped = set(_f(entry, "columns"))
                periods = [c for c in header if c not in mapped and c not in ignored and _PERIOD.fullmatch(c)]
                if not periods:
                    raise FileSourceError(
                        path,
                        f"no period column (a year such as 2018, or 2024K4, 2024M01) in the header "
                        f"{_names(header)}; entry {_f(entry, 'name')!r}",
                        line=header_line,
                    )
                allowed: tuple[str, ...] = (*periods, *ignored)
            else:
                allowed = ("status", *ignored)
            _check_columns(path, entry, header, kind="column", line=header_line, allowed_extra=allowed)
            builder = _TableBuilder(
                path,
                entry,
                header,
                decimal_comma=delimiter != ",",
                limits=limits,
                text_cells=True,
                periods=periods,
            )
            reader = csv.reader(text, delimiter=delimiter)
            start = header_line + 1
            try:
                for row in reader:
                    line = start
                    start = header_line + reader.line_num + 1
                    if not any(c.strip() for c in row):
                        continue
                    builder.add(line, row)
            except csv.Error as exc:
                line = header_line + reader.line_num
                if "field larger than field limit" in str(exc):
                    raise FileSourceError(
                        path,
                        f"a field is longer than {limits.max_field_chars:,} characters (limit max_field_chars)",
                        line=line,
                    ) from exc
                raise FileSourceError(path, f"malformed CSV: {snippet(exc, 80)}", line=line) from exc
        finally:
            csv.field_size_limit(old_limit)
    finally:
        text.detach()  # the caller owns (and closes) the binary handle
    return FileRead(builder.table(), encoding, builder.line_numbers())


def _check_xlsx_zip(fh: IO[bytes], path: str, limits: FileLimits) -> None:
    """Refuse a zip bomb before openpyxl inflates it: the declared sizes bound what zipfile will return."""
    try:
        with zipfile.ZipFile(fh) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise FileSourceError(path, f"cannot open as XLSX: not a valid zip archive ({snippet(exc, 60)})") from exc
    unpacked = sum(i.file_size for i in infos)
    if unpacked > limits.max_xlsx_unpacked_bytes:
        raise FileSourceError(
            path,
            f"XLSX unpacks to {unpacked / 2**20:,.0f} MiB, over the limit of "
            f"{limits.max_xlsx_unpacked_bytes / 2**20:,.0f} MiB (limit max_xlsx_unpacked_bytes; a zip bomb?)",
        )
    fh.seek(0)


def _read_xlsx(fh: IO[bytes], path: str, entry: Entry, limits: FileLimits) -> FileRead:
    import openpyxl  # imported lazily: only XLSX sources need it

    _check_xlsx_zip(fh, path, limits)
    try:
        wb = openpyxl.load_workbook(fh, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException for broken files
        raise FileSourceError(path, f"cannot open as XLSX: {type(exc).__name__}: {snippet(exc, 80)}") from exc
    try:
        if not wb.worksheets:
            raise FileSourceError(path, "workbook has no sheet", line=1)
        ws = wb.worksheets[0]
        nonempty = (
            (i, list(r))
            for i, r in enumerate(ws.iter_rows(values_only=True), start=1)
            if any(c is not None and str(c).strip() for c in r)
        )
        first = list(itertools.islice(nonempty, _XLSX_HEADER_SCAN))
        if not first:
            raise FileSourceError(path, f"first sheet {snippet(ws.title)} is empty", line=1)
        header_at = _xlsx_header(path, entry, ws.title, first)
        header_line, header_row = first[header_at]
        header = [_code_text(c) or "" for c in header_row]
        # Trailing unnamed, empty columns are formatting, not data.
        while header and header[-1] == "":
            header.pop()
        _check_columns(path, entry, header, kind="column", line=header_line, allowed_extra=("status",))
        width = len(header)
        builder = _TableBuilder(path, entry, header, decimal_comma=True, limits=limits)
        for line, r in itertools.chain(first[header_at + 1 :], nonempty):
            if any(c is not None and str(c).strip() for c in r[width:]):
                raise FileSourceError(path, f"row has values beyond the {width} header columns", line=line)
            builder.add(line, list(r[:width]) + [None] * (width - len(r)))
    finally:
        wb.close()
    return FileRead(builder.table(), None)


def _xlsx_header(path: str, entry: Entry, title: str, first: list[tuple[int, list[Any]]]) -> int:
    """Index (in ``first``) of the first row holding every declared source column; else a FileSourceError."""
    declared = list(_f(entry, "columns"))
    best: tuple[int, int, list[str]] | None = None
    for k, (line, r) in enumerate(first):
        names = [_code_text(c) or "" for c in r]
        hits = sum(1 for c in declared if c in names)
        if best is None or hits > best[0]:
            best = (hits, line, names)
        if hits == len(declared):
            return k
    assert best is not None
    _, line, names = best
    missing = [c for c in declared if c not in names]
    first_line, first_row = first[0]
    texts = [str(c).strip() for c in first_row if c is not None and str(c).strip()]
    hint = ""
    if len(texts) == 1 or first_line < line:
        hint = f"; row {first_line} looks like a title, not a header: {snippet(' | '.join(texts), 60)}"
    raise FileSourceError(
        path,
        f"schema drift: no header row with every declared source column in the first "
        f"{_XLSX_HEADER_SCAN} rows of sheet {snippet(title)}; missing {', '.join(repr(c) for c in missing)} "
        f"(best row has {_names([n for n in names if n])}){hint}",
        line=line,
    )


def _check_control(path: str, columns: Mapping[str, pa.Array | pa.ChunkedArray], lines: Sequence[int] | None) -> None:
    """Refuse any control character in a string cell, naming the column, the line (when known) and a snippet."""
    for name, column in columns.items():
        if not pa.types.is_string(column.type):
            continue
        hit = pc.fill_null(pc.match_substring_regex(column, _CONTROL), False)
        if pc.any(hit).as_py():
            i = pc.index(hit, True).as_py()
            line = lines[i] if lines is not None else None
            raise FileSourceError(
                path, f"column {name!r}: {snippet(column[i].as_py())} holds a control character", line=line
            )


def _as_file_source(entry: Entry) -> FileSource:
    return entry if isinstance(entry, FileSource) else FileSource(**entry)


#: A cell "<code> <label>": the code is everything up to the first white space.
_CODE_LABEL = r"^(?P<code>\S+)(?:\s+(?P<label>.*))?$"


def _known_codes(spec: Any) -> tuple[frozenset[str] | None, str | None, str]:
    """(allowed set, or a regex, and how to name them) for a catalogue ``codes`` value: a list or a reference."""
    if isinstance(spec, str):
        regions = [r.code for r in load_regions()]
        if spec == "region":
            return frozenset(regions), None, "an SCB region code (reference/regions.csv)"
        if spec == "district":
            munis = "|".join(c for c in regions if len(c) == 4)
            return None, rf"^(?:\d{{3}}|{munis})$", "a district (three digits) or municipality code"
        raise CatalogueError(f"unknown code reference {spec!r} (known: region, district)")
    known = [str(c) for c in spec]
    shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
    return frozenset(known), None, f"one of {shown}"


def _check_codes(path: str, entry: FileSource, table: pa.Table, raw: Mapping[str, Any], lines: Any) -> None:
    """Every code of the entry's ``codes`` is known; else one line naming the column, file line and cell."""
    source_of = {t: s for s, t in entry.columns.items()}
    for column, spec in (entry.codes or {}).items():
        if column not in table.column_names:
            continue
        allowed, regex, what = _known_codes(spec)
        values = table[column]
        if allowed is not None:
            ok = pc.is_in(values, value_set=pa.array(sorted(allowed), type=pa.string()))
        else:
            ok = pc.match_substring_regex(values, regex)
        bad = pc.invert(pc.fill_null(ok, False))
        if not pc.any(bad).as_py():
            continue
        i = pc.index(bad, True).as_py()
        cell = raw[column][i].as_py() if column in raw else values[i].as_py()
        code = values[i].as_py()
        split = f" (code {snippet(code)})" if column in raw and code != cell else ""
        raise FileSourceError(
            path,
            f"column {source_of.get(column, column)!r}: {snippet(cell)}{split} is not {what}: unknown {column} code",
            line=lines[i].as_py() if lines is not None else None,
        )


def _apply_entry(read: FileRead, path: str, entry: Entry) -> FileRead:
    """The entry's declared reshaping after reading: code/label split, recoding, code checks, constant columns."""
    fs = _as_file_source(entry)
    table = read.table
    if not (fs.labels or fs.recode or fs.constants or fs.format != "table"):
        return read
    raw: dict[str, Any] = {}
    columns = {name: table[name] for name in table.column_names}
    for code_column, label_column in fs.labels.items():
        raw[code_column] = cells = columns[code_column]
        parts = pc.extract_regex(cells, _CODE_LABEL)
        label = pc.struct_field(parts, "label")
        columns[code_column] = pc.struct_field(parts, "code")
        columns[label_column] = pc.if_else(pc.equal(label, ""), pa.scalar(None, pa.string()), label)
    for column, mapping in fs.recode.items():
        keys = pa.array([str(k) for k in mapping], type=pa.string())
        targets = pa.array([str(v) for v in mapping.values()], type=pa.string())
        raw.setdefault(column, columns[column])
        columns[column] = pc.coalesce(pc.take(targets, pc.index_in(columns[column], value_set=keys)), columns[column])
    for column, value in fs.constants.items():
        columns[column] = pa.chunked_array([pa.array([value] * table.num_rows, type=pa.string())])
    names = [*fs.target_columns, "value", "status"]
    out = pa.table({n: columns[n] for n in names})
    if fs.format == "pxweb_csv":
        _check_codes(path, fs, out, raw, read.lines)
    return dataclasses.replace(read, table=out)


def read_file(path: str | os.PathLike[str], entry: Entry) -> FileRead:
    """Read one inbox file per its catalogue entry into the landing shape, within the entry's limits."""
    p = str(path)
    suffix = Path(p).suffix.lower()
    if suffix not in (".px", ".csv", ".txt", ".xlsx", ".xlsm"):
        raise FileSourceError(p, f"unsupported file type {snippet(suffix)} (expected .px, .csv or .xlsx)")
    limits = file_limits(entry)
    with _open_regular(p) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limits.max_file_bytes:
            raise FileSourceError(
                p, f"file is {size / 2**20:,.0f} MiB, over the limit of {limits.max_file_bytes / 2**20:,.0f} MiB"
            )
        if size == 0:
            raise FileSourceError(p, "file is empty", line=1)
        if suffix == ".px":
            read = _read_px(fh, p, entry)
        elif suffix in (".csv", ".txt"):
            read = _read_csv(fh, p, entry, limits)
        else:
            read = _read_xlsx(fh, p, entry, limits)
    table = read.table
    if table.num_rows > limits.max_rows:
        raise FileSourceError(p, f"{table.num_rows:,} data rows, more than {limits.max_rows:,} (limit max_rows)")
    if table.num_rows == 0:
        raise FileSourceError(p, "no data rows: the file holds a header only")
    if suffix == ".px":  # CSV/XLSX chunks were checked as they were built, with line numbers
        _check_control(p, {name: table.column(name) for name in table.column_names}, None)
    return _apply_entry(read, p, entry)


def read_file_source(path: str | os.PathLike[str], entry: Entry) -> pa.Table:
    """Read one inbox file per its catalogue entry into the landing shape (targets, value, status)."""
    return read_file(path, entry).table
