"""PC-Axis (PX) reader: ``read_px(path_or_bytes) -> PxFile``.

A PX file is a list of keyword statements ``KEYWORD[lang]("sub1","sub2")=value;`` followed by ``DATA=``, whose
cells are in row-major order over the STUB variables and then the HEADING variables (the last HEADING variable
varies fastest).  Values are lists of quoted strings (adjacent strings ``"ab" "cd"`` concatenate, commas separate
items) or bare words (``YES``, ``0``, ``TLIST(A1)``).

Encoding: ``CODEPAGE`` when given, else ``CHARSET="ANSI"`` means Windows-1252 (a superset of latin-1 for
printable text; bytes cp1252 leaves undefined fall back to latin-1), else UTF-8 (a BOM is accepted).  A file that
declares ANSI but is really UTF-8 (non-ASCII bytes that form valid UTF-8) is rejected rather than turned into
mojibake.

``PxFile.to_arrow()`` returns the project's landing shape: one ``string`` column per variable (stub then
heading, named as in the file) holding value codes, ``value`` float64 (null where the cell is a symbol) and
``status`` string (the symbol as written in DATA, e.g. ``..``, ``.``, ``-``; null where the cell is a number).
What a symbol *means* is in ``PxFile.symbol_labels`` (from ``DATASYMBOL1..6``, ``DATASYMBOLNIL``,
``DATASYMBOLSUM``).  ``DECIMALS`` is display precision only; numbers are taken as written.

``PxFile.vintage()`` is the file's own upstream vintage: ``LAST-UPDATED``, else ``CREATION-DATE`` (never the file's
mtime, which says when it was copied, not when the figures were published). See :func:`parse_px_time`.

Every problem raises :class:`regionstat.errors.FileSourceError` naming the file and, where known, the line.
"""

from __future__ import annotations

import bisect
import codecs
import itertools
import logging
import math
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regionstat.errors import FileSourceError

__all__ = ["PX_TIMEZONE", "PxFile", "PxVariable", "PxVintage", "parse_px_time", "read_px"]

log = logging.getLogger(__name__)

# Symbols PX writes in DATA for cells without a number: "." .. "......" (DATASYMBOL1..6) and "-" (NIL).
STANDARD_SYMBOLS = (".", "..", "...", "....", ".....", "......", "-")
_SYMBOL_KEYWORDS = {
    ".": "DATASYMBOL1",
    "..": "DATASYMBOL2",
    "...": "DATASYMBOL3",
    "....": "DATASYMBOL4",
    ".....": "DATASYMBOL5",
    "......": "DATASYMBOL6",
    "-": "DATASYMBOLNIL",
}

# One statement head: KEYWORD, optional [lang], optional ("sub", ...), then '='.
_HEAD = re.compile(
    r"\s*([A-Za-z][A-Za-z0-9_\-]*)"  # keyword
    r'(?:\[([^\]"]*)\])?'  # [lang]
    r'\s*(?:\(((?:"[^"]*"|[^")])*)\))?'  # ("sub","sub2")
    r"\s*="
)
# The value part: quoted strings or anything but '"' and ';', up to the terminating ';'.
_VALUE = re.compile(r'((?:"[^"]*"|[^";])*);')
_VALUE_TOKEN = re.compile(r'"([^"]*)"|(,)|([^\s,"]+(?:\([^)]*\))?)')
_QUOTED = re.compile(r'"[^"]*"')
_DATA_TOKEN = re.compile(r'"[^"]*"|[^\s,;"]+')
_NUMBER_RE = r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$"
_MAX_VALUE_SCAN = 400  # characters of a bad statement quoted back in an error
#: PX times carry no zone; SCB and the Swedish municipalities write them in Swedish local time.
PX_TIMEZONE = ZoneInfo("Europe/Stockholm")
#: "20220311 08:00" (the standard's CCYYMMDD hh:mm), also "20220311", "2022-03-11 08:00", "20220311 8:00:00".
_PX_TIME = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})(?:[ T]+(\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?)?")
#: The keywords that date a PX file's figures, in order of preference.
VINTAGE_KEYWORDS = ("LAST-UPDATED", "CREATION-DATE")


def parse_px_time(text: str) -> datetime | None:
    """A PX date as an aware UTC datetime; None when it is not one (the caller decides what unknown means).

    A time of day is Swedish local time (:data:`PX_TIMEZONE`): ``"20220311 08:00"`` -> 07:00 UTC, the same
    instant SCB's API gives as ``updated``. A bare date (``"20260108"``) is that day at 00:00 UTC, so that the
    day read back from the ISO text (``2026-01-08T00:00:00Z``) is the day the file states, not the evening before.
    """
    m = _PX_TIME.fullmatch(text.strip())
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) if g is not None else None for g in m.groups())
    assert year is not None and month is not None and day is not None
    try:
        if hour is None:
            return datetime(year, month, day, tzinfo=UTC)
        local = datetime(year, month, day, hour, minute or 0, second or 0, tzinfo=PX_TIMEZONE)
    except ValueError:  # 20221399, 25:00: not a date
        return None
    return local.astimezone(UTC)


