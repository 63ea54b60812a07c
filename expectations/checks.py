"""Checks that compare a batch with other batches, which a single-frame GX expectation cannot express.

Each returns :class:`CheckResult` rows that land in the same validation parquet as the GX results. They run as
DuckDB queries over the batches' Parquet files (or a frame, for callers that hold one), so a batch of any size is
aggregated without being held as Python objects (issue 16): DuckDB gets a small memory limit and one thread.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeAlias

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from expectations.suites import FAIL, TIME_COLUMNS, WARN, SuiteSpec
from regionstat.batches import MANIFEST_SUFFIX, PARQUET_SUFFIX, is_validated, load_id_of
from regionstat.results import Severity

YEAR_TOTAL_TOLERANCE = 0.05
#: OD row sums may exceed employed residents by this much (disclosure noise, age-band differences).
OD_TOLERANCE = 0.02
#: DuckDB's memory for the whole-batch checks; beyond it DuckDB spills to a temporary directory. Small: the
#: aggregates are few groups, and the one large one (duplicated keys of a 10 M-row batch) spills fine.
DUCKDB_MEMORY_LIMIT = "64MB"

#: A batch for the checks: its Parquet file (read by DuckDB, never whole into Python) or a frame.
BatchData: TypeAlias = pd.DataFrame | Path


@contextmanager
def connect() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-process DuckDB with a small memory limit and one thread (the machine's cores belong to the pipeline)."""
    with tempfile.TemporaryDirectory(prefix="regionstat-checks-") as spill:
        con = duckdb.connect(
            config={"memory_limit": DUCKDB_MEMORY_LIMIT, "threads": 1, "temp_directory": spill},
        )
        try:
            yield con
        finally:
            con.close()


class _Table:
    """One batch as a DuckDB view, with its column names and types."""

    def __init__(self, con: duckdb.DuckDBPyConnection, data: BatchData, name: str) -> None:
        if isinstance(data, pd.DataFrame):
            rel = con.from_arrow(pa.Table.from_pandas(data, preserve_index=False))
        else:
            rel = con.read_parquet(str(data))
        rel.create_view(name)
        self.con, self.name = con, name
        self.types = {c: str(t).upper() for c, t in zip(rel.columns, rel.types, strict=True)}
        self.columns = list(rel.columns)

    def notna(self, column: str) -> str:
        """SQL for pandas' ``notna``: NaN is missing in a float column, as in pandas."""
        if self.types[column] in ("DOUBLE", "FLOAT", "REAL"):
            return f"({_q(column)} IS NOT NULL AND NOT isnan({_q(column)}))"
        return f"({_q(column)} IS NOT NULL)"

    def is_numeric(self, column: str) -> bool:
        kind = self.types[column]
        return kind in ("DOUBLE", "FLOAT", "REAL") or kind.startswith("DECIMAL") or "INT" in kind

    def count(self, where: str = "TRUE") -> int:
        ((n,),) = self.con.execute(f"SELECT count(*) FROM {self.name} WHERE {where}").fetchall()
        return int(n)

    def distinct(self, column: str, *, where: str = "TRUE") -> list[Any]:
        """The non-null distinct values of ``column`` (as ``frame[column].dropna().unique()``, in no order)."""
        rows = self.con.sql(
            f"SELECT DISTINCT {_q(column)} FROM {self.name} WHERE {_q(column)} IS NOT NULL AND ({where})"
        ).fetchall()
        return [r[0] for r in rows]

    def grouped_sum(self, keys: list[str], name: str, *, where: str = "TRUE", null_keys: bool = False) -> pd.Series:
        """``frame[where].groupby(keys, dropna=not null_keys)["value"].sum(min_count=1)`` named ``name``: a float
        Series over the sorted keys. Kahan summation, as pandas' groupby sum."""
        cols = ", ".join(_q(k) for k in keys)
        keep = "TRUE" if null_keys else " AND ".join(f"{_q(k)} IS NOT NULL" for k in keys)
        frame = self.con.sql(
            f"SELECT {cols}, CAST(fsum(value) FILTER (WHERE {self.notna('value')}) AS DOUBLE) AS {_q(name)} "
            f"FROM {self.name} WHERE ({where}) AND {keep} GROUP BY ALL ORDER BY ALL"
        ).df()
        return _series(frame, keys, name)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _series(frame: pd.DataFrame, keys: list[str], name: str) -> pd.Series:
    values = frame[name].astype("float64").to_numpy()
    keyframe = frame[keys].astype(object).where(frame[keys].notna(), np.nan)
    if len(keys) == 1:
        index: pd.Index = pd.Index(keyframe[keys[0]], dtype=object, name=keys[0])
    else:
        index = pd.MultiIndex.from_frame(keyframe)
    return pd.Series(values, index=index, name=name)


