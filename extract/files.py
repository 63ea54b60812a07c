"""Municipal file source: PX / CSV / XLSX files dropped into ``<data_dir>/inbox/commuting/``.

The catalogue's ``files:`` entries (dicts from the YAML, or ``extract.catalogue.FileSource`` objects) say which
files an entry takes (``pattern``, a glob on the file name, matched case-insensitively), which raw table they feed
and how source columns map to target columns (``columns``).

* ``discover(inbox_dir, entries) -> [(path, entry), ...]``: every regular, non-hidden file in the inbox must
  match exactly one entry; a file matching none (or several) raises :class:`FileSourceError` listing the patterns.
  Office lock files (``~$*``) and partial downloads (``*.part``, ``*.tmp``, ``*.crdownload``) are skipped.
* ``read_file_source(path, entry) -> pyarrow.Table`` in the landing shape for file sources: the entry's target
  columns (``string``, in the order of the ``columns`` mapping), ``value`` (float64, null where missing) and
  ``status`` (string: the PxWeb symbol such as ``..``/``-``, null where a number).

Column rules (schema drift is an error, never a silent change):
  - every source column declared in ``columns`` must be present, else ``FileSourceError`` naming it;
  - a source column that is not declared is an error too (a PX variable would multiply the rows; a CSV/XLSX
    column would be silently dropped), except ``status`` in CSV/XLSX, which is taken as the status column.
  - PX: the source columns are the variable names as in the file (``typ``, ``stadsdel``, ...), holding value
    codes (``CODES``); the value comes from DATA.  CSV/XLSX: the mapping must map some column to ``value``.

CSV: UTF-8 with or without BOM; the delimiter (``,``, ``;`` or tab) is sniffed from the header line, which must be
the first non-empty line. Numbers may use a decimal comma when the delimiter is not a comma, and spaces as
thousands separators. An empty value cell is a null value with no status; the PxWeb symbols ``.``, ``..``, ...,
``-`` go to ``status``; any other text is an error naming the file, line and column.

XLSX: the first sheet. The header row is the first row, among the first 10, that holds every declared source
column; title/note rows above it are skipped (documented choice: handled, not rejected). If no such row exists the
error names the missing columns as found in the best-matching row. Empty rows are skipped. Codes typed as numbers
in Excel come through as their integer text (``2021``, not ``2021.0``); leading zeros lost by Excel (``0580`` ->
``580``) cannot be recovered, so format code columns as text.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from extract.errors import CatalogueError, FileSourceError
from extract.px import STANDARD_SYMBOLS, read_px

__all__ = [
    "CATALOGUE_PATH",
    "discover",
    "file_sha256",
    "load_file_entries",
    "read_file_source",
]

# A catalogue ``files:`` entry: the YAML dict or an ``extract.catalogue.FileSource`` (same fields).
Entry = Any
CATALOGUE_PATH = Path(__file__).resolve().parent / "catalogue.yaml"
_SKIP_PREFIXES = (".", "~$")
_SKIP_SUFFIXES = (".part", ".tmp", ".crdownload")
_XLSX_HEADER_SCAN = 10
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_THOUSANDS = re.compile(r"(?<=\d)[ \u00a0\u202f](?=\d{3}\b)")


def load_file_entries(catalogue_path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The ``files:`` entries of the catalogue, checked for the keys this module needs."""
    path = Path(catalogue_path) if catalogue_path else CATALOGUE_PATH
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    entries = doc.get("files") or []
    for i, e in enumerate(entries):
        missing = [k for k in ("name", "pattern", "raw_table", "columns") if k not in e]
        if missing:
            raise CatalogueError(f"{path}: files[{i}] ({e.get('name', '?')}) lacks {', '.join(missing)}")
        if not isinstance(_f(e, "columns"), dict) or not _f(e, "columns"):
            raise CatalogueError(f"{path}: files[{i}] ({_f(e, 'name')}) 'columns' must be a non-empty mapping")
    return entries


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _f(entry: Any, key: str) -> Any:
    """A field of a catalogue entry: a dict from the YAML or an ``extract.catalogue.FileSource``."""
    if isinstance(entry, Mapping):
        return entry[key]
    return getattr(entry, key)