@dataclass(frozen=True)
class PxVintage:
    """Where a PX file dates its figures: the keyword, its exact text and line, and the instant as ISO-8601 UTC."""

    keyword: str  # LAST-UPDATED or CREATION-DATE
    text: str  # as written in the file, e.g. "20220311 08:00"
    line: int
    updated: str  # "2022-03-11T07:00:00Z", the spelling of the manifest's and the raw tables' `updated`

    @property
    def statement(self) -> str:
        """``LAST-UPDATED="20220311 08:00" (line 14)``: for manifests and messages."""
        return f'{self.keyword}="{self.text}" (line {self.line})'


def _split_value(text: str) -> list[str]:
    """'"a" "b","c", YES' -> ['ab', 'c', 'YES']: adjacent quoted strings concatenate, commas separate."""
    items: list[str] = []
    current: str | None = None
    for m in _VALUE_TOKEN.finditer(text):
        quoted, comma, bare = m.groups()
        if comma is not None:
            items.append(current if current is not None else "")
            current = None
        elif quoted is not None:
            current = (current or "") + quoted
        else:
            current = (current or "") + bare
    if current is not None:
        items.append(current)
    return items


def _split_subkeys(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    return tuple(s.strip() for s in _split_value(text))


def _format_key(keyword: str, lang: str | None, subkeys: tuple[str, ...]) -> str:
    key = keyword
    if lang:
        key += f"[{lang}]"
    if subkeys:
        key += "(" + ",".join(f'"{s}"' for s in subkeys) + ")"
    return key


@dataclass(frozen=True)
class PxVariable:
    """One dimension of the cube."""

    name: str  # as in STUB/HEADING (main language); the landing column name
    values: list[str]  # VALUES texts, main language
    codes: list[str]  # CODES, else the VALUES texts
    labels: dict[str, list[str]]  # language -> VALUES texts (main language included)
    placement: str  # "stub" or "heading"
    code: str | None = None  # VARIABLECODE, when the file has one
    elimination: str | None = None  # ELIMINATION: "YES"/"NO" or the value text of the total
    domain: str | None = None
    timeval: list[str] | None = None
    is_time: bool = False

    def __len__(self) -> int:
        return len(self.codes)

    def code_of(self, value_text: str) -> str:
        return self.codes[self.values.index(value_text)]


@dataclass
class PxFile:
    path: str
    encoding: str
    language: str | None
    languages: list[str]
    meta: dict[str, Any]  # 'KEY[lang]("a","b")' -> str | list[str]
    entries: list[tuple[str, str | None, tuple[str, ...], list[str], int]] = field(repr=False)
    variables: list[PxVariable]
    values: np.ndarray = field(repr=False)  # float64, NaN where status is set
    status: pa.Array = field(repr=False)  # string, null where a number
    data_line: int = 0

    # -- metadata access ---------------------------------------------------------------------------------
    def get(self, keyword: str, *subkeys: str, lang: str | None = None, default: Any = None) -> Any:
        """The value of KEYWORD[lang](subkeys): a str for one item, a list for several."""
        return self.meta.get(_format_key(keyword.upper(), lang, tuple(subkeys)), default)

    def get_list(self, keyword: str, *subkeys: str, lang: str | None = None) -> list[str]:
        v = self.get(keyword, *subkeys, lang=lang)
        if v is None:
            return []
        return list(v) if isinstance(v, list) else [v]

    @property
    def stub(self) -> list[str]:
        return [v.name for v in self.variables if v.placement == "stub"]

    @property
    def heading(self) -> list[str]:
        return [v.name for v in self.variables if v.placement == "heading"]

    @property
    def decimals(self) -> int | None:
        d = self.get("DECIMALS")
        return int(d) if isinstance(d, str) and d.strip().isdigit() else None

    @property
    def symbol_labels(self) -> dict[str, str]:
        """Symbol as written in DATA -> its declared presentation (DATASYMBOL1..6, NIL); itself if undeclared."""
        out = {}
        for sym, kw in _SYMBOL_KEYWORDS.items():
            label = self.get(kw)
            out[sym] = label if isinstance(label, str) else sym
        return out

    def vintage(self) -> PxVintage | None:
        """The file's upstream vintage: its latest ``LAST-UPDATED``, else its ``CREATION-DATE``; None if neither.

        A file may date each content separately (``LAST-UPDATED("Folkmängd")=...``): the latest one dates the
        file. Language variants repeat the main language's dates and are used only when it has none. Text that is
        not a PX date is skipped with a warning naming the file and line (the vintage is then unknown, the figures
        still load: a missing date is not a reason to refuse published numbers).
        """
        for keyword in VINTAGE_KEYWORDS:
            found = [e for e in self.entries if e[0] == keyword]
            main = [e for e in found if e[1] in (None, self.language)]
            candidates: list[PxVintage] = []
            for _, _, _, items, line in main or found:
                text = items[0] if len(items) == 1 else " ".join(items)
                when = parse_px_time(text)
                if when is None:
                    log.warning(
                        "%s line %d: %s=%r is not a PX date (CCYYMMDD hh:mm); ignored", self.path, line, keyword, text
                    )
                    continue
                candidates.append(PxVintage(keyword, text, line, when.strftime("%Y-%m-%dT%H:%M:%SZ")))
            if candidates:
                return max(candidates, key=lambda v: v.updated)
        return None

    def variable(self, name: str) -> PxVariable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.variables)

    def __len__(self) -> int:
        return len(self.values)

    # -- landing shape --------------------------------------------------------------------------------------
    def to_arrow(self, use_codes: bool = True) -> pa.Table:
        """One string column per variable (codes, or value texts with use_codes=False), value, status."""
        n = len(self.values)
        sizes = [len(v) for v in self.variables]
        columns: dict[str, pa.Array] = {}
        after = n
        before = 1
        for var, size in zip(self.variables, sizes, strict=True):
            after //= size
            idx = np.arange(size, dtype=np.int32)
            if after > 1:
                idx = np.repeat(idx, after)
            if before > 1:
                idx = np.tile(idx, before)
            before *= size
            labels = pa.array(var.codes if use_codes else var.values, type=pa.string())
            if var.name in columns or var.name in ("value", "status"):
                raise FileSourceError(self.path, f"variable name {var.name!r} is used twice or is reserved")
            columns[var.name] = labels.take(pa.array(idx))
        columns["value"] = pa.array(self.values, type=pa.float64(), from_pandas=True)
        columns["status"] = self.status
        return pa.table(columns)


