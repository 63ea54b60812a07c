"""Fast JSON-stat 2.0 decoding into Arrow.

The cube is laid out row-major over ``id`` (the last dimension varies fastest), so every code column is
``repeat(tile(arange(size_i), outer_i), inner_i)`` of the dimension's codes; no Python loop over cells. The
decoder returns code columns dictionary-encoded (int32 indices into the dimension's codes: no string per cell).
The ``value`` array never becomes a Python list: its bytes are cut out of the payload and parsed by Arrow's CSV
number parser (one number or ``null`` per line, commas turned into newlines by one ``bytes.translate``) and
stays an Arrow array (nulls as nulls, no NaN round trip); the rest of the document goes through orjson. Anything
that is not a flat list of numbers/nulls takes the plain path (orjson for all, then numpy). ``status`` (dict
index -> symbol, list, or one string for all) is kept sparse: the positions of the cells that carry one and their
int32 symbol indices (Arrow parses the object's keys and encodes its symbols); the table's status column is
built from those positions, dictionary-encoded.

``decode_jsonstat2(payload)`` is the public entry point; the client uses the lower-level ``parse_cube``
to stitch chunked responses together.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv

from regionstat.errors import ResponseError

BOM = b"\xef\xbb\xbf"

__all__ = [
    "Cube",
    "CubeAssembly",
    "DimensionInfo",
    "InvalidJSONError",
    "category_codes",
    "category_labels",
    "code_index_arrays",
    "decode_jsonstat2",
    "loads",
    "parse_cube",
]


class InvalidJSONError(ResponseError):
    """The body is not JSON at all (truncated or garbled in transit): worth a retry, unlike a wrong shape."""


def loads(payload: bytes | bytearray | memoryview | str | Mapping[str, Any], *, what: str = "response") -> Any:
    """Parse JSON with orjson, stripping a UTF-8 BOM (SCB sends one). Raises ResponseError if invalid."""
    if isinstance(payload, Mapping):
        return payload
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    if isinstance(payload, memoryview):
        payload = payload.tobytes()
    if payload[:3] == BOM:
        payload = payload[3:]
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSONError(f"{what} is not valid JSON ({len(payload):,} bytes): {exc}") from None


def category_codes(dim: Mapping[str, Any], size: int | None = None) -> list[str]:
    """Codes of a JSON-stat dimension in index order (``category.index`` as dict or list, or the labels)."""
    cat = dim.get("category") or {}
    index = cat.get("index")
    if index is None:
        labels = cat.get("label") or {}
        codes = list(labels)
    elif isinstance(index, Mapping):
        codes = [""] * len(index)
        for code, pos in index.items():
            codes[pos] = code
    else:
        codes = list(index)
    if size is not None and len(codes) != size:
        raise ResponseError(f"dimension has {len(codes)} categories but size says {size}")
    return codes


def category_labels(dim: Mapping[str, Any], codes: Sequence[str]) -> list[str]:
    labels = (dim.get("category") or {}).get("label") or {}
    return [labels.get(c, c) for c in codes]


@dataclass(frozen=True)
class DimensionInfo:
    code: str
    codes: list[str]
    labels: list[str]


@dataclass(frozen=True)
class Cube:
    """A decoded JSON-stat dataset: dimensions in ``id`` order, values, and status kept sparse.

    ``value_array`` is what the decoder produced (Arrow float64, null = missing), so a table needs no second pass
    over the values; ``values`` is the NumPy view (NaN = missing) for stitching chunks. Status is stored as the
    cells that have one (SCB sends it as an object keyed by cell index: a few per cent of the cells), so neither
    a dense per-cell array nor a Python object per cell is built unless asked for (``status_codes``).
    """

    dimensions: list[DimensionInfo]
    value_array: pa.Array  # float64, null where missing
    status_positions: np.ndarray | None  # int64 cell indices that carry a status; None = no status at all
    status_indices: np.ndarray | None  # int32 index into status_symbols, one per status_positions entry
    status_symbols: list[str]

    @property
    def sizes(self) -> list[int]:
        return [len(d.codes) for d in self.dimensions]

    @property
    def cells(self) -> int:
        return len(self.value_array)

    @cached_property
    def values(self) -> np.ndarray:
        """float64, NaN where missing."""
        return self.value_array.to_numpy(zero_copy_only=False)

    @cached_property
    def status_codes(self) -> np.ndarray | None:
        """Dense int32 symbol index per cell (-1 = none); None when the response has no status."""
        if self.status_positions is None or self.status_indices is None:
            return None
        codes = np.full(self.cells, -1, dtype=np.int32)
        codes[self.status_positions] = self.status_indices
        return codes


def _values_array(raw: Any, n: int) -> np.ndarray:
    if raw is None:
        return np.full(n, np.nan)
    if isinstance(raw, Mapping):  # sparse: {"index": value}
        out = np.full(n, np.nan)
        if raw:
            pos = np.fromiter(map(int, raw.keys()), dtype=np.int64, count=len(raw))
            out[pos] = np.array(list(raw.values()), dtype=np.float64)
        return out
    if len(raw) != n:
        raise ResponseError(f"value has {len(raw):,} cells, expected {n:,} (truncated?)")
    if not raw:
        return np.empty(0, dtype=np.float64)
    try:
        return np.array(raw, dtype=np.float64)  # None -> nan
    except (TypeError, ValueError):  # strings such as "..": not numbers -> null
        return np.array([_num(v) for v in raw], dtype=np.float64)


def _num(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _status_arrays(raw: Any, n: int) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """JSON-stat ``status`` -> (cell positions with a status, their int32 symbol indices, symbols).

    An object (SCB's form) is read from its keys and values only, never expanded to one entry per cell."""
    if raw is None or (isinstance(raw, Mapping | list) and not raw):
        return None, None, []
    if isinstance(raw, str):
        return np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int32), [raw]
    if isinstance(raw, Mapping):
        pos, sym, symbols = _sparse_status(raw)
        if pos.size and (pos.min() < 0 or pos.max() >= n):
            raise ResponseError(f"status index out of range for {n:,} cells")
        return pos, sym, symbols
    if len(raw) == 1 and n != 1:  # JSON-stat: a one-element array applies to every cell
        s = raw[0]
        return (np.arange(n, dtype=np.int64), np.zeros(n, dtype=np.int32), [s]) if s is not None else (None, None, [])
    if len(raw) != n:
        raise ResponseError(f"status has {len(raw):,} cells, expected {n:,}")
    lookup: dict[str, int] = {}
    codes = np.fromiter(
        (lookup.setdefault(s, len(lookup)) if s is not None else -1 for s in raw), dtype=np.int32, count=n
    )
    pos = np.flatnonzero(codes >= 0)
    return pos, codes[pos], list(lookup)


