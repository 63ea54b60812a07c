"""Validation in row chunks (issue 16, item 2): a batch of many chunks is recorded exactly as the same batch in one.

Cheap on purpose: ~6,000 rows, validated once whole and once in chunks of 1,000 rows (``CHUNK_ROWS`` patched), with
failures whose rows lie in different chunks. The memory figures themselves are a benchmark (``bench.run --only
scaling``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from expectations import validate
from expectations.validate import ValidationOutcome, validate_batch
from regionstat.catalogue import load_regions
from regionstat.settings import Settings

REGIONS = [r.code for r in load_regions()]
YEARS = [str(y) for y in range(2005, 2025)]
CHUNK = 1_000
PREV_ID = "20250101T000000000000Z-chunks00"
BATCH_ID = "20250102T000000000000Z-chunks01"


def _rows(years: list[str]) -> dict[str, list[Any]]:
    keys = [(r, y) for r in REGIONS for y in years]
    values = [None if i % 97 == 0 else float(i % 500) for i in range(len(keys))]
    return {
        "Region": [k[0] for k in keys],
        "Alder": ["tot"] * len(keys),
        "ContentsCode": ["BE0101N1"] * len(keys),
        "Tid": [k[1] for k in keys],
        "value": values,
        "status": [".." if v is None else None for v in values],
    }


def _land(data_dir: Path, load_id: str, cols: dict[str, list[Any]], *, cells: int) -> Path:
    folder = Settings(data_dir=data_dir).landing_dir / "population" / "population_tab638"
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {k: pa.array(v, pa.float64() if k == "value" else pa.string()) for k, v in cols.items()},
    )
    pq.write_table(table, folder / f"{load_id}.parquet", row_group_size=4_000)
    manifest = {
        "load_id": load_id,
        "source_name": "population_tab638",
        "raw_table": "population",
        "table_id": "TAB638",
        "kind": "pxweb",
        "cells": cells,
        "rows": table.num_rows,
        "region_set": "sweden",
        "query": {"selection": {"Region": REGIONS[:5]}},
        "schema": {f.name: str(f.type) for f in table.schema},
    }
    path = folder / f"{load_id}.manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def _bad_batch() -> dict[str, list[Any]]:
    """Failures spread over several 1,000-row chunks: unknown regions, negative and fractional counts, more than
    20 unknown status symbols, a key duplicated 5,000 rows apart, a vanished year, one year's total up 10 %."""
    cols = _rows(YEARS[1:])  # 2005 vanished since the previous batch
    n = len(cols["Region"])
    for i in (5, 2_500, 5_001):
        cols["Region"][i] = f"99{i % 100:02d}"
    for i in (7, 2_999, 5_003):
        cols["value"][i], cols["status"][i] = -2.0, None
    cols["value"][4_321], cols["status"][4_321] = 1.5, None
    for i in range(100, n, 200):  # 30 rows, more than the 20 GX lists
        cols["status"][i] = "p"
    for key in ("Region", "Tid"):  # row 5,100 repeats row 100's key: five chunks apart
        cols[key][5_100] = cols[key][100]
    for i, year in enumerate(cols["Tid"]):
        if year == "2010" and cols["value"][i] is not None:
            cols["value"][i] = float(cols["value"][i] * 1.1 // 1 + 1)
    return cols


def _validated(data_dir: Path, *, chunk_rows: int | None) -> tuple[ValidationOutcome, Path]:
    with pytest.MonkeyPatch.context() as mp:
        if chunk_rows:
            mp.setattr(validate, "CHUNK_ROWS", chunk_rows)
        settings = Settings(data_dir=data_dir)
        prev = validate_batch(
            _land(data_dir, PREV_ID, _rows(YEARS), cells=len(REGIONS) * len(YEARS)), settings=settings
        )
        assert prev.success, prev.failures
        cols = _bad_batch()
        manifest = _land(data_dir, BATCH_ID, cols, cells=len(cols["Region"]) + 3)
        return validate_batch(manifest, settings=settings), manifest


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[ValidationOutcome, Path]]:
    return {
        "whole": _validated(tmp_path_factory.mktemp("whole"), chunk_rows=None),
        "chunks": _validated(tmp_path_factory.mktemp("chunks"), chunk_rows=CHUNK),
    }


def _results(outcome: ValidationOutcome) -> pd.DataFrame:
    assert outcome.results_path is not None
    return pd.read_parquet(outcome.results_path).drop(columns=["run_id", "validated_at"])


def _docs(outcome: ValidationOutcome, data_dir: Path) -> dict[str, Any]:
    store = Settings(data_dir=data_dir).docs_dir / "gx" / "_store" / "results" / "landing.population.population_tab638"
    payload = json.loads((store / f"{outcome.load_id}.json").read_text(encoding="utf-8"))
    payload["meta"]["batch_markers"].pop("ge_load_time")
    return dict(payload)