def _decode(raw: bytes, path: str) -> tuple[str, str]:
    """Bytes -> (text, encoding) per CODEPAGE / CHARSET; reject mislabelled or undecodable files."""
    head = raw[:20000]
    bom = raw.startswith(codecs.BOM_UTF8)
    charset = re.search(rb'(?m)^\s*CHARSET\s*=\s*"([^"]*)"', head)
    codepage = re.search(rb'(?m)^\s*CODEPAGE\s*=\s*"([^"]*)"', head)
    ansi = charset is not None and charset.group(1).strip().upper() == b"ANSI"

    def line_of(offset: int) -> int:
        return raw.count(b"\n", 0, offset) + 1

    encoding = "utf-8"
    if codepage:
        name = codepage.group(1).decode("ascii", "replace").strip()
        try:
            encoding = codecs.lookup(name).name
        except LookupError as exc:
            raise FileSourceError(path, f"unknown CODEPAGE {name!r}", line=line_of(codepage.start())) from exc
    elif ansi:
        encoding = "cp1252"

    if encoding != "utf-8" and (bom or ansi):
        # A file that says ANSI (or a single-byte code page) but whose non-ASCII bytes are valid UTF-8 was saved
        # as UTF-8 by some editor: decoding it as cp1252 would silently give 'Ã¶' for 'ö'.
        if bom:
            raise FileSourceError(
                path,
                f"declares CHARSET/CODEPAGE {encoding!r} but starts with a UTF-8 BOM; "
                'save it as ANSI (Windows-1252) or declare CODEPAGE="utf-8"',
                line=1,
            )
        high = re.search(rb"[\x80-\xff]", raw)
        first_high = high.start() if high else None
        if first_high is not None:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                raise FileSourceError(
                    path,
                    'declares CHARSET="ANSI" but its non-ASCII text is UTF-8 encoded (wrong encoding); '
                    'save it as ANSI (Windows-1252) or remove CHARSET="ANSI"',
                    line=line_of(first_high),
                )
    if encoding == "utf-8":
        body = raw[3:] if bom else raw
        try:
            return body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError as exc:
            off = exc.start + (3 if bom else 0)
            what = "declares no CHARSET so it must be UTF-8" if not charset else "is not valid UTF-8"
            raise FileSourceError(
                path,
                f'{what}, but byte 0x{raw[off]:02x} cannot be decoded (wrong encoding? ANSI files need CHARSET="ANSI")',
                line=line_of(off),
            ) from exc
    try:
        return raw.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        if encoding == "cp1252":  # the five bytes cp1252 leaves undefined: take them as latin-1
            return raw.decode("latin-1"), "latin-1"
        raise FileSourceError(
            path, f"byte 0x{raw[exc.start]:02x} is not valid {encoding}", line=line_of(exc.start)
        ) from exc