def _sparse_status(raw: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Positions and symbol indices of a status object (Arrow parses the keys and encodes the symbols; anything
    unusual, such as keys that are not integers or symbols that are not strings, goes through Python)."""
    try:
        pos = pa.array(list(raw.keys()), pa.string()).cast(pa.int64()).to_numpy()
        encoded = pa.array(list(raw.values()), pa.string()).dictionary_encode()
        indices = encoded.indices
        symbols = encoded.dictionary.to_pylist()
        if indices.null_count:  # a null symbol means no status for that cell
            keep = indices.is_valid().to_numpy(zero_copy_only=False)
            return pos[keep], indices.drop_null().to_numpy().astype(np.int32), symbols
        return pos, indices.to_numpy().astype(np.int32, copy=False), symbols
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        pass
    try:
        pos = np.fromiter(map(int, raw.keys()), dtype=np.int64, count=len(raw))
    except ValueError:
        raise ResponseError(f"status has a key that is not a cell index: {next(iter(raw))!r}") from None
    lookup: dict[Any, int] = {}
    sym = np.fromiter(
        (lookup.setdefault(s, len(lookup)) if s is not None else -1 for s in raw.values()),
        dtype=np.int32,
        count=len(raw),
    )
    keep = sym >= 0
    return pos[keep], sym[keep], list(lookup)


#: stands in for the cut-out ``value`` array; the remainder must parse with it as the top-level ``value``
_VALUE_SLOT = b'"\\u0000regionstat:value"'
_VALUE_SLOT_TEXT = "\u0000regionstat:value"
_NUMBER_BYTES = b"0123456789+-.eEnul, \t\r\n"
_READ_OPTIONS = pa_csv.ReadOptions(column_names=["value"], use_threads=False, block_size=1 << 26)
#: empty lines kept: an empty item ('1,,2') is then an unparsable row (the fallback), not silently skipped
_PARSE_OPTIONS = pa_csv.ParseOptions(delimiter="\x1f", quote_char=False, escape_char=False, ignore_empty_lines=False)
_AS_FLOAT = pa_csv.ConvertOptions(column_types={"value": pa.float64()}, null_values=["null"], strings_can_be_null=False)
#: SCB's counts are integers: parsing them as int64 is cheaper, and int64 -> float64 rounds exactly as float(int)
_AS_INT = pa_csv.ConvertOptions(column_types={"value": pa.int64()}, null_values=["null"], strings_can_be_null=False)


def _read_numbers(lines: bytes, integers: bool) -> pa.ChunkedArray:
    """One JSON number or ``null`` per line -> float64 (int64 first when no line can hold a fraction)."""
    if integers:
        try:
            column = pa_csv.read_csv(pa.py_buffer(lines), _READ_OPTIONS, _PARSE_OPTIONS, _AS_INT).column(0)
            return column.cast(pa.float64())
        except pa.ArrowInvalid:  # beyond int64: the float parser reads it
            pass
    return pa_csv.read_csv(pa.py_buffer(lines), _READ_OPTIONS, _PARSE_OPTIONS, _AS_FLOAT).column(0)


#: ',' -> newline in one table-driven pass (``bytes.replace`` stops at every one of a million commas)
_COMMA_TO_NEWLINE = bytes.maketrans(b",", b"\n")


def _split_values(payload: bytes) -> tuple[Any, np.ndarray] | None:
    """``_split_value_array`` with the values as NumPy float64 (NaN = missing)."""
    split = _split_value_array(payload)
    return None if split is None else (split[0], split[1].to_numpy(zero_copy_only=False))


def _split_value_array(payload: bytes, start: int = 0) -> tuple[Any, pa.Array] | None:
    """Parse ``payload`` with its top-level ``value`` list cut out and read by Arrow's number parser.

    None when the fast path does not apply (no flat list of numbers/nulls, or the cut was not the top-level
    ``value``): the caller then parses everything with orjson, so the answer never depends on this path."""
    key = payload.find(b'"value"', start)  # start: past a BOM, without copying the payload to drop it
    if key < 0:
        return None
    pos = key + 7
    while payload[pos : pos + 1] in (b" ", b"\n", b"\r", b"\t"):
        pos += 1
    if payload[pos : pos + 1] != b":":
        return None
    pos += 1
    while payload[pos : pos + 1] in (b" ", b"\n", b"\r", b"\t"):
        pos += 1
    if payload[pos : pos + 1] != b"[":
        return None
    end = payload.find(b"]", pos)
    if end < 0:
        return None
    body = payload[pos + 1 : end]
    if body.translate(None, _NUMBER_BYTES):  # anything left over: strings, objects, lists: not a flat number list
        return None
    try:
        ds = orjson.loads(b"".join((payload[start:pos], _VALUE_SLOT, payload[end + 1 :])))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(ds, dict) or ds.get("value") != _VALUE_SLOT_TEXT:
        return None  # the first '"value"' was not the dataset's own
    if not body.strip():
        return ds, pa.array([], pa.float64())
    if body.endswith(b","):  # a trailing comma would end the last line, not add an empty one: not JSON
        return None
    try:
        integers = b"." not in body and b"e" not in body and b"E" not in body
        column = _read_numbers(body.translate(_COMMA_TO_NEWLINE), integers)
    except pa.ArrowInvalid:
        return None
    return ds, column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def parse_cube(payload: bytes | str | Mapping[str, Any], *, labels: bool = False) -> Cube:
    """Parse a JSON-stat 2.0 dataset (bytes or already-parsed dict) into a Cube."""
    split = None
    if isinstance(payload, bytes | bytearray | memoryview):
        raw = bytes(payload)
        split = _split_value_array(raw, 3 if raw[:3] == BOM else 0)
    if split is not None:
        ds, values = split
    else:
        ds = loads(payload, what="JSON-stat response")
        values = None
    if not isinstance(ds, Mapping) or "dimension" not in ds:
        raise ResponseError("response is not a JSON-stat 2.0 dataset (no 'dimension')")
    ids = list(ds.get("id") or [])
    sizes = [int(s) for s in ds.get("size") or []]
    if len(ids) != len(sizes):
        raise ResponseError(f"JSON-stat id has {len(ids)} dimensions but size has {len(sizes)}")
    dims: list[DimensionInfo] = []
    for code, size in zip(ids, sizes, strict=True):
        d = ds["dimension"].get(code)
        if d is None:
            raise ResponseError(f"JSON-stat dimension {code!r} is listed in id but missing")
        codes = category_codes(d, size)
        dims.append(DimensionInfo(code, codes, category_labels(d, codes) if labels else codes))
    n = 1
    for s in sizes:
        n *= s
    if values is None:
        values = value_column(_values_array(ds.get("value"), n))
    elif len(values) != n:
        raise ResponseError(f"value has {len(values):,} cells, expected {n:,} (truncated?)")
    positions, indices, symbols = _status_arrays(ds.get("status"), n)
    return Cube(dims, values, positions, indices, symbols)


def _index_dtype(size: int) -> type[np.signedinteger]:
    return np.int8 if size <= 127 else np.int16 if size <= 32767 else np.int32


def code_index_arrays(sizes: Sequence[int]) -> list[np.ndarray]:
    """For a row-major cube of ``sizes``, the per-dimension category index of every cell (the smallest signed
    integer type that holds the dimension's size: int8, int16 or int32)."""
    total = 1
    for s in sizes:
        total *= s
    out = []
    inner = total
    outer = 1
    for s in sizes:
        inner = inner // s if s else 0
        idx = np.arange(s, dtype=_index_dtype(s))
        # one copy: arange broadcast over (outer, size, inner), flattened row-major
        out.append(np.broadcast_to(idx[None, :, None], (outer, s, inner)).reshape(-1))
        outer *= s
    return out


def string_column(indices: np.ndarray, dictionary: Sequence[str]) -> pa.Array:
    """Materialise ``dictionary[indices]`` as a plain Arrow string column."""
    return pa.array(list(dictionary), type=pa.string()).take(pa.array(indices))


def dictionary_column(indices: np.ndarray, dictionary: Sequence[str]) -> pa.DictionaryArray:
    """``dictionary[indices]`` as an Arrow dictionary array (the indices' integer type; no string per cell)."""
    # indices come from code_index_arrays (always within range), so Arrow's bounds check is skipped
    return pa.DictionaryArray.from_arrays(pa.array(indices), pa.array(list(dictionary), pa.string()), safe=False)


def sparse_status_column(
    positions: np.ndarray | None, indices: np.ndarray | None, symbols: Sequence[str], n: int
) -> pa.DictionaryArray:
    """Status dictionary-encoded (dictionary<int32, string>) from the cells that have one; the rest are null.

    Built straight from the positions: a validity bitmap and an index buffer, no per-cell comparison."""
    if positions is None or indices is None or not symbols or not len(positions):
        return pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()), pa.array([], pa.string()))
    present = np.zeros(n, dtype=bool)
    present[positions] = True
    codes = np.zeros(n, dtype=np.int32)
    codes[positions] = indices
    validity = pa.py_buffer(np.packbits(present, bitorder="little"))
    index_array = pa.Array.from_buffers(
        pa.int32(), n, [validity, pa.py_buffer(codes)], null_count=n - int(np.count_nonzero(present))
    )
    return pa.DictionaryArray.from_arrays(index_array, pa.array(list(symbols), pa.string()))


