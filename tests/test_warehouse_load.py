"""The loader: one transaction per batch, idempotent by load id, one writer at a time, a ledger in ops.*."""

from __future__ import annotations

import multiprocessing as mp
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from extract.landing import write_batch
from regionstat.batches import Batch
from regionstat.errors import WriterBusyError
from regionstat.results import RESULTS_SCHEMA
from regionstat.settings import Settings
from warehouse.db import writer
from warehouse.load import load_validated, source_updated

FIELDS = {
    "source_name": "population_tab638",
    "raw_table": "population",
    "kind": "pxweb",
    "table_id": "TAB638",
    "source_url": "http://127.0.0.1/api/v2/tables/TAB638/data",
    "query": {"selection": {}},
    "updated": "2025-02-21T07:00:00Z",
    "cells": 2,
    "requests": 1,
    "synthetic": False,
    "region_set": "ostergotland",
}


def _land(settings: Settings, values: list[float], *, passed: bool = True, **extra: pa.Array) -> Batch:
    cols = {
        "Region": pa.array(["0580", "0581"]),
        **extra,
        "Tid": pa.array(["2024", "2024"]),
        "value": pa.array(values),
        "status": pa.array([None, None], pa.string()),
    }
    m = write_batch(pa.table(cols), FIELDS, settings=settings)
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "run_id": "r",
                    "load_id": m.load_id,
                    "source_name": m.source_name,
                    "expectation": "x",
                    "column": "value",
                    "severity": "fail",
                    "success": passed,
                    "observed_value": "",
                    "details": "",
                    "validated_at": datetime.now(UTC),
                }
            ],
            schema=RESULTS_SCHEMA,
        ),
        m.validation_path,
    )
    return m


def _rows(settings: Settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_load_is_idempotent_and_replaces(data_dir: Path) -> None:
    settings = Settings.from_env()
    first = _land(settings, [168035.0, 145000.0])
    assert load_validated(settings=settings).loaded == [first.load_id]
    again = load_validated(settings=settings)
    assert again.loaded == [] and again.unchanged == [first.load_id]
    assert _rows(settings, "select count(*) from raw.population") == [(2,)]
    time.sleep(0.01)
    second = _land(settings, [168036.0, 145001.0], Civilstand=pa.array(["SC", "SC"]))
    assert load_validated(settings=settings).loaded == [second.load_id]
    assert _rows(settings, "select sum(value), count(*), max(Civilstand), max(_load_id) from raw.population") == [
        (313037.0, 2, "SC", second.load_id)
    ]
    assert _rows(settings, "select count(*) from ops.loads where status = 'loaded'") == [(2,)]
    assert _rows(settings, "select count(*) from ops.validation_results") == [(2,)]


def test_only_new_content_counts_as_a_change(data_dir: Path) -> None:
    """Orchestrators announce raw-table changes; a refetch of identical content is loaded but is not one."""
    settings = Settings.from_env()
    first = _land(settings, [1.0, 2.0])
    assert load_validated(settings=settings).changed == {
        "population": {"load_ids": [first.load_id], "sources": ["population_tab638"], "rows": 2}
    }
    time.sleep(0.01)
    same = _land(settings, [1.0, 2.0])
    summary = load_validated(settings=settings)
    assert summary.loaded == [same.load_id] and summary.changed == {}


def test_failed_validation_never_reaches_raw(data_dir: Path) -> None:
    settings = Settings.from_env()
    good = _land(settings, [1.0, 2.0])
    load_validated(settings=settings)
    time.sleep(0.01)
    _land(settings, [-5.0, 2.0], passed=False)
    summary = load_validated(settings=settings)
    assert summary.loaded == [] and summary.unchanged == [good.load_id]
    assert _rows(settings, "select sum(value) from raw.population") == [(3.0,)]


def _hold_lock(data_dir: str, ready: mp.Event, release: mp.Event) -> None:
    settings = Settings(data_dir=Path(data_dir))
    with writer(settings, purpose="test holder"):
        ready.set()
        release.wait(20)


def test_second_writer_refuses_clearly(data_dir: Path) -> None:
    settings = Settings.from_env()
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(settings.data_dir), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(WriterBusyError, match=r"another run .*test holder.* still writing after 0 s"):
            load_validated(settings=settings, wait=0.2)
    finally:
        release.set()
        holder.join(20)
    assert load_validated(settings=settings, wait=5).loaded == []


def _read_only_reader(path: str, ready: mp.Event, release: mp.Event) -> None:
    con = duckdb.connect(path, read_only=True)
    con.execute("select count(*) from raw.population").fetchall()
    ready.set()
    release.wait(20)
    con.close()


def test_an_analyst_session_does_not_block_loading(data_dir: Path) -> None:
    """Writers work on a copy and swap it in, so a reader in another process never blocks them."""
    settings = Settings.from_env()
    _land(settings, [1.0, 2.0])
    load_validated(settings=settings)
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    reader = ctx.Process(target=_read_only_reader, args=(str(settings.warehouse_path), ready, release))
    reader.start()
    try:
        assert ready.wait(30)
        time.sleep(0.01)
        newer = _land(settings, [10.0, 20.0])
        assert load_validated(settings=settings, wait=1).loaded == [newer.load_id]
    finally:
        release.set()
        reader.join(20)
    assert _rows(settings, "select sum(value) from raw.population") == [(30.0,)]
    assert not list(settings.state_dir.glob("warehouse.next*"))


def test_status_reports_ledger_validation_and_upstream_freshness(data_dir: Path) -> None:
    from warehouse.status import status_rows

    settings = Settings.from_env()
    _land(settings, [1.0, 2.0])
    load_validated(settings=settings)
    rows = {r["source_name"]: r for r in status_rows(settings)}
    pop = rows["population_tab638"]
    assert (pop["status"], pop["rows"], pop["validation"]) == ("loaded", 2, "passed")
    assert f"{pop['upstream_updated']:%Y-%m-%d}" == "2025-02-21"
    assert pop["freshness"] == "closed series"  # TAB638 ends with 2024: no alarm for a series SCB closed
    assert rows["population_tab5557"]["freshness"] == "never loaded"


def test_raw_rows_carry_the_batch_vintage(data_dir: Path) -> None:
    """Marts cite the upstream ``updated`` of what they were built from: the loader writes it on every raw row."""
    settings = Settings.from_env()
    _land(settings, [168035.0, 145000.0])
    load_validated(settings=settings)
    assert _rows(settings, "select distinct _source_updated, _source_table from raw.population") == [
        ("2025-02-21T07:00:00Z", "TAB638")
    ]
    # a raw table no batch reached still has the column, so staging can select it
    assert _rows(
        settings,
        "select data_type from information_schema.columns "
        "where table_schema = 'raw' and table_name = 'commuting_flows' and column_name = '_source_updated'",
    ) == [("VARCHAR",)]


def test_vintage_is_spelled_as_utc_iso_text() -> None:
    assert source_updated("2025-02-21T08:00:00+01:00") == "2025-02-21T07:00:00Z"
    assert source_updated("2025-02-21T07:00:00") == "2025-02-21T07:00:00Z"
    assert source_updated(None) is None
    assert source_updated("spring 2025") == "spring 2025"
