"""Validate landing batches with GX; quarantine what fails; record every result; build offline Data Docs.

``validate_batch(manifest_path, settings=...)`` is the stage function (CONTRACTS.md). Results go to
``<load_id>.validation.parquet`` next to the batch (the warehouse loader copies them into
``ops.validation_results``). A batch with a failed **fail**-severity check is moved with its manifest and results to
``quarantine/<raw_table>/<source_name>/`` and gets ``<load_id>.reason.txt`` whose first line says why.
Landing therefore only ever holds batches that passed (or are not validated yet).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
import uuid
import warnings as _warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from expectations import checks, gxcore
from expectations.checks import CheckResult
from expectations.gxcore import batch_definition, lock
from expectations.suites import FAIL, SuiteSpec, build_suite, severity_of, spec_for
from regionstat import batches
from regionstat.batches import PARQUET_SUFFIX, VALIDATION_SUFFIX, atomic_write, load_id_of
from regionstat.results import RESULTS_SCHEMA, Severity

STORE_DIRNAME = "_store"  # under docs/gx: GX results and suites as JSON, the input of Data Docs


@dataclass
class ValidationOutcome:
    success: bool
    failures: list[str]
    warnings: list[str]
    results_path: Path | None
    load_id: str
    source_name: str
    quarantined_to: Path | None = None
    raw_table: str = ""
    rows: int = 0
    seconds: float = 0.0

    @property
    def reason(self) -> str | None:
        return f"quarantined: {self.failures[0]}" if self.failures else None


@dataclass
class QuarantineEntry:
    load_id: str
    source_name: str
    raw_table: str
    reason: str
    reason_path: Path
    parquet_path: Path
    quarantined_at: datetime
    rows: int | None = None
    details: list[str] = field(default_factory=list)


# -- helpers ------------------------------------------------------------------------------------------------


def _read_batch(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The frame GX (and the cross-batch checks) validate: the Parquet batch with its string columns as object
    arrays whose equal values share ONE Python ``str``.

    GX's pandas type check knows only object columns of ``str`` (pandas 3's Arrow-backed ``str`` dtype and
    categoricals fail ``type_="str"`` and change the result GX reports), so the columns must be object. Reading into
    pandas and converting with ``astype(object)`` made a new Python string per cell (~60 bytes each: the validation
    peak of issue 16). Here string columns are read dictionary-encoded (Parquet stores them so), each distinct value
    becomes one Python string and the rows hold 8-byte references to it: the same values, types and nulls (NaN) as
    before, so the same GX results, and no string is materialised per row, neither in Arrow nor in Python.
    """
    schema = pq.read_schema(path)
    wanted = list(columns) if columns is not None else [n for n in schema.names if not n.startswith("__index_level_")]
    strings = [n for n in wanted if _is_string(schema.field(n).type)]
    file = pq.ParquetFile(path, read_dictionary=strings)
    others = [n for n in wanted if n not in strings]
    # numbers (and any pandas index metadata) as pandas reads them
    frame = file.read(columns=others, use_pandas_metadata=True).to_pandas() if others else pd.DataFrame()
    index = frame.index if others else pd.RangeIndex(file.metadata.num_rows)
    for name in strings:  # one column at a time: the Arrow buffers of only one column exist at any moment
        codes = file.read(columns=[name]).column(name).unify_dictionaries()
        frame[name] = pd.Series(_shared_strings(codes), index=index, dtype=object)
        del codes
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages otherwise
    return frame[wanted] if strings else frame


def _is_string(arrow_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


def _shared_strings(column: pa.ChunkedArray) -> np.ndarray:
    """A dictionary-encoded (unified) string column as an object array: one ``str`` per distinct value, NaN for null."""
    if column.num_chunks == 0:
        return np.empty(0, dtype=object)
    dictionary = column.chunk(0).dictionary
    lookup = np.array([*dictionary.to_pylist(), np.nan], dtype=object)  # position len(dictionary): null
    codes = pa.chunked_array([chunk.indices for chunk in column.chunks], type=column.type.index_type)
    return lookup.take(pc.fill_null(codes, len(dictionary)).to_numpy())


#: Rows GX validates at a time. Memory holds one chunk's frame and GX's temporaries for it, whatever the batch's
#: size (issue 16); a batch of up to this many rows is one chunk and validated exactly as a whole frame.
CHUNK_ROWS = 250_000
RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 20}