class _Lines:
    """Offset -> 1-based line number."""

    def __init__(self, text: str):
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def __call__(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)


def read_px(source: str | os.PathLike[str] | bytes, *, name: str | None = None) -> PxFile:
    """Parse a PX file from a path or from its bytes (``name`` is used in error messages for bytes)."""
    if isinstance(source, bytes | bytearray | memoryview):
        raw = bytes(source)
        path = name or "<px bytes>"
    else:
        path = str(source)
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise FileSourceError(path, f"cannot read file: {exc.strerror or exc}") from exc
    if not raw.strip():
        raise FileSourceError(path, "file is empty", line=1)

    text, encoding = _decode(raw, path)
    lines = _Lines(text)

    # -- keyword statements up to DATA= -----------------------------------------------------------------------
    entries: list[tuple[str, str | None, tuple[str, ...], list[str], int]] = []
    meta: dict[str, Any] = {}
    pos = 0
    data_start: int | None = None
    data_line = 0
    n_text = len(text)
    while True:
        while pos < n_text and text[pos] in " \t\r\n\ufeff":
            pos += 1
        if pos >= n_text:
            break
        head = _HEAD.match(text, pos)
        if head is None:
            snippet = text[pos : pos + 60].split("\n")[0]
            raise FileSourceError(path, f"expected a KEYWORD= statement, found {snippet!r}", line=lines(pos))
        keyword = head.group(1).upper()
        if keyword == "DATA":
            data_start = head.end()
            data_line = lines(head.start(1))
            break
        val = _VALUE.match(text, head.end())
        if val is None:
            raise FileSourceError(
                path, f"keyword {head.group(1)} has no terminating ';' (unbalanced quotes?)", line=lines(head.start(1))
            )
        if "\n" in val.group(1):
            # Continuations are separate strings per line ("ab"\n"cd"); a string running over a line end means a
            # quote was never closed, and the statement swallowed the next ones.
            for q in _QUOTED.finditer(val.group(1)):
                if "\n" in q.group(0):
                    raise FileSourceError(
                        path,
                        f"keyword {head.group(1)}: a quoted string is not closed on its line (unbalanced quotes)",
                        line=lines(head.end() + q.start()),
                    )
        lang = head.group(2) or None
        subkeys = _split_subkeys(head.group(3))
        items = _split_value(val.group(1))
        line = lines(head.start(1))
        entries.append((keyword, lang, subkeys, items, line))
        meta[_format_key(keyword, lang, subkeys)] = items[0] if len(items) == 1 else items
        pos = val.end()

    if data_start is None:
        raise FileSourceError(path, "no DATA= keyword (truncated file, or not a PX file?)", line=lines(n_text))

    def getl(keyword: str, *subkeys: str, lang: str | None = None) -> list[str] | None:
        v = meta.get(_format_key(keyword, lang, subkeys))
        if v is None:
            return None
        return list(v) if isinstance(v, list) else [v]

    def line_of(keyword: str, *subkeys: str) -> int | None:
        for kw, lg, sk, _, ln in entries:
            if kw == keyword and lg is None and sk == subkeys:
                return ln
        return None

    language: str | None = (getl("LANGUAGE") or [None])[0]  # type: ignore[list-item]
    languages = getl("LANGUAGES") or ([language] if language else [])
    other_langs = [lg for lg in languages if lg and lg != language]
    if "KEYS" in {e[0] for e in entries}:
        raise FileSourceError(path, "DATA with KEYS (sparse PX) is not supported", line=line_of("KEYS"))

    stub = getl("STUB") or []
    heading = getl("HEADING") or []
    if not stub and not heading:
        raise FileSourceError(path, "no STUB or HEADING keyword: the file declares no variables", line=data_line)
    seen: set[str] = set()
    for name in stub + heading:
        if name in seen:
            raise FileSourceError(
                path, f"variable {name!r} is named twice in STUB/HEADING", line=line_of("STUB") or line_of("HEADING")
            )
        seen.add(name)

    variables: list[PxVariable] = []
    for placement, names in (("stub", stub), ("heading", heading)):
        for i, name in enumerate(names):
            values = getl("VALUES", name)
            if values is None:
                raise FileSourceError(path, f"variable {name!r} has no VALUES", line=line_of(placement.upper()))
            codes = getl("CODES", name)
            if codes is not None and len(codes) != len(values):
                raise FileSourceError(
                    path,
                    f"variable {name!r} has {len(values)} VALUES but {len(codes)} CODES",
                    line=line_of("CODES", name),
                )
            labels = {language or "": values}
            for lg in other_langs:
                lname = (getl("STUB", lang=lg) if placement == "stub" else getl("HEADING", lang=lg)) or []
                if i < len(lname):
                    lvals = getl("VALUES", lname[i], lang=lg)
                    if lvals is not None and len(lvals) == len(values):
                        labels[lg] = lvals
            timeval = getl("TIMEVAL", name)
            elim = getl("ELIMINATION", name)
            vcode = getl("VARIABLECODE", name)
            domain = getl("DOMAIN", name)
            vtype = getl("VARIABLE-TYPE", name)
            variables.append(
                PxVariable(
                    name=name,
                    values=values,
                    codes=codes if codes is not None else list(values),
                    labels=labels,
                    placement=placement,
                    code=vcode[0] if vcode else None,
                    elimination=elim[0] if elim else None,
                    domain=domain[0] if domain else None,
                    timeval=timeval,
                    is_time=timeval is not None or (vtype is not None and vtype[0].upper() == "T"),
                )
            )

    expected = math.prod(len(v) for v in variables)
    cell_values, status = _parse_data(text, data_start, lines, path, expected, data_line)
    return PxFile(
        path=path,
        encoding=encoding,
        language=language,
        languages=languages,
        meta=meta,
        entries=entries,
        variables=variables,
        values=cell_values,
        status=status,
        data_line=data_line,
    )


