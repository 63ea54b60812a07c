"""Fast JSON-stat 2.0 decoding into Arrow.

The cube is laid out row-major over ``id`` (the last dimension varies fastest), so every code column is
``repeat(tile(arange(size_i), outer_i), inner_i)`` of the dimension's codes; no Python loop over cells.
Values go straight from the parsed list into a float64 array (``None`` -> NaN -> null), ``status`` (dict
index -> symbol, list, or one string for all) into a string column.

``decode_jsonstat2(payload)`` is the public entry point; the client uses the lower-level ``parse_cube``
to stitch chunked responses together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from regionstat.errors import ResponseError

BOM = b"\xef\xbb\xbf"

__all__ = [
    "Cube",
    "DimensionInfo",
    "category_codes",
    "category_labels",
    "code_index_arrays",
    "decode_jsonstat2",
    "loads",
    "parse_cube",
]


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
        raise ResponseError(f"{what} is not valid JSON ({len(payload):,} bytes): {exc}") from None


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
    """A decoded JSON-stat dataset: dimensions in ``id`` order, values (NaN = missing), status codes."""

    dimensions: list[DimensionInfo]
    values: np.ndarray  # float64, NaN where null
    status_codes: np.ndarray | None  # int32 index into status_symbols, -1 = none; None = no status at all
    status_symbols: list[str]

    @property
    def sizes(self) -> list[int]:
        return [len(d.codes) for d in self.dimensions]

    @property
    def cells(self) -> int:
        return int(self.values.shape[0])


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


def _status_arrays(raw: Any, n: int) -> tuple[np.ndarray | None, list[str]]:
    if raw is None or (isinstance(raw, Mapping | list) and not raw):
        return None, []
    symbols: dict[str, int] = {}
    if isinstance(raw, str):
        return np.zeros(n, dtype=np.int32), [raw]
    codes = np.full(n, -1, dtype=np.int32)
    if isinstance(raw, Mapping):
        pos = np.fromiter(map(int, raw.keys()), dtype=np.int64, count=len(raw))
        sym = np.fromiter(
            (symbols.setdefault(s, len(symbols)) if s is not None else -1 for s in raw.values()),
            dtype=np.int32,
            count=len(raw),
        )
        if pos.size and (pos.min() < 0 or pos.max() >= n):
            raise ResponseError(f"status index out of range for {n:,} cells")
        codes[pos] = sym
    else:
        if len(raw) == 1 and n != 1:  # JSON-stat: a one-element array applies to every cell
            s = raw[0]
            return (np.zeros(n, dtype=np.int32), [s]) if s is not None else (None, [])
        if len(raw) != n:
            raise ResponseError(f"status has {len(raw):,} cells, expected {n:,}")
        codes = np.fromiter(
            (symbols.setdefault(s, len(symbols)) if s is not None else -1 for s in raw), dtype=np.int32, count=n
        )
    return codes, list(symbols)


def parse_cube(payload: bytes | str | Mapping[str, Any], *, labels: bool = False) -> Cube:
    """Parse a JSON-stat 2.0 dataset (bytes or already-parsed dict) into a Cube."""
    ds = loads(payload, what="JSON-stat response")
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
    values = _values_array(ds.get("value"), n)
    status_codes, symbols = _status_arrays(ds.get("status"), n)
    return Cube(dims, values, status_codes, symbols)


def code_index_arrays(sizes: Sequence[int]) -> list[np.ndarray]:
    """For a row-major cube of ``sizes``, the per-dimension category index of every cell (int32)."""
    total = 1
    for s in sizes:
        total *= s
    out = []
    inner = total
    outer = 1
    for s in sizes:
        inner //= s
        idx = np.arange(s, dtype=np.int32)
        if inner > 1:
            idx = np.repeat(idx, inner)
        if outer > 1:
            idx = np.tile(idx, outer)
        out.append(idx)
        outer *= s
    return out


def string_column(indices: np.ndarray, dictionary: Sequence[str]) -> pa.Array:
    """Materialise ``dictionary[indices]`` as a plain Arrow string column."""
    return pa.array(list(dictionary), type=pa.string()).take(pa.array(indices, type=pa.int32()))


def value_column(values: np.ndarray) -> pa.Array:
    mask = np.isnan(values)
    return pa.array(values, type=pa.float64(), mask=mask if mask.any() else None)


def status_column(codes: np.ndarray | None, symbols: Sequence[str], n: int) -> pa.Array:
    if codes is None or not symbols:
        return pa.nulls(n, type=pa.string())
    mask = codes < 0
    safe = np.where(mask, 0, codes).astype(np.int32, copy=False) if mask.any() else codes
    return pa.array(list(symbols), type=pa.string()).take(
        pa.array(safe, type=pa.int32(), mask=mask if mask.any() else None)
    )


def cube_to_table(cube: Cube, *, labels: bool = False, drop: Sequence[str] = ()) -> pa.Table:
    """Arrow table: one string column per dimension (codes), [<dim>_label], value float64, status string."""
    sizes = cube.sizes
    idx = code_index_arrays(sizes)
    cols: dict[str, pa.Array] = {}
    for dim, ix in zip(cube.dimensions, idx, strict=True):
        if dim.code in drop:
            continue
        cols[dim.code] = string_column(ix, dim.codes)
        if labels:
            cols[f"{dim.code}_label"] = string_column(ix, dim.labels)
    n = cube.cells
    cols["value"] = value_column(cube.values)
    cols["status"] = status_column(cube.status_codes, cube.status_symbols, n)
    return pa.table(cols)


def decode_jsonstat2(payload: bytes | str | Mapping[str, Any], *, labels: bool = False) -> pa.Table:
    """Decode a JSON-stat 2.0 dataset (bytes, str or parsed dict) into a pyarrow Table.

    Columns: one ``string`` column per dimension in ``id`` order holding the value codes (plus
    ``<dim>_label`` columns when ``labels=True``), ``value`` (float64, null where missing) and ``status``
    (string symbol or null). A UTF-8 BOM is stripped.
    """
    return cube_to_table(parse_cube(payload, labels=labels), labels=labels)