def value_column(values: np.ndarray) -> pa.Array:
    """float64 with NaN (missing in JSON-stat) as null."""
    return pa.array(values, type=pa.float64(), from_pandas=True)


def status_column(codes: np.ndarray | None, symbols: Sequence[str], n: int) -> pa.Array:
    if codes is None or not symbols:
        return pa.nulls(n, type=pa.string())
    mask = codes < 0
    safe = np.where(mask, 0, codes).astype(np.int32, copy=False) if mask.any() else codes
    return pa.array(list(symbols), type=pa.string()).take(
        pa.array(safe, type=pa.int32(), mask=mask if mask.any() else None)
    )


def cube_to_table(cube: Cube, *, labels: bool = False, drop: Sequence[str] = ()) -> pa.Table:
    """Arrow table: one dictionary<int8|int16|int32, string> column per dimension (codes), [<dim>_label], value
    float64, status dictionary<int32, string>."""
    sizes = cube.sizes
    idx = code_index_arrays(sizes)
    cols: dict[str, pa.Array] = {}
    for dim, ix in zip(cube.dimensions, idx, strict=True):
        if dim.code in drop:
            continue
        cols[dim.code] = dictionary_column(ix, dim.codes)
        if labels:
            cols[f"{dim.code}_label"] = dictionary_column(ix, dim.labels)
    n = cube.cells
    cols["value"] = cube.value_array
    cols["status"] = sparse_status_column(cube.status_positions, cube.status_indices, cube.status_symbols, n)
    return pa.table(cols)