def _parse_data(
    text: str, start: int, lines: _Lines, path: str, expected: int, data_line: int
) -> tuple[np.ndarray, pa.Array]:
    end = text.find(";", start)
    if end < 0:
        n_tokens = len(_DATA_TOKEN.findall(text, start))
        raise FileSourceError(
            path,
            f"DATA is not terminated by ';' (file truncated?): {n_tokens:,} of {expected:,} cells present",
            line=lines(len(text)),
        )
    trailing = text[end + 1 :].strip()
    if trailing:
        raise FileSourceError(
            path,
            f"unexpected text after the end of DATA: {trailing[:40]!r}",
            line=lines(end + 1 + (len(text[end + 1 :]) - len(text[end + 1 :].lstrip()))),
        )
    body = text[start:end]
    tokens = _DATA_TOKEN.findall(body)
    if len(tokens) != expected:
        raise FileSourceError(
            path,
            f"DATA has {len(tokens):,} cells but the variables give {expected:,} "
            f"(product of the value counts); truncated or malformed file",
            line=lines(end),
        )
    if not tokens:
        return np.empty(0, dtype=np.float64), pa.array([], type=pa.string())

    arr = pa.array(tokens, type=pa.string())
    is_number = pc.match_substring_regex(arr, _NUMBER_RE)
    if pc.all(is_number).as_py():
        return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), pa.nulls(len(tokens), pa.string())

    numbers = pc.if_else(is_number, arr, pa.scalar(None, pa.string()))
    values = pc.cast(numbers, pa.float64()).to_numpy(zero_copy_only=False)  # NaN for nulls
    symbols = pc.if_else(is_number, pa.scalar(None, pa.string()), arr)
    quoted = pc.starts_with(symbols, '"')
    unquoted = pc.and_(pc.invert(quoted), pc.is_valid(symbols))
    status = pc.utf8_trim_whitespace(pc.utf8_trim(symbols, '"'))
    quoted_number = pc.fill_null(pc.match_substring_regex(status, _NUMBER_RE), False)
    if pc.any(quoted_number).as_py():  # "123": some writers quote every cell
        qn = quoted_number.to_numpy(zero_copy_only=False)
        values[qn] = pc.cast(pc.filter(status, quoted_number), pa.float64()).to_numpy(zero_copy_only=False)
        status = pc.if_else(quoted_number, pa.scalar(None, pa.string()), status)
    # A bare word that is not a number must be one of the standard symbols (some writers leave them unquoted).
    bad = pc.and_(unquoted, pc.invert(pc.is_in(symbols, value_set=pa.array(STANDARD_SYMBOLS))))
    if pc.any(bad).as_py():
        k = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
        m = next(itertools.islice(_DATA_TOKEN.finditer(body), k, None), None)
        line = lines(start + m.start()) if m is not None else data_line
        raise FileSourceError(
            path, f"DATA cell {k + 1:,} is {tokens[k]!r}: not a number and not a quoted symbol", line=line
        )
    return values, status