@dataclass
class _Layout:
    """How ``_read_batch`` turns a batch into a frame, so that each chunk becomes that frame's rows."""

    columns: list[str]
    strings: list[str]
    #: numeric (int/bool) columns with a null somewhere: pandas makes the whole column float/object
    nullable: set[str]
    #: the frame's index: ``RangeIndex(start, start + rows * step, step, name=name)``
    index_start: int = 0
    index_step: int = 1
    index_name: str | None = None


def _layout(path: Path) -> _Layout | None:
    """The layout of a batch whose frame can be built chunk by chunk; None if only a whole read gives it (an index
    stored as columns, dictionary-typed columns: pandas would build them from the whole file)."""
    schema = pq.read_schema(path)
    start, step, name = 0, 1, None
    pandas_meta = schema.pandas_metadata or {}
    for index in pandas_meta.get("index_columns", []):
        if not isinstance(index, dict) or index.get("kind") != "range":
            return None
        start, step, name = int(index["start"]), int(index["step"]), index.get("name")
    columns = [n for n in schema.names if not n.startswith("__index_level_")]
    if any(pa.types.is_dictionary(schema.field(n).type) for n in columns):
        return None
    strings = [n for n in columns if _is_string(schema.field(n).type)]
    maybe_int = [
        n for n in columns if pa.types.is_integer(schema.field(n).type) or pa.types.is_boolean(schema.field(n).type)
    ]
    nullable: set[str] = set()
    if maybe_int:
        file = pq.ParquetFile(path)
        for batch in file.iter_batches(batch_size=CHUNK_ROWS, columns=maybe_int):
            nullable |= {n for n in maybe_int if batch.column(n).null_count}
    return _Layout(columns, strings, nullable, start, step, name)


def _chunk_frame(parts: list[pa.RecordBatch], layout: _Layout, offset: int) -> pd.DataFrame:
    """Rows ``offset..`` of the frame ``_read_batch`` gives: same columns, dtypes, values, nulls and index labels."""
    others = [n for n in layout.columns if n not in layout.strings]
    rows = sum(p.num_rows for p in parts)
    frame = pa.Table.from_batches([p.select(others) for p in parts]).to_pandas() if others else pd.DataFrame()
    for name in layout.nullable & set(others):
        dtype = frame[name].dtype  # numpy int/bool only: pandas extension dtypes (Int64) hold nulls themselves
        if isinstance(dtype, np.dtype) and dtype.kind in "iu":
            frame[name] = frame[name].astype("float64")
        elif isinstance(dtype, np.dtype) and dtype.kind == "b":
            frame[name] = frame[name].astype(object)
    first = layout.index_start + offset * layout.index_step
    index = pd.RangeIndex(first, first + rows * layout.index_step, layout.index_step, name=layout.index_name)
    frame.index = index
    for name in layout.strings:  # row groups have their own dictionaries: one dictionary for the chunk
        codes = pa.chunked_array([p.column(name) for p in parts]).unify_dictionaries()
        frame[name] = pd.Series(_shared_strings(codes), index=index, dtype=object)
    return frame[layout.columns]


