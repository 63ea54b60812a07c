"""Validation without a Python string per cell (issue 16, item 2): what GX sees, and that its results are unchanged.

Cheap on purpose (a few thousand rows): the memory figures themselves are a benchmark (``bench.run --only scaling``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from expectations import gxcore
from expectations.suites import build_suite, spec_for
from expectations.validate import _read_batch, validate_batch
from regionstat.catalogue import load_regions
from regionstat.settings import Settings

REGIONS = [r.code for r in load_regions()]  # Riket, the counties and municipalities SCB knows
YEARS = [str(y) for y in range(1968, 2025)]


def _table() -> pa.Table:
    rows = [(r, "tot", "BE0101N1", y) for r in REGIONS for y in YEARS]
    values = [None if i % 97 == 0 else float(i % 500) for i in range(len(rows))]
    status = [".." if v is None else None for v in values]
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "Region": pa.array(cols[0], pa.string()),
            "Alder": pa.array(cols[1], pa.string()),
            "ContentsCode": pa.array(cols[2], pa.string()),
            "Tid": pa.array(cols[3], pa.string()),
            "value": pa.array(values, pa.float64()),
            "status": pa.array(status, pa.string()),
        }
    )


def _land(data_dir: Path, table: pa.Table) -> Path:
    """One landing batch of population_tab638 (Parquet in several row groups + manifest)."""
    folder = Settings(data_dir=data_dir).landing_dir / "population" / "population_tab638"
    folder.mkdir(parents=True, exist_ok=True)
    load_id = "20250101T000000000001Z-memtest0"
    pq.write_table(table, folder / f"{load_id}.parquet", row_group_size=2_000)  # unified across row groups
    manifest = {
        "load_id": load_id,
        "source_name": "population_tab638",
        "raw_table": "population",
        "table_id": "TAB638",
        "kind": "pxweb",
        "cells": table.num_rows,
        "rows": table.num_rows,
        "region_set": "ostergotland",
        "query": {"selection": {}},
        "schema": {f.name: str(f.type) for f in table.schema},
    }
    path = folder / f"{load_id}.manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_string_columns_reach_gx_as_shared_objects_not_one_string_per_cell(tmp_path: Path) -> None:
    """GX gets object columns (its type check needs them) whose equal values are ONE Python string each."""
    manifest = _land(tmp_path, _table())
    seen: list[pd.DataFrame] = []
    real = gxcore.validate

    def spy(definition: Any, dataframe: pd.DataFrame, suite: Any, result_format: dict[str, Any]) -> Any:
        seen.append(dataframe)
        return real(definition, dataframe, suite, result_format)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gxcore, "validate", spy)
        outcome = validate_batch(manifest, settings=Settings(data_dir=tmp_path))
    assert outcome.success, outcome.failures
    [frame] = seen
    assert frame["value"].dtype == "float64"
    for col in ("Region", "Alder", "ContentsCode", "Tid", "status"):
        assert frame[col].dtype == object, col
        strings = frame[col].dropna()
        assert {type(v) for v in strings} == {str}, col
        # one object per distinct value: Arrow -> Python conversion happened per value, not per row
        assert len({id(v) for v in strings}) == strings.nunique(), col
    assert frame["status"].notna().sum() == frame["value"].isna().sum() == len(range(0, len(frame), 97))


def test_frame_equals_what_pandas_reads_with_object_strings(tmp_path: Path) -> None:
    """Same values, nulls (NaN), dtypes and column order as ``pd.read_parquet`` + ``astype(object)`` (the old path)."""
    manifest = _land(tmp_path, _table())
    parquet = manifest.with_name(manifest.name.replace(".manifest.json", ".parquet"))
    old = pd.read_parquet(parquet)
    old = old.astype({c: object for c in old.columns if old[c].dtype == "str"})
    pd.testing.assert_frame_equal(_read_batch(parquet), old)
    pd.testing.assert_frame_equal(_read_batch(parquet, ["Tid", "value"]), old[["Tid", "value"]])


def test_one_expectation_at_a_time_gives_gx_suite_results_and_keeps_no_metrics(tmp_path: Path) -> None:
    """The results equal GX's own whole-suite run, and GX's process-wide metric cache is empty afterwards."""
    table = _table()
    frame = _read_batch(Path(_land(tmp_path, table)).with_name("20250101T000000000001Z-memtest0.parquet"))
    spec = spec_for("population_tab638", "population")
    suite = build_suite(spec, cells=table.num_rows + 1, previous_values={"Tid": ["1890", *YEARS]}, previous_load_id="x")
    fmt = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
    definition = gxcore.batch_definition(spec.source_name, spec.raw_table)
    with gxcore.lock():
        whole = definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite, result_format=fmt)
        gxcore.context().data_sources.get(gxcore.DATASOURCE).get_execution_engine()._metric_cache.clear()
        ours = gxcore.validate(definition, frame, suite, fmt)
        cache = gxcore.context().data_sources.get(gxcore.DATASOURCE).get_execution_engine()._metric_cache
    assert len(cache) == 0

    def by_order(result: Any) -> list[dict[str, Any]]:
        return sorted(result.to_json_dict()["results"], key=lambda r: r["expectation_config"]["meta"]["order"])

    assert by_order(ours) == by_order(whole)
    assert ours.success is whole.success is False  # the row count and the vanished year 1890 fail
    assert sum(not r.success for r in ours.results) == 2
    assert ours.statistics == whole.statistics
    assert (
        ours.meta["batch_markers"]["pandas_data_fingerprint"] == whole.meta["batch_markers"]["pandas_data_fingerprint"]
    )
