"""Landing batches are atomic, checked by pandera on the way in, and carry a complete manifest."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from extract.landing import write_batch
from regionstat.batches import latest_batch
from regionstat.errors import SchemaError
from regionstat.settings import Settings

FIELDS = {
    "source_name": "population_tab638",
    "raw_table": "population",
    "kind": "pxweb",
    "table_id": "TAB638",
    "source_url": "http://127.0.0.1/api/v2/tables/TAB638/data",
    "query": {"selection": {"Region": ["0580"]}},
    "updated": "2025-02-21T07:00:00Z",
    "cells": 2,
    "requests": 1,
    "synthetic": False,
    "region_set": "ostergotland",
}


def _table(**overrides: object) -> pa.Table:
    cols = {
        "Region": pa.array(["0580", "0580"]),
        "Tid": pa.array(["2023", "2024"]),
        "value": pa.array([167404.0, 168035.0]),
        "status": pa.array([None, None], pa.string()),
    }
    cols.update(overrides)
    return pa.table(cols)


def test_batch_and_manifest_land_together(data_dir: Path) -> None:
    settings = Settings.from_env()
    m = write_batch(_table(), FIELDS, settings=settings)
    assert m.path is not None and m.path.exists() and m.parquet_path.exists()
    assert pq.read_table(m.parquet_path).column("value").to_pylist() == [167404.0, 168035.0]
    assert m.rows == 2 and len(m.content_sha256) == 64 and m.load_id.endswith(m.content_sha256[:8])
    assert latest_batch(settings, "population", "population_tab638") == m
    assert not list(m.path.parent.glob("*.tmp"))


def test_pandera_guards_the_landing_contract(data_dir: Path) -> None:
    settings = Settings.from_env()
    with pytest.raises(SchemaError, match=r"population_tab638 \(TAB638\).*'Region'"):
        write_batch(_table(Region=pa.array(["0580", None], pa.string())), FIELDS, settings=settings)
    with pytest.raises(SchemaError, match="'value'"):
        write_batch(_table(value=pa.array(["1", "2"])), FIELDS, settings=settings)
    assert not (settings.landing_dir / "population").exists() or not list(
        (settings.landing_dir / "population").rglob("*.parquet")
    )