def _frames(path: Path, chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
    """The frame of ``_read_batch(path)`` in consecutive chunks of about ``chunk_rows`` (default
    :data:`CHUNK_ROWS`) rows (up to twice that where row groups end in between); a batch of one chunk (or one that
    only a whole read gives) is that very frame."""
    rows = chunk_rows or CHUNK_ROWS
    layout = _layout(path)
    if layout is None or pq.ParquetFile(path).metadata.num_rows <= rows:
        yield _read_batch(path)
        return
    file = pq.ParquetFile(path, read_dictionary=layout.strings)
    offset, parts = 0, []
    for part in file.iter_batches(batch_size=rows, columns=layout.columns, use_pandas_metadata=False):
        parts.append(part)
        buffered = sum(p.num_rows for p in parts)
        if buffered >= rows:
            yield _chunk_frame(parts, layout, offset)
            offset, parts = offset + buffered, []
            pa.default_memory_pool().release_unused()
    if parts:
        yield _chunk_frame(parts, layout, offset)


@dataclass
class _BatchView:
    """What the reporting needs of the whole batch, gathered chunk by chunk: columns and dtypes, the distinct
    unknown codes of a failed in-set expectation, the distinct values a distinct-values expectation looks at,
    the rows and GX's batch fingerprint."""

    columns: list[str] = field(default_factory=list)
    dtypes: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    chunks: int = 0
    #: suite position -> the distinct values not in the value set (None: they could not be listed)
    unknown: dict[int, set[Any] | None] = field(default_factory=dict)
    #: suite position -> the column's distinct non-null values
    distinct: dict[int, set[Any]] = field(default_factory=dict)
    #: suite position -> the cross-chunk duplicated rows wanted (global row numbers) and what was found of them
    duplicates: dict[int, tuple[list[int], gxcore.CrossChunkRows]] = field(default_factory=dict)
    fingerprint: Any = None
    frame_bytes: int = 0
    hashable: bool = True

    def observe(self, frame: pd.DataFrame, result: Any) -> None:
        if not self.chunks:
            self.columns = list(frame.columns)
            self.dtypes = {c: str(frame[c].dtype) for c in frame.columns}
            self.fingerprint = hashlib.md5(usedforsecurity=False)
        offset = self.rows
        self.chunks += 1
        self.rows += len(frame)
        for res in result.results:
            cfg, order = res.expectation_config, gxcore.order_of(res)
            col = cfg.kwargs.get("column")
            if col not in frame.columns or (res.exception_info or {}).get("raised_exception"):
                continue
            if cfg.type == "expect_column_values_to_be_in_set" and not res.success and order not in self.unknown:
                self.unknown[order] = set()
            if cfg.type == "expect_column_values_to_be_in_set" and not res.success and self.unknown[order] is not None:
                allowed = set(cfg.kwargs["value_set"] or [])
                try:
                    self.unknown[order] |= {v for v in frame[col].dropna().unique() if v not in allowed}  # type: ignore[operator]
                except Exception:
                    self.unknown[order] = None
            if cfg.type == gxcore.DISTINCT_CONTAIN:
                self.distinct.setdefault(order, set()).update(frame[col].dropna().unique())
        for order, (wanted, found) in self.duplicates.items():
            here = [n - offset for n in wanted if offset <= n < offset + len(frame)]
            if here:
                columns = list(_expectation_kwargs(result, order)["column_list"])
                found.values += frame[columns].iloc[here].to_dict("records")
                found.index += list(frame.index[here])
        self.frame_bytes += int(frame.memory_usage(index=False).sum())
        try:
            self.fingerprint.update(pd.util.hash_pandas_object(frame, index=True).to_numpy())
        except TypeError:
            self.hashable = False

    def batch_fingerprint(self, index: pd.Index) -> str | None:
        """GX's ``pandas_data_fingerprint`` of the whole frame (md5 of its row hashes: chunks hash the same rows),
        absent as GX leaves it for frames over its size threshold."""
        from great_expectations.execution_engine.pandas_execution_engine import HASH_THRESHOLD

        if not self.hashable or self.frame_bytes + index.memory_usage() >= HASH_THRESHOLD:
            return None
        return str(self.fingerprint.hexdigest())


def _expectation_kwargs(result: Any, order: int) -> dict[str, Any]:
    return next(r.expectation_config.kwargs for r in result.results if gxcore.order_of(r) == order)


def _duplicated_rows(path: Path, columns: list[str], limit: int) -> tuple[int, list[int]]:
    """Rows of the whole batch whose key ``columns`` occur more than once, as GX's compound uniqueness counts them
    (``duplicated(keep=False)`` over rows not all-null in ``columns``; null equals null): their number and the
    first ``limit`` row numbers.

    DuckDB over the Parquet file, within its memory limit (it spills beyond). First the keys' 64-bit hashes are
    grouped (small, fast): no hash twice means no key twice. Only then are the keys themselves grouped, exactly.
    """
    keys = ", ".join(_quote_ident(c) for c in columns)
    not_all_null = " OR ".join(f"{_quote_ident(c)} IS NOT NULL" for c in columns)
    same = " AND ".join(f"t.{_quote_ident(c)} IS NOT DISTINCT FROM d.{_quote_ident(c)}" for c in columns)
    with checks.connect() as con:
        con.read_parquet(str(path), file_row_number=True).create_view("batch")
        con.execute(f"CREATE TEMP VIEW t AS SELECT file_row_number AS rn, {keys} FROM batch WHERE {not_all_null}")
        ((repeated,),) = con.execute(
            f"SELECT count(*) FROM (SELECT hash({keys}) FROM t GROUP BY ALL HAVING count(*) > 1)"
        ).fetchall()
        if not repeated:
            return 0, []
        con.execute(f"CREATE TEMP TABLE d AS SELECT {keys}, count(*) AS n FROM t GROUP BY ALL HAVING count(*) > 1")
        ((count,),) = con.execute("SELECT coalesce(sum(n), 0) FROM d").fetchall()
        if not count:
            return 0, []
        first = con.execute(f"SELECT t.rn FROM t JOIN d ON {same} ORDER BY t.rn LIMIT {int(limit)}").fetchall()
    return int(count), [int(r[0]) for r in first]


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _previous_batch(manifest_path: Path, load_id: str, manifest: dict[str, Any]) -> Path | None:
    """The last *validated* batch before this one of the same source (and, for inbox files, of the same file).

    Only batches with a validation result count (in landing that means they passed): a newer or not yet
    validated batch is no baseline, and another municipality's file is not this file's previous version.
    """
    table_id = manifest.get("table_id") if manifest.get("kind") == "file" else None
    return batches.latest_validated(manifest_path.parent, before=load_id, table_id=table_id)


def _quote(values: list[Any], limit: int = 10) -> str:
    shown = ", ".join(f"'{v}'" for v in values[:limit])
    return shown + (f" (+{len(values) - limit} more)" if len(values) > limit else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _col_label(cfg: Any) -> str:
    kw = cfg.kwargs
    if kw.get("column"):
        return str(kw["column"])
    if kw.get("column_list"):
        return ",".join(kw["column_list"])
    return ""


def _describe(res: Any, batch: _BatchView) -> str:
    """One line saying what a failed GX result found."""
    cfg = res.expectation_config
    kw, r, t = cfg.kwargs, res.result or {}, cfg.type
    exc = res.exception_info or {}
    if exc.get("raised_exception"):
        msg = str(exc.get("exception_message") or "error").strip().splitlines()[0]
        col = kw.get("column")
        if col and col not in batch.columns:
            return f"column '{col}' is missing"
        return f"could not be evaluated: {msg}"
    n = r.get("unexpected_count") or 0
    col = kw.get("column")
    if col and col not in batch.columns:
        return f"column '{col}' is missing"
    if t == "expect_table_columns_to_match_set":
        expected, observed = list(kw["column_set"]), list(batch.columns)
        missing = [c for c in expected if c not in observed]
        extra = [c for c in observed if c not in expected]
        parts = []
        if missing:
            parts.append(f"missing column{'s' if len(missing) > 1 else ''} {_quote(missing)}")
        if extra:
            parts.append(f"unexpected column{'s' if len(extra) > 1 else ''} {_quote(extra)}")
        return "; ".join(parts) or f"columns {observed}"
    if t == "expect_column_values_to_be_in_set":
        kind = "symbol" if col == "status" else "code"
        unknown = batch.unknown.get(gxcore.order_of(res))
        if unknown is not None:  # every chunk's distinct values not in the value set
            bad = sorted({str(v) for v in unknown})
        else:
            bad = sorted({str(v) for v in r.get("partial_unexpected_list") or []})
        text = f"{_plural(len(bad), 'unknown ' + kind)} {_quote(bad)}"
        return text + (f" in {n} rows" if n > len(bad) else "")
    if t in ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"):
        want = kw.get("type_") or "/".join(kw.get("type_list") or [])
        got = r.get("observed_value") or batch.dtypes.get(col, "?")
        if n:
            sample = r.get("partial_unexpected_list") or []
            kinds = sorted({type(v).__name__ for v in sample}) or ["another type"]
            return f"expected {want}, found {_plural(n, '/'.join(kinds) + ' value')} e.g. {_quote(sample[:3])}"
        return f"expected {want}, found {got}"
    if t == "expect_column_values_to_be_between":
        sample = sorted({v for v in r.get("partial_unexpected_list") or [] if v is not None}, key=str)
        return f"{_plural(n, 'value')} below {kw.get('min_value'):g}: {_quote(sample)}"
    if t == "expect_column_values_to_be_null" and (cfg.meta or {}).get("check") == "integral":
        sample = r.get("partial_unexpected_list") or []
        return f"{_plural(n, 'non-integral count')}: {_quote(sample)}"
    if t == "expect_column_values_to_not_be_null":
        return f"{_plural(n, 'null value')}"
    if t == "expect_compound_columns_to_be_unique":
        return f"{_plural(n, 'row')} with duplicated keys ({', '.join(kw['column_list'])})"
    if t == "expect_table_row_count_to_equal":
        return f"{r.get('observed_value')} rows but the manifest promises {kw['value']} cells"
    if t == "expect_column_distinct_values_to_contain_set":
        missing = sorted(str(v) for v in (r.get("partial_missing_list") or []))
        cnt = r.get("missing_count") or len(missing)
        prev = (cfg.meta or {}).get("previous_load_id")
        return f"{_plural(cnt, 'value')} vanished since previous batch {prev}: {_quote(missing)}"
    if t == "expect_column_values_to_match_regex":
        sample = sorted({str(v) for v in r.get("partial_unexpected_list") or []})
        return f"{_plural(n, 'value')} not matching {kw['regex'][:40]}: {_quote(sample)}"
    if n:
        return f"{_plural(n, 'unexpected value')}: {_quote(r.get('partial_unexpected_list') or [])}"
    return f"observed {r.get('observed_value')!r}"


def _observed(res: Any) -> str | None:
    r = res.result or {}
    if "observed_value" in r and r["observed_value"] is not None:
        v = r["observed_value"]
        return v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)
    if "unexpected_count" in r:
        return f"{r['unexpected_count']} unexpected"
    if "missing_count" in r:
        return f"{r['missing_count']} missing"
    return None


def _details(res: Any) -> str:
    cfg = res.expectation_config
    kw = {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}
    if isinstance(kw.get("value_set"), list) and len(kw["value_set"]) > 30:
        kw["value_set"] = f"<{len(kw['value_set'])} values>"
    if isinstance(kw.get("regex"), str) and len(kw["regex"]) > 80:
        kw["regex"] = kw["regex"][:77] + "..."
    r = {k: v for k, v in (res.result or {}).items() if k not in ("partial_unexpected_index_list",)}
    exc = res.exception_info or {}
    out = {"kwargs": kw, "result": r, "notes": (cfg.meta or {}).get("notes")}
    if exc.get("raised_exception"):
        out["exception"] = str(exc.get("exception_message"))
    return checks.dumps(out)


# -- the stage function -----------------------------------------------------------------------------------


def _run_gx(df: pd.DataFrame, suite: Any, spec: SuiteSpec) -> Any:
    with lock(), _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        definition = batch_definition(spec.source_name, spec.raw_table)
        return gxcore.validate(definition, df, suite, RESULT_FORMAT)


def validate_batch(manifest_path: str | os.PathLike[str], *, settings: Any) -> ValidationOutcome:
    """Validate one landing batch; on a fail-severity failure move it to quarantine with its reason."""
    with _warnings.catch_warnings():
        # GX deprecates string row conditions (ours need pandas query syntax, e.g. ``value % 1 != 0``).
        _warnings.simplefilter("ignore", DeprecationWarning)
        return _validate_batch(Path(manifest_path), settings=settings)


def _validate_batch(manifest_path: Path, *, settings: Any) -> ValidationOutcome:
    t0 = time.perf_counter()
    manifest_path = Path(manifest_path)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    load_id = manifest.get("load_id") or load_id_of(manifest_path)
    source_name, raw_table = manifest["source_name"], manifest["raw_table"]
    parquet_path = manifest_path.with_name(f"{load_id}{PARQUET_SUFFIX}")
    spec = spec_for(source_name, raw_table, manifest.get("schema"))
    run_id = uuid.uuid4().hex
    validated_at = datetime.now(UTC)

    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    warnings: list[str] = []

    def record(
        expectation: str,
        column: str | None,
        severity: Severity,
        success: bool,
        observed: Any,
        details: str,
        message: str,
    ) -> None:
        rows.append(
            {
                "run_id": run_id,
                "load_id": load_id,
                "source_name": source_name,
                "expectation": expectation,
                "column": column or None,
                "severity": str(severity),
                "success": bool(success),
                "observed_value": None if observed is None else str(observed),
                "details": details,
                "validated_at": validated_at,
            }
        )
        if not success:
            label = f"{expectation}({column})" if column else expectation
            (failures if severity == FAIL else warnings).append(f"{label} failed: {message}")

    def unreadable(exc: Exception) -> ValidationOutcome:
        record(
            "expect_parquet_to_be_readable",
            None,
            FAIL,
            False,
            None,
            checks.dumps({"error": str(exc)}),
            f"cannot read {parquet_path.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
        )
        return _finish(settings, manifest_path, manifest, spec, rows, failures, warnings, None, t0, None)

    try:
        frames = _frames(parquet_path)
        frame: pd.DataFrame | None = next(frames)
    except Exception as exc:
        return unreadable(exc)

    prev_manifest_path = _previous_batch(manifest_path, load_id, manifest)
    prev_manifest = None
    prev_pq: Path | None = None
    prev_columns: list[str] = []
    previous_values: dict[str, list[str]] = {}
    extra: list[CheckResult] = []
    if prev_manifest_path is not None:
        prev_manifest = json.loads(prev_manifest_path.read_text(encoding="utf-8"))
        prev_load = prev_manifest.get("load_id") or load_id_of(prev_manifest_path)
        prev_pq = prev_manifest_path.with_name(f"{prev_load}{PARQUET_SUFFIX}")
        if prev_manifest.get("region_set") != manifest.get("region_set"):
            extra.append(checks.region_set_note(manifest, prev_manifest))
            prev_pq = None
        elif prev_pq.exists():
            prev_columns = pq.read_schema(prev_pq).names
            for col in spec.dimensions:
                if col in prev_columns:
                    previous_values[col] = _distinct_strings(prev_pq, col)
        else:
            prev_pq = None
    prev_load_id = prev_manifest.get("load_id") if prev_manifest else None

    suite = build_suite(
        spec, cells=manifest.get("cells"), previous_values=previous_values, previous_load_id=prev_load_id
    )
    batch = _BatchView()
    chunked = gxcore.ChunkedSuiteResult(RESULT_FORMAT)
    limit = int(RESULT_FORMAT["partial_unexpected_count"])
    result: Any = None
    if _in_chunks(parquet_path):
        # a key may repeat in two chunks, which no chunk's GX run sees: find such rows in the whole file first
        names = set(pq.read_schema(parquet_path).names)
        for expectation in suite.expectations:
            if expectation.expectation_type == gxcore.COMPOUND_UNIQUE and set(expectation.column_list) <= names:
                count, first = _duplicated_rows(parquet_path, list(expectation.column_list), limit)
                batch.duplicates[int(expectation.meta["order"])] = (first, gxcore.CrossChunkRows(count))
    while frame is not None:
        result = _run_gx(frame, suite, spec)
        batch.observe(frame, result)
        chunked.add(result)
        del frame
        try:
            frame = next(frames, None)
        except Exception as exc:
            return unreadable(exc)
    if batch.chunks > 1:
        result = chunked.combined(
            rows=batch.rows,
            fingerprint=batch.batch_fingerprint(_whole_index(parquet_path, batch.rows)),
            cross_chunk={order: found for order, (_, found) in batch.duplicates.items()},
            replaced=_on_distinct_values(suite, spec, batch, result),
        )
    results = sorted(result.results, key=gxcore.order_of)
    for res in results:
        cfg = res.expectation_config
        sev = severity_of(cfg)
        record(
            cfg.type,
            _col_label(cfg),
            sev,
            res.success,
            _observed(res),
            _details(res),
            "" if res.success else _describe(res, batch),
        )

    if prev_pq is not None and prev_load_id:
        c = checks.year_totals(parquet_path, prev_pq, previous_load_id=prev_load_id)
        if c is not None:
            extra.append(c)
    if spec.kind == "pxweb":
        present = checks.values_present(parquet_path, manifest)
        if present is not None:
            extra.append(present)
        extra.extend(checks.requested_regions_have_values(parquet_path, manifest, spec.region_variables))
    if spec.kind == "file":
        for c in (
            checks.periods_not_in_future(parquet_path),
            checks.keys_shared_with_other_files(
                parquet_path, manifest, spec.dimensions, landing_dir=Path(settings.landing_dir)
            ),
        ):
            if c is not None:
                extra.append(c)
    if checks.applies_od(spec):
        extra.append(checks.od_row_sums(parquet_path, landing_dir=Path(settings.landing_dir)))
    if checks.applies_age_sums(spec):
        extra.append(checks.age_sums_match_population(parquet_path, landing_dir=Path(settings.landing_dir)))
    for c in extra:
        record(c.expectation, c.column, c.severity, c.success, c.observed_value, checks.dumps(c.details), c.message)
    return _finish(settings, manifest_path, manifest, spec, rows, failures, warnings, result, t0, batch.rows)


def _distinct_strings(path: Path, column: str) -> list[str]:
    """``str`` of every distinct non-null value of one column of a batch, read a chunk at a time."""
    seen: set[Any] = set()
    for part in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS, columns=[column]):
        seen.update(pc.unique(part.column(0)).to_pylist())
    return [str(v) for v in seen if v is not None and v == v]  # v != v: NaN, a null to pandas


