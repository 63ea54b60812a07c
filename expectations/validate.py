"""Validate landing batches with GX; quarantine what fails; record every result; build offline Data Docs.

``validate_batch(manifest_path, settings=...)`` is the stage function (CONTRACTS.md). Results go to
``<load_id>.validation.parquet`` next to the batch (the warehouse loader copies them into
``ops.validation_results``). A batch with a failed **fail**-severity check is moved with its manifest and results to
``quarantine/<raw_table>/<source_name>/`` and gets ``<load_id>.reason.txt`` whose first line says why.
Landing therefore only ever holds batches that passed (or are not validated yet).
"""

from __future__ import annotations

import json
import os
import time
import uuid
import warnings as _warnings
from collections.abc import Sequence
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
from expectations.suites import FAIL, TIME_COLUMNS, SuiteSpec, build_suite, severity_of, spec_for
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


def _describe(res: Any, df: pd.DataFrame) -> str:
    """One line saying what a failed GX result found."""
    cfg = res.expectation_config
    kw, r, t = cfg.kwargs, res.result or {}, cfg.type
    exc = res.exception_info or {}
    if exc.get("raised_exception"):
        msg = str(exc.get("exception_message") or "error").strip().splitlines()[0]
        col = kw.get("column")
        if col and col not in df.columns:
            return f"column '{col}' is missing"
        return f"could not be evaluated: {msg}"
    n = r.get("unexpected_count") or 0
    col = kw.get("column")
    if col and col not in df.columns:
        return f"column '{col}' is missing"
    if t == "expect_table_columns_to_match_set":
        expected, observed = list(kw["column_set"]), list(df.columns)
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
        allowed = set(kw["value_set"] or [])
        try:
            bad = sorted({str(v) for v in df[col].dropna().unique() if v not in allowed})
        except Exception:
            bad = sorted({str(v) for v in r.get("partial_unexpected_list") or []})
        text = f"{_plural(len(bad), 'unknown ' + kind)} {_quote(bad)}"
        return text + (f" in {n} rows" if n > len(bad) else "")
    if t in ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"):
        want = kw.get("type_") or "/".join(kw.get("type_list") or [])
        got = r.get("observed_value") or (str(df[col].dtype) if col in df.columns else "?")
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
        return gxcore.validate(definition, df, suite, {"result_format": "SUMMARY", "partial_unexpected_count": 20})


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

    try:
        df = _read_batch(parquet_path)
    except Exception as exc:
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
            # the previous batch column by column, never whole next to this one (memory: issue 16)
            prev_columns = pq.read_schema(prev_pq).names
            for col in spec.dimensions:
                if col in prev_columns:
                    values = _read_batch(prev_pq, [col])[col]
                    previous_values[col] = [str(v) for v in values.dropna().unique()]
        else:
            prev_pq = None
    prev_load_id = prev_manifest.get("load_id") if prev_manifest else None

    suite = build_suite(
        spec, cells=manifest.get("cells"), previous_values=previous_values, previous_load_id=prev_load_id
    )
    result = _run_gx(df, suite, spec)
    results = sorted(result.results, key=lambda r: (r.expectation_config.meta or {}).get("order", 10**6))
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
            "" if res.success else _describe(res, df),
        )

    if prev_pq is not None and prev_load_id:
        # only the columns year_totals compares: the period, the content code, the value
        compared = [c for c in (*TIME_COLUMNS, "ContentsCode", "value") if c in prev_columns]
        c = checks.year_totals(df, _read_batch(prev_pq, compared), previous_load_id=prev_load_id)
        if c is not None:
            extra.append(c)
    if spec.kind == "pxweb":
        present = checks.values_present(df, manifest)
        if present is not None:
            extra.append(present)
        extra.extend(checks.requested_regions_have_values(df, manifest, spec.region_variables))
    if spec.kind == "file":
        for c in (
            checks.periods_not_in_future(df),
            checks.keys_shared_with_other_files(df, manifest, spec.dimensions, landing_dir=Path(settings.landing_dir)),
        ):
            if c is not None:
                extra.append(c)
    if checks.applies_od(spec):
        extra.append(checks.od_row_sums(df, landing_dir=settings.landing_dir))
    if checks.applies_age_sums(spec):
        extra.append(checks.age_sums_match_population(df, landing_dir=Path(settings.landing_dir)))
    for c in extra:
        record(c.expectation, c.column, c.severity, c.success, c.observed_value, checks.dumps(c.details), c.message)
    return _finish(settings, manifest_path, manifest, spec, rows, failures, warnings, result, t0, len(df))


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