@dataclass
class CheckResult:
    expectation: str
    column: str | None
    severity: Severity
    success: bool
    observed_value: Any
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def _time_column(columns: list[str]) -> str | None:
    return next((c for c in TIME_COLUMNS if c in columns), None)


def year_totals(data: BatchData, prev: BatchData, *, previous_load_id: str) -> CheckResult | None:
    """WARN when a year's total (per content code) moved more than 5 % since the previous good load."""
    with connect() as con:
        cur_t, old_t = _Table(con, data, "cur"), _Table(con, prev, "old")
        tcol = _time_column(cur_t.columns)
        if tcol is None or tcol not in old_t.columns or "value" not in cur_t.columns or "value" not in old_t.columns:
            return None
        if not (cur_t.is_numeric("value") and old_t.is_numeric("value")):
            return None  # a broken value column is reported by the schema expectations
        keys = [tcol] + [c for c in ("ContentsCode",) if c in cur_t.columns and c in old_t.columns]
        cur = cur_t.grouped_sum(keys, "current", null_keys=True)
        old = old_t.grouped_sum(keys, "previous", null_keys=True)
    both = pd.concat([cur, old], axis=1, join="inner").dropna()
    both = both[both["previous"] != 0]
    change = (both["current"] - both["previous"]) / both["previous"].abs()
    bad = change[change.abs() > YEAR_TOTAL_TOLERANCE].sort_index()
    name = "expect_year_totals_within_5pct_of_previous_load"
    if bad.empty:
        worst = float(change.abs().max()) if len(change) else 0.0
        return CheckResult(
            name,
            tcol,
            WARN,
            True,
            f"max change {worst:.1%}",
            details={"previous_load_id": previous_load_id, "compared": len(change)},
        )
    items = []
    for key, ch in bad.items():
        key_t = key if isinstance(key, tuple) else (key,)
        label = " ".join(str(k) for k in key_t)
        items.append(
            {
                "key": label,
                "previous": float(both.loc[key, "previous"]),
                "current": float(both.loc[key, "current"]),
                "change": float(ch),
            }
        )
    listing = ", ".join(f"{i['key']} {i['change']:+.1%}" for i in items[:10])
    msg = (
        f"{len(items)} year total{'s' if len(items) > 1 else ''} changed more than "
        f"{YEAR_TOTAL_TOLERANCE:.0%} vs previous load {previous_load_id}: {listing}"
    )
    return CheckResult(
        name, tcol, WARN, False, listing, message=msg, details={"previous_load_id": previous_load_id, "changes": items}
    )


_PERIOD = re.compile(r"^(\d{4})(?:K([1-4])|M(\d{2}))?$")


def _period_start(period: str) -> date | None:
    m = _PERIOD.match(period)
    if m is None:
        return None  # malformed periods fail the period regex expectation
    year, quarter, month = m.groups()
    if quarter:
        return date(int(year), 3 * int(quarter) - 2, 1)
    return date(int(year), int(month or 1), 1) if 1 <= int(month or 1) <= 12 else None