def _in_chunks(path: Path) -> bool:
    """Whether :func:`_frames` gives this batch in more than one chunk."""
    return pq.ParquetFile(path).metadata.num_rows > CHUNK_ROWS and _layout(path) is not None


def _whole_index(path: Path, rows: int) -> pd.Index:
    layout = _layout(path)
    start, step, name = (layout.index_start, layout.index_step, layout.index_name) if layout else (0, 1, None)
    return pd.RangeIndex(start, start + rows * step, step, name=name)


def _on_distinct_values(suite: Any, spec: SuiteSpec, batch: _BatchView, last: Any) -> dict[int, Any]:
    """Results of the distinct-values expectations on the whole batch: GX evaluates each on a frame of the
    column's distinct values (all it looks at), gathered from every chunk."""
    out: dict[int, Any] = {}
    g = gxcore.gx()
    for expectation in suite.expectations:
        order = int((expectation.meta or {}).get("order", -1))
        if expectation.expectation_type != gxcore.DISTINCT_CONTAIN or order not in batch.distinct:
            continue
        col = expectation.column
        values = pd.Series(sorted(batch.distinct[order], key=str), dtype=batch.dtypes[col], name=col)
        one = g.ExpectationSuite(name=suite.name, expectations=[copy.deepcopy(expectation)])
        (res,) = _run_gx(values.to_frame(), one, spec).results
        out[order] = res
    return out