def test_the_batch_spans_many_chunks_and_fails_as_planned(both: dict[str, tuple[ValidationOutcome, Path]]) -> None:
    outcome, _ = both["chunks"]
    assert outcome.rows == len(REGIONS) * (len(YEARS) - 1) > 5 * CHUNK
    assert outcome.quarantined_to is not None
    failed = set(_results(outcome).query("not success")["expectation"])
    assert {
        "expect_column_values_to_be_in_set",  # regions 9905, 9900, 9901 and status 'p'
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_null",  # the fractional count
        "expect_compound_columns_to_be_unique",
        "expect_table_row_count_to_equal",
        "expect_column_distinct_values_to_contain_set",
        "expect_year_totals_within_5pct_of_previous_load",
    } <= failed


def test_chunks_record_exactly_what_one_frame_records(both: dict[str, tuple[ValidationOutcome, Path]]) -> None:
    """Validation parquet, failures and warnings (the reason file), Data Docs results: all equal."""
    (whole, whole_manifest), (chunks, chunks_manifest) = both["whole"], both["chunks"]
    pd.testing.assert_frame_equal(_results(chunks), _results(whole))
    assert (chunks.failures, chunks.warnings, chunks.rows) == (whole.failures, whole.warnings, whole.rows)
    docs_chunks = _docs(chunks, chunks_manifest.parents[3])
    docs_whole = _docs(whole, whole_manifest.parents[3])
    assert docs_chunks == docs_whole
    assert docs_chunks["meta"]["batch_markers"]["pandas_data_fingerprint"]  # GX's fingerprint of the whole frame


def test_failures_in_different_chunks_add_up(both: dict[str, tuple[ValidationOutcome, Path]]) -> None:
    rows = _results(both["chunks"][0])
    details = {
        (r.expectation, r.column): json.loads(r.details).get("result") for r in rows.itertuples() if not r.success
    }
    region = details[("expect_column_values_to_be_in_set", "Region")]
    assert region["unexpected_count"] == 3 and region["partial_unexpected_list"] == ["9905", "9900", "9901"]
    status = details[("expect_column_values_to_be_in_set", "status")]
    assert status["unexpected_count"] == 30 and len(status["partial_unexpected_list"]) == 20
    assert status["partial_unexpected_counts"] == [{"value": "p", "count": 20}]
    negative = details[("expect_column_values_to_be_between", "value")]
    assert negative["unexpected_count"] == 3 and negative["partial_unexpected_list"] == [-2.0, -2.0, -2.0]
    duplicated = details[("expect_compound_columns_to_be_unique", "Region,Alder,ContentsCode,Tid")]
    assert duplicated["unexpected_count"] == 2  # rows 100 and 5,100: in chunks 0 and 5
    assert duplicated["partial_unexpected_list"][0] == duplicated["partial_unexpected_list"][1]
    reasons = "\n".join(both["chunks"][0].failures)
    assert "3 unknown codes '9900', '9901', '9905'" in reasons
    assert "2 rows with duplicated keys" in reasons and "1 value vanished since previous batch" in reasons


def test_chunks_are_the_frame_cut_in_rows(tmp_path: Path) -> None:
    """``_frames`` in chunks, put together, is ``_read_batch``'s frame: values, dtypes (an int column with a null
    in one chunk only is float everywhere, as pandas makes it), index labels."""
    path = tmp_path / "b.parquet"
    n = 2_500
    pq.write_table(
        pa.table(
            {
                "code": pa.array([f"c{i % 7}" if i % 11 else None for i in range(n)], pa.string()),
                "count": pa.array([None if i == 2_200 else i for i in range(n)], pa.int64()),
                "flag": pa.array([i % 2 == 0 for i in range(n)], pa.bool_()),
                "value": pa.array([i / 3 for i in range(n)], pa.float64()),
            }
        ),
        path,
        row_group_size=700,
    )
    whole = validate._read_batch(path)
    parts = list(validate._frames(path, chunk_rows=1_000))
    assert [len(p) for p in parts] == [1_000, 1_000, 500]  # row groups of 700 joined
    assert parts[0]["count"].dtype == "float64"
    pd.testing.assert_frame_equal(pd.concat(parts), whole)


def test_chunks_of_a_pandas_written_batch_keep_its_index_and_dtypes(tmp_path: Path) -> None:
    """A batch written by pandas: its stored RangeIndex (starting at 5) and a nullable Int64 column come back the
    same in chunks as in the whole read."""
    path = tmp_path / "p.parquet"
    n = 2_500
    frame = pd.DataFrame(
        {
            "a": pd.array([None if i % 9 == 0 else i for i in range(n)], dtype="Int64"),
            "s": [f"s{i % 3}" for i in range(n)],
        },
        index=pd.RangeIndex(5, 5 + n),
    )
    frame.to_parquet(path, row_group_size=1_000)
    whole = validate._read_batch(path)
    assert whole.index.start == 5 and str(whole["a"].dtype) == "Int64"
    pd.testing.assert_frame_equal(pd.concat(validate._frames(path, chunk_rows=1_000)), whole)