def _matches(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def scan_inbox(
    inbox_dir: str | os.PathLike[str], entries: Sequence[Entry]
) -> list[tuple[Path, Entry | FileSourceError]]:
    """Every file in the inbox (sorted by name) with its one matching catalogue entry, or the error saying why not.

    Lenient on purpose: one stray file must not stop the others; the caller quarantines it.
    """
    inbox = Path(inbox_dir)
    if not inbox.is_dir():
        return []
    patterns = ", ".join(f"{_f(e, 'pattern')} ({_f(e, 'name')})" for e in entries)
    out: list[tuple[Path, Entry | FileSourceError]] = []
    for path in sorted(p for p in inbox.iterdir() if p.is_file()):
        name = path.name
        if name.startswith(_SKIP_PREFIXES) or name.lower().endswith(_SKIP_SUFFIXES):
            continue
        hits = [e for e in entries if _matches(name, _f(e, "pattern"))]
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
    """Pair every file in the inbox with the one catalogue entry whose pattern it matches; strict."""
    out: list[tuple[Path, Entry]] = []
    for path, hit in scan_inbox(inbox_dir, entries):
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


def _check_columns(
    path: str, entry: Entry, found: Sequence[str], *, kind: str, line: int | None, allowed_extra: Iterable[str] = ()
) -> None:
    declared = list(_f(entry, "columns"))
    missing = [c for c in declared if c not in found]
    if missing:
        raise FileSourceError(
            path,
            f"schema drift: declared source {kind} {', '.join(repr(c) for c in missing)} missing "
            f"(the file has {', '.join(repr(c) for c in found)}; entry {_f(entry, 'name')!r})",
            line=line,
        )
    extra = [c for c in found if c not in _f(entry, "columns") and c not in allowed_extra]
    if extra:
        raise FileSourceError(
            path,
            f"schema drift: undeclared source {kind} {', '.join(repr(c) for c in extra)} "
            f"(declare it in the catalogue entry {_f(entry, 'name')!r} columns mapping)",
            line=line,
        )


def _landing(
    targets: list[str], cols: dict[str, list[str | None]], values: list[float | None], status: list[str | None]
) -> pa.Table:
    arrays = {t: pa.array(cols[t], type=pa.string()) for t in targets}
    arrays["value"] = pa.array(values, type=pa.float64())
    arrays["status"] = pa.array(status, type=pa.string())
    return pa.table(arrays)


def _rows_to_table(
    path: str,
    entry: Entry,
    header: list[str],
    rows: Iterable[tuple[int, list[Any]]],
    *,
    decimal_comma: bool,
    header_line: int,
) -> pa.Table:
    _check_columns(path, entry, header, kind="column", line=header_line, allowed_extra=("status",))
    mapping = _f(entry, "columns")
    value_src = [s for s, t in mapping.items() if t == "value"]
    if len(value_src) != 1:
        raise FileSourceError(path, f"catalogue entry {_f(entry, 'name')!r} must map exactly one column to 'value'")
    status_src = next((s for s, t in mapping.items() if t == "status"), "status" if "status" in header else None)
    pos = {c: i for i, c in enumerate(header)}
    targets = _targets(entry)
    dims = [(t, pos[s]) for s, t in mapping.items() if t not in ("value", "status")]
    vpos = pos[value_src[0]]
    spos = pos[status_src] if status_src is not None else None
    cols: dict[str, list[str | None]] = {t: [] for t in targets}
    values: list[float | None] = []
    status: list[str | None] = []
    width = len(header)
    for line, row in rows:
        if len(row) != width:
            raise FileSourceError(path, f"row has {len(row)} fields, the header has {width}", line=line)
        parsed = _parse_value(row[vpos], decimal_comma=decimal_comma)
        if parsed is None:
            raise FileSourceError(
                path,
                f"column {value_src[0]!r}: {row[vpos]!r} is not a number (nor a symbol {', '.join(STANDARD_SYMBOLS)})",
                line=line,
            )
        value, sym = parsed
        if spos is not None:
            st = _code_text(row[spos])
            sym = st if st is not None else sym
        for t, i in dims:
            cols[t].append(_code_text(row[i]))
        values.append(value)
        status.append(sym)
    return _landing(targets, cols, values, status)


# -- readers -----------------------------------------------------------------------------------------------


def _read_px(path: str, entry: Entry) -> pa.Table:
    px = read_px(path)
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
    return pa.table(arrays)


def _read_csv(path: str, entry: Entry) -> pa.Table:
    raw = Path(path).read_bytes()
    if not raw.strip():
        raise FileSourceError(path, "file is empty", line=1)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise FileSourceError(
            path, f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded (save the CSV as UTF-8)", line=line
        ) from exc
    lines = text.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.strip())
    head = lines[first]
    delimiter = max((";", ",", "\t"), key=head.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    header_line = first + 1
    rows: list[tuple[int, list[str]]] = []
    start_line = 1
    for row in reader:
        line = start_line
        start_line = reader.line_num + 1
        if not any(c.strip() for c in row):
            continue
        if header is None:
            header = [c.strip() for c in row]
            header_line = line
            continue
        rows.append((line, row))
    assert header is not None
    return _rows_to_table(path, entry, header, rows, decimal_comma=delimiter != ",", header_line=header_line)


def _read_xlsx(path: str, entry: Entry) -> pa.Table:
    import openpyxl  # imported lazily: only XLSX sources need it

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException for broken files
        raise FileSourceError(path, f"cannot open as XLSX: {type(exc).__name__}: {exc}") from exc
    try:
        ws = wb.worksheets[0]
        all_rows = [(i, list(r)) for i, r in enumerate(ws.iter_rows(values_only=True), start=1)]
    finally:
        wb.close()
    all_rows = [(i, r) for i, r in all_rows if any(c is not None and str(c).strip() for c in r)]
    if not all_rows:
        raise FileSourceError(path, f"first sheet {ws.title!r} is empty", line=1)

    declared = list(_f(entry, "columns"))
    best: tuple[int, int, list[str]] | None = None
    header_at = None
    for k, (line, r) in enumerate(all_rows[:_XLSX_HEADER_SCAN]):
        names = [_code_text(c) or "" for c in r]
        hits = sum(1 for c in declared if c in names)
        if best is None or hits > best[0]:
            best = (hits, line, names)
        if hits == len(declared):
            header_at = k
            break
    if header_at is None:
        assert best is not None
        _, line, names = best
        missing = [c for c in declared if c not in names]
        first_line, first_row = all_rows[0]
        texts = [str(c).strip() for c in first_row if c is not None and str(c).strip()]
        hint = ""
        if len(texts) == 1 or first_line < line:
            hint = f"; row {first_line} looks like a title, not a header: {' | '.join(texts)!r}"
        raise FileSourceError(
            path,
            f"schema drift: no header row with every declared source column in the first "
            f"{_XLSX_HEADER_SCAN} rows of sheet {ws.title!r}; missing {', '.join(repr(c) for c in missing)} "
            f"(best row has {', '.join(repr(n) for n in names if n)}){hint}",
            line=line,
        )
    header_line, header_row = all_rows[header_at]
    header = [_code_text(c) or "" for c in header_row]
    # Trailing unnamed, empty columns are formatting, not data.
    while header and header[-1] == "":
        header.pop()
    width = len(header)
    body: list[tuple[int, list[Any]]] = []
    for line, r in all_rows[header_at + 1 :]:
        cells = list(r[:width]) + [None] * (width - len(r))
        if any(c is not None and str(c).strip() for c in r[width:]):
            raise FileSourceError(path, f"row has values beyond the {width} header columns", line=line)
        body.append((line, cells))
    return _rows_to_table(path, entry, header, body, decimal_comma=True, header_line=header_line)


def read_file_source(path: str | os.PathLike[str], entry: Entry) -> pa.Table:
    """Read one inbox file per its catalogue entry into the landing shape (targets, value, status)."""
    p = str(path)
    if not Path(p).is_file():
        raise FileSourceError(p, "file does not exist")
    suffix = Path(p).suffix.lower()
    if suffix == ".px":
        return _read_px(p, entry)
    if suffix in (".csv", ".txt"):
        return _read_csv(p, entry)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(p, entry)
    raise FileSourceError(p, f"unsupported file type {suffix!r} (expected .px, .csv or .xlsx)")