def _finish(
    settings: Any,
    manifest_path: Path,
    manifest: dict[str, Any],
    spec: SuiteSpec,
    rows: list[dict[str, Any]],
    failures: list[str],
    warnings: list[str],
    gx_result: Any,
    t0: float,
    nrows: int | None,
) -> ValidationOutcome:
    load_id = manifest.get("load_id") or load_id_of(manifest_path)
    source_name, raw_table = manifest["source_name"], manifest["raw_table"]
    table = pa.Table.from_pylist(rows, schema=RESULTS_SCHEMA)
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    data = buf.getvalue().to_pybytes()
    outcome = ValidationOutcome(
        success=not failures,
        failures=failures,
        warnings=warnings,
        results_path=None,
        load_id=load_id,
        source_name=source_name,
        raw_table=raw_table,
        rows=nrows or 0,
    )
    if gx_result is not None:
        _store_for_docs(settings, spec, load_id, gx_result)
    if not failures:
        outcome.results_path = manifest_path.with_name(f"{load_id}{VALIDATION_SUFFIX}")
        atomic_write(outcome.results_path, data)  # written last: marks the batch as validated
    else:
        reason = [
            f"quarantined: {failures[0]}",
            "",
            f"load_id: {load_id}",
            f"source: {source_name} ({manifest.get('table_id')})",
            f"raw_table: {raw_table}",
            f"validated_at: {rows[0]['validated_at'].isoformat() if rows else ''}",
            f"failures ({len(failures)}):",
            *[f"  - {f}" for f in failures],
        ]
        if warnings:
            reason += [f"warnings ({len(warnings)}):", *[f"  - {w}" for w in warnings]]
        outcome.quarantined_to = batches.quarantine(
            manifest_path,
            settings=settings,
            raw_table=raw_table,
            source_name=source_name,
            reason="\n".join(reason) + "\n",
            results=data,
        )
        outcome.results_path = outcome.quarantined_to.with_name(f"{load_id}{VALIDATION_SUFFIX}")
    outcome.seconds = time.perf_counter() - t0
    return outcome