def decode_jsonstat2(payload: bytes | str | Mapping[str, Any], *, labels: bool = False) -> pa.Table:
    """Decode a JSON-stat 2.0 dataset (bytes, str or parsed dict) into a pyarrow Table.

    Columns: one string column per dimension in ``id`` order holding the value codes, dictionary-encoded
    (``dictionary<int8|int16|int32, string>``, the smallest index type for the dimension;
    ``.cast(pa.string())`` gives plain strings), plus ``<dim>_label`` columns when ``labels=True``, ``value``
    (float64, null where missing) and ``status`` (dictionary-encoded symbol or null). A UTF-8 BOM is stripped.
    """
    return cube_to_table(parse_cube(payload, labels=labels), labels=labels)


#: rows per table that ``CubeAssembly.tables`` yields: Parquet's default row group size, so a batch streamed
#: slice by slice has the same row groups (and bytes) as the whole table written at once
SLICE_ROWS = 1 << 20


class CubeAssembly:
    """A whole selection stitched from chunk responses (any order, any split), emitted as plain tables in slices.

    Per cell it holds only the float64 value (and, with several chunks, one byte counting how often the cell
    arrived); status stays sparse (the cells that carry one). Code and label columns exist only per slice of
    ``SLICE_ROWS`` rows, so landing a selection holds ~9 bytes per cell instead of a whole string table.
    """

    def __init__(
        self,
        variables: Sequence[str],
        codes: Sequence[Sequence[str]],
        labels: Sequence[Sequence[str]] | None,
        chunks: int,
    ) -> None:
        self.variables = list(variables)
        self.codes = [list(c) for c in codes]
        self.labels = [list(lab) for lab in labels] if labels is not None else None
        self.sizes = [len(c) for c in self.codes]
        self.cells = math.prod(self.sizes)
        self._whole: pa.Array | None = None  # the one response that is exactly the selection, as decoded
        self._values: np.ndarray | None = None
        self._seen = np.zeros(self.cells, dtype=np.int8) if chunks > 1 else None
        self._symbols: dict[str, int] = {}
        self._status_parts: list[tuple[np.ndarray, np.ndarray]] = []
        self._status: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, cube: Cube, gidx: np.ndarray | None) -> None:
        """Put one response in place; ``gidx`` maps its cells to rows of the selection (None: it is the selection)."""
        if gidx is None:
            self._whole = cube.value_array
        else:
            if self._values is None:
                self._values = np.full(self.cells, np.nan)
            self._values[gidx] = cube.values
            if self._seen is not None:
                self._seen[gidx] += 1
        if cube.status_positions is not None and cube.status_indices is not None and len(cube.status_positions):
            remap = np.array([self._symbols.setdefault(s, len(self._symbols)) for s in cube.status_symbols], np.int32)
            positions = cube.status_positions if gidx is None else gidx[cube.status_positions]
            self._status_parts.append((positions, remap[cube.status_indices]))
        self._status = None

    def covered_exactly_once(self) -> bool:
        return self._seen is None or bool((self._seen == 1).all())

    def _sorted_status(self) -> tuple[np.ndarray, np.ndarray]:
        if self._status is None:
            if not self._status_parts:
                self._status = (np.empty(0, np.int64), np.empty(0, np.int32))
            else:
                positions = np.concatenate([p for p, _ in self._status_parts])
                indices = np.concatenate([i for _, i in self._status_parts])
                order = np.argsort(positions, kind="stable")
                self._status = (positions[order], indices[order])
        return self._status

    def table(self) -> pa.Table:
        """The whole selection as one table."""
        return self._slice(0, self.cells)

    def tables(self, rows: int = SLICE_ROWS) -> Iterator[pa.Table]:
        """The selection in row order, ``rows`` rows per table (at least one table, even when empty)."""
        for start in range(0, max(self.cells, 1), rows):
            yield self._slice(start, min(self.cells, start + rows))

    def _slice(self, start: int, stop: int) -> pa.Table:
        n = stop - start
        if start == 0 and stop == self.cells:
            idx = code_index_arrays(self.sizes)
        else:
            idx = _index_slices(self.sizes, start, stop)
        cols: dict[str, pa.Array] = {}
        for d, v in enumerate(self.variables):
            cols[v] = string_column(idx[d], self.codes[d])
            if self.labels is not None:
                cols[f"{v}_label"] = string_column(idx[d], self.labels[d])
        if self._whole is not None:
            cols["value"] = self._whole.slice(start, n)
        elif self._values is not None:
            cols["value"] = value_column(self._values[start:stop])
        else:
            cols["value"] = pa.nulls(n, pa.float64())
        positions, indices = self._sorted_status()
        lo, hi = np.searchsorted(positions, [start, stop])
        status = sparse_status_column(positions[lo:hi] - start, indices[lo:hi], list(self._symbols), n)
        cols["status"] = status.cast(pa.string())
        return pa.table(cols)


def _index_slices(sizes: Sequence[int], start: int, stop: int) -> list[np.ndarray]:
    """``code_index_arrays(sizes)`` restricted to rows ``start:stop``, built from the slice alone."""
    out = []
    inner = math.prod(sizes)
    for s in sizes:
        inner = inner // s if s else 0
        dtype = _index_dtype(s)
        if inner == 1:
            out.append((np.arange(start, stop, dtype=np.int64) % s).astype(dtype))
            continue
        first, last = start // inner, (stop - 1) // inner
        blocks = (np.arange(first, last + 1, dtype=np.int64) % s).astype(dtype)
        counts = np.full(len(blocks), inner, dtype=np.int64)
        counts[0] -= start - first * inner
        counts[-1] -= (last + 1) * inner - stop
        out.append(np.repeat(blocks, counts))
    return out