def periods_not_in_future(data: BatchData, *, today: date | None = None) -> CheckResult | None:
    """FAIL when a period starts after today: a municipal file cannot report a year that has not begun (2999)."""
    with connect() as con:
        batch = _Table(con, data, "batch")
        tcol = _time_column(batch.columns)
        if tcol is None:
            return None
        periods = sorted({str(v) for v in batch.distinct(tcol)})
    today = today or date.today()
    future = [p for p in periods if (start := _period_start(p)) is not None and start > today]
    name = "expect_periods_not_in_the_future"
    if not future:
        return CheckResult(name, tcol, FAIL, True, f"latest {periods[-1] if periods else None}")
    shown = ", ".join(f"'{p}'" for p in future[:10]) + (f" (+{len(future) - 10} more)" if len(future) > 10 else "")
    return CheckResult(
        name,
        tcol,
        FAIL,
        False,
        shown,
        message=f"{len(future)} period{'s' if len(future) > 1 else ''} in the future (after {today}): {shown}",
        details={"future": future, "today": str(today)},
    )


def keys_shared_with_other_files(
    data: BatchData, manifest: dict[str, Any], dimensions: tuple[str, ...], *, landing_dir: Path
) -> CheckResult | None:
    """WARN when an inbox file repeats keys of another file's validated batch in the same raw table.

    Each file is its own series, so both stay live: the same key twice is double counting downstream unless the
    files are different municipalities with clashing district codes (``_source_table`` tells them apart).
    """
    if manifest.get("kind") != "file" or not dimensions:
        return None
    me = (manifest.get("source_name"), manifest.get("table_id"))
    newest: dict[tuple[str, str], tuple[str, Path]] = {}
    for m in (landing_dir / manifest["raw_table"]).glob(f"*/*{MANIFEST_SUFFIX}"):
        load_id = load_id_of(m)
        if load_id == manifest.get("load_id") or not is_validated(m):
            continue
        try:
            other = json.loads(m.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        key = (other.get("source_name"), other.get("table_id"))
        if other.get("kind") == "file" and key != me and (key not in newest or load_id > newest[key][0]):
            newest[key] = (load_id, m.with_name(load_id + PARQUET_SUFFIX))
    dims = ", ".join(_q(d) for d in dimensions)
    # keys match as pandas' merge matches them: a null key equals a null key
    same = " AND ".join(f"a.{_q(d)} IS NOT DISTINCT FROM b.{_q(d)}" for d in dimensions)
    shared = []
    with connect() as con:
        if not set(dimensions) <= set(_Table(con, data, "mine").columns):
            return None
        for (_, table_id), (load_id, path) in sorted(newest.items(), key=lambda kv: str(kv[0])):
            try:
                _Table(con, path, "theirs")
                (n,) = con.execute(
                    f"SELECT count(*) FROM (SELECT DISTINCT {dims} FROM mine) a "
                    f"JOIN (SELECT DISTINCT {dims} FROM theirs) b ON {same}"
                ).fetchall()[0]
            except (duckdb.Error, OSError):  # another batch's columns differ or it vanished: nothing to compare
                continue
            if n:
                shared.append({"file": table_id, "load_id": load_id, "keys": int(n)})
    name = "expect_keys_not_in_other_files"
    if not shared:
        return CheckResult(name, ",".join(dimensions), WARN, True, f"{len(newest)} other file(s) compared")
    listing = ", ".join(f"{s['keys']} with {s['file']!r}" for s in shared[:5])
    return CheckResult(
        name,
        ",".join(dimensions),
        WARN,
        False,
        listing,
        message=f"keys shared with other live files (double counting unless they are different areas): {listing}",
        details={"shared": shared},
    )


def _latest_landing_batch(landing_dir: Path, raw_table: str) -> tuple[str, Path] | None:
    base = landing_dir / raw_table
    if not base.exists():
        return None
    found = sorted(base.glob(f"*/*{MANIFEST_SUFFIX}"), key=lambda p: p.name)
    for m in reversed(found):
        load_id = load_id_of(m)
        parquet = m.with_name(load_id + PARQUET_SUFFIX)
        if parquet.exists():
            return load_id, parquet
    return None


def od_row_sums(data: BatchData, *, landing_dir: Path) -> CheckResult:
    """Per residence and year, the OD row sum (incl. the diagonal) must not exceed employed residents."""
    name = "expect_od_row_sum_at_most_employed_residents"
    found = _latest_landing_batch(landing_dir, "employment_by_sector")

    def skipped(why: str, **details: object) -> CheckResult:
        return CheckResult(
            name,
            "Bostadskommun",
            WARN,
            False,
            "skipped",
            message=f"skipped: {why}",
            details={"skipped": True, **details},
        )

    if found is None:
        return skipped("no employment_by_sector batch in landing to compare with")
    emp_load, emp_path = found
    with connect() as con:
        emp, od = _Table(con, emp_path, "emp"), _Table(con, data, "od")
        has_columns = {"Region", "Tid", "value"} <= set(emp.columns) and {"Bostadskommun", "Tid", "value"} <= set(
            od.columns
        )
        if not has_columns or not (emp.is_numeric("value") and od.is_numeric("value")):
            return skipped(
                f"employment batch {emp_load} or this batch lacks Region/Tid/value", employment_load_id=emp_load
            )
        where = ["TRUE"]
        if "ContentsCode" in emp.columns:
            where.append(f"{_q('ContentsCode')} = '000002XI'")  # night population: by residence
        if "SNI2007" in emp.columns:
            where.append(f"{_q('SNI2007')} = 'A-U+US'")
        by_sex = "Kon" in emp.columns and "Kon" in od.columns
        ekeys = ["Region", "Tid"] + (["Kon"] if by_sex else [])
        okeys = ["Bostadskommun", "Tid"] + (["Kon"] if by_sex else [])
        employed = emp.grouped_sum(ekeys, "employed", where=" AND ".join(where))
        rows = od.grouped_sum(okeys, "od_sum")
    employed.index = employed.index.set_names(okeys)
    both = pd.concat([rows, employed], axis=1, join="inner").dropna()
    if both.empty:
        return skipped(f"no residence/year in common with employment batch {emp_load}", employment_load_id=emp_load)
    over = both[both["od_sum"] > both["employed"] * (1 + OD_TOLERANCE)]
    if over.empty:
        return CheckResult(
            name,
            "Bostadskommun",
            FAIL,
            True,
            f"{len(both)} residence-years within limits",
            details={"employment_load_id": emp_load, "compared": len(both)},
        )
    items = [
        {
            "key": " ".join(map(str, k if isinstance(k, tuple) else (k,))),
            "od_sum": float(r.od_sum),
            "employed": float(r.employed),
        }
        for k, r in over.iterrows()
    ]
    listing = ", ".join(f"{i['key']} {i['od_sum']:.0f} > {i['employed']:.0f}" for i in items[:10])
    msg = (
        f"{len(items)} residence-year{'s' if len(items) > 1 else ''} commute more people than live there "
        f"employed (batch {emp_load}): {listing}"
    )
    return CheckResult(
        name,
        "Bostadskommun",
        FAIL,
        False,
        listing,
        message=msg,
        details={"employment_load_id": emp_load, "violations": items, "tolerance": OD_TOLERANCE},
    )


def values_present(data: BatchData, manifest: dict[str, Any]) -> CheckResult | None:
    """FAIL when no row of the batch has a value: an all-null batch is an empty fetch, not data."""
    with connect() as con:
        batch = _Table(con, data, "batch")
        rows = batch.count()
        if "value" not in batch.columns or rows == 0:
            return None  # a missing value column or zero rows fail the schema / row-count expectations
        present = batch.count(batch.notna("value"))
    name = "expect_batch_to_have_values"
    table = manifest.get("table_id") or manifest.get("source_name")
    if present:
        return CheckResult(name, "value", FAIL, True, f"{present} of {rows} rows have a value")
    return CheckResult(
        name,
        "value",
        FAIL,
        False,
        f"0 of {rows} rows have a value",
        message=f"{table}: all {rows} values are null (nothing was fetched)",
        details={"rows": rows},
    )


def requested_regions_have_values(
    data: BatchData, manifest: dict[str, Any], region_variables: tuple[str, ...]
) -> list[CheckResult]:
    """FAIL when regions the region set asked for (the manifest's selection) have no value in any row.

    ``region_variables``: the selection variables filled from the region set (catalogue placeholders).
    A region whose every cell is null was not delivered, whatever the HTTP status said.
    """
    out: list[CheckResult] = []
    table = manifest.get("table_id") or manifest.get("source_name")
    selection = (manifest.get("query") or {}).get("selection") or {}
    with connect() as con:
        batch = _Table(con, data, "batch")
        for variable in region_variables:
            requested = selection.get(variable)
            if not isinstance(requested, list) or variable not in batch.columns or "value" not in batch.columns:
                continue
            with_value = {str(v) for v in batch.distinct(variable, where=batch.notna("value"))}
            missing = [str(code) for code in requested if str(code) not in with_value]
            name = "expect_requested_regions_to_have_values"
            if not missing:
                out.append(CheckResult(name, variable, FAIL, True, f"{len(requested)} of {len(requested)} regions"))
                continue
            shown = ", ".join(missing[:10]) + (f" (+{len(missing) - 10} more)" if len(missing) > 10 else "")
            out.append(
                CheckResult(
                    name,
                    variable,
                    FAIL,
                    False,
                    f"{len(missing)} of {len(requested)} without value",
                    message=f"{table}: {len(missing)} of {len(requested)} requested regions have no value ({shown})",
                    details={
                        "missing": missing,
                        "requested": len(requested),
                        "region_set": manifest.get("region_set"),
                    },
                )
            )
    return out


#: single years of age a complete age batch holds per region, year and sex (0..99 and 100+)
AGES_PER_SEX = 101
#: SCB's total codes for age and sex in the population tables (TAB638 `tot`, TAB5557 `TotSA`/`TotSa`, `1+2`)
TOTAL_CODES = ("tot", "TotSA", "TotSa", "1+2")


def _latest_batch_of_table(landing_dir: Path, raw_table: str, table_id: str) -> tuple[str, Path] | None:
    """The newest landed batch (validated or not) of SCB table ``table_id`` in ``raw_table``, any source."""
    best: tuple[str, Path] | None = None
    for m in (landing_dir / raw_table).glob(f"*/*{MANIFEST_SUFFIX}"):
        load_id = load_id_of(m)
        parquet = m.with_name(load_id + PARQUET_SUFFIX)
        if (best is not None and load_id <= best[0]) or not parquet.exists():
            continue
        try:
            if json.loads(m.read_text(encoding="utf-8")).get("table_id") != table_id:
                continue
        except (OSError, ValueError):
            continue
        best = (load_id, parquet)
    return best


def age_sums_match_population(data: BatchData, *, landing_dir: Path) -> CheckResult:
    """Per region and year, the age x sex cells of TAB638 must add up to TAB638's own total (no CKM before 2025).

    Only region-years with every single year of age for both sexes are compared: a batch that selects part of
    the ages is not expected to add up."""
    name = "expect_age_cells_sum_to_population_total"
    found = _latest_batch_of_table(landing_dir, "population", "TAB638")
    need = {"Region", "Alder", "Kon", "Tid", "value"}

    def skipped(why: str, **details: object) -> CheckResult:
        return CheckResult(
            name, "Alder", WARN, False, "skipped", message=f"skipped: {why}", details={"skipped": True, **details}
        )

    with connect() as con:
        cells = _Table(con, data, "cells")
        if found is None or not need <= set(cells.columns):
            return skipped(
                "no TAB638 population batch in landing" if found is None else "this batch lacks Region/Alder/Kon/Tid"
            )
        pop_load, pop_path = found
        pop = _Table(con, pop_path, "pop")
        # the total series: age and sex eliminated, or selected as their total code (TAB638 `Alder` `tot`)
        totals_only = ", ".join(_lit(c) for c in TOTAL_CODES)
        by_age_or_sex = [
            d
            for d in ("Alder", "Kon")
            if d in pop.columns
            and pop.count(f"{_q(d)} IS NOT NULL AND CAST({_q(d)} AS VARCHAR) NOT IN ({totals_only})")
        ]
        if not {"Region", "Tid", "value"} <= set(pop.columns) or by_age_or_sex:
            return skipped(
                f"population batch {pop_load} is not the eliminated total (Region/Tid/value)",
                population_load_id=pop_load,
            )
        if not (cells.is_numeric("value") and pop.is_numeric("value")):
            return skipped(f"a value column is not numeric (population batch {pop_load})", population_load_id=pop_load)
        population = "TRUE"  # population (BE0101N1) only; BE0101N2 is a flow
        keys = "Region, Tid"
        where_cells = f"{cells.notna('value')} AND Region IS NOT NULL AND Tid IS NOT NULL"
        if "ContentsCode" in cells.columns:
            where_cells += " AND ContentsCode = 'BE0101N1'"
        grouped = con.sql(
            f"SELECT {keys}, count(DISTINCT Alder) AS ages, count(DISTINCT Kon) AS sexes, "
            f"CAST(fsum(value) AS DOUBLE) AS age_sum FROM cells WHERE {where_cells} GROUP BY ALL ORDER BY ALL"
        ).df()
        if "ContentsCode" in pop.columns:
            population = "ContentsCode = 'BE0101N1'"
        totals = pop.grouped_sum(["Region", "Tid"], "total", where=f"{population} AND {pop.notna('value')}")
    complete = (grouped["ages"] == AGES_PER_SEX) & (grouped["sexes"] == 2)
    sums = _series(grouped[complete.to_numpy()], ["Region", "Tid"], "age_sum")
    both = pd.concat([sums, totals], axis=1, join="inner")
    if both.empty:
        return skipped(
            f"no complete region-year in common with population batch {pop_load}", population_load_id=pop_load
        )
    off = both[both["age_sum"] != both["total"]]
    if off.empty:
        return CheckResult(
            name,
            "Alder",
            FAIL,
            True,
            f"{len(both)} region-years add up",
            details={"population_load_id": pop_load, "compared": len(both)},
        )
    items = [
        {"key": f"{region} {year}", "age_sum": float(r.age_sum), "total": float(r.total)}
        for (region, year), r in off.iterrows()
    ]
    listing = ", ".join(f"{i['key']} {i['age_sum']:.0f} != {i['total']:.0f}" for i in items[:10])
    return CheckResult(
        name,
        "Alder",
        FAIL,
        False,
        listing,
        message=f"{len(items)} region-year(s) whose age cells do not add up to TAB638's total (batch {pop_load}): "
        + listing,
        details={"population_load_id": pop_load, "violations": items},
    )


def applies_age_sums(spec: SuiteSpec) -> bool:
    return spec.raw_table == "population_by_age"


def region_set_note(manifest: dict[str, Any], prev_manifest: dict[str, Any]) -> CheckResult:
    return CheckResult(
        "expect_same_region_set_as_previous_load",
        "Region",
        WARN,
        False,
        f"{prev_manifest.get('region_set')} -> {manifest.get('region_set')}",
        message=(
            f"region set changed from {prev_manifest.get('region_set')!r} to {manifest.get('region_set')!r}: "
            "vanished-value and year-total checks skipped"
        ),
        details={"previous_load_id": prev_manifest.get("load_id")},
    )


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str, sort_keys=True)


def applies_od(spec: SuiteSpec) -> bool:
    return spec.raw_table == "commuting_flows"