def validate_pending(
    settings: Any, *, build_docs: bool = True, sources: Sequence[str] | None = None
) -> list[ValidationOutcome]:
    """Validate every landing batch that has no ``.validation.parquet`` yet, oldest first.

    ``sources`` limits it to those catalogue sources (folder names under ``landing/<raw_table>/``).
    """
    outcomes = [validate_batch(m, settings=settings) for m in batches.pending(settings, sources)]
    if outcomes and build_docs:
        build_data_docs(settings)
    return outcomes


def list_quarantine(settings: Any) -> list[QuarantineEntry]:
    """Every quarantined batch, newest first, with the first line of its reason."""
    out: list[QuarantineEntry] = []
    for reason_path in batches.reason_paths(settings):
        load_id = reason_path.name.removesuffix(batches.REASON_SUFFIX)
        lines = reason_path.read_text(encoding="utf-8").splitlines()
        rows = None
        man = reason_path.with_name(f"{load_id}{batches.MANIFEST_SUFFIX}")
        if man.exists():
            try:
                rows = json.loads(man.read_text(encoding="utf-8")).get("rows")
            except ValueError:
                rows = None
        out.append(
            QuarantineEntry(
                load_id=load_id,
                source_name=reason_path.parent.name,
                raw_table=reason_path.parent.parent.name,
                reason=lines[0] if lines else "",
                reason_path=reason_path,
                parquet_path=reason_path.with_name(f"{load_id}{PARQUET_SUFFIX}"),
                quarantined_at=datetime.fromtimestamp(reason_path.stat().st_mtime, UTC),
                rows=rows,
                details=[ln.strip()[2:] for ln in lines if ln.strip().startswith("- ")],
            )
        )
    return sorted(out, key=lambda e: e.load_id, reverse=True)


# -- Data Docs --------------------------------------------------------------------------------------------


def _store_dir(settings: Any) -> Path:
    return Path(settings.docs_dir) / "gx" / STORE_DIRNAME


def _store_for_docs(settings: Any, spec: SuiteSpec, load_id: str, gx_result: Any) -> None:
    store = _store_dir(settings)
    payload = gx_result.to_json_dict()
    atomic_write(
        store / "results" / spec.suite_name / f"{load_id}.json", json.dumps(payload, default=str).encode("utf-8")
    )


def build_data_docs(settings: Any) -> Path:
    """Render GX Data Docs for every stored validation under ``<data_dir>/docs/gx/index.html``, offline."""
    from expectations.docs import build

    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", DeprecationWarning)
        return build(settings)
