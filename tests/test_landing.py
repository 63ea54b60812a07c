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


def _cube_doc(sizes: list[int], status: dict[str, str]) -> dict:
    ids = [f"D{i}" for i in range(len(sizes))]
    dims = {d: {"category": {"index": {f"{d}c{j}": j for j in range(n)}}} for d, n in zip(ids, sizes, strict=True)}
    n = 1
    for s in sizes:
        n *= s
    values = [None if k % 7 == 3 else k * 1.5 for k in range(n)]
    return {"version": "2.0", "class": "dataset", "id": ids, "size": sizes, "dimension": dims, "value": values,
            "status": status}  # fmt: skip


def _stitched(sizes: list[int], status: dict[str, str], split_dim: int, parts: int):
    """The cube of ``sizes`` put together from ``parts`` responses split along ``split_dim`` (not the first, so
    no response is a contiguous run of rows), as the client stitches chunked responses."""
    import numpy as np
    import orjson

    from extract.jsonstat import CubeAssembly, code_index_arrays, parse_cube

    whole = _cube_doc(sizes, status)
    codes = [list(whole["dimension"][d]["category"]["index"]) for d in whole["id"]]
    assembly = CubeAssembly(whole["id"], codes, None, chunks=parts)
    strides = [int(np.prod(sizes[i + 1 :])) for i in range(len(sizes))]
    full_idx = code_index_arrays(sizes)
    for part in range(parts):
        keep = list(range(part, sizes[split_dim], parts))
        rows = np.flatnonzero(np.isin(full_idx[split_dim], keep))  # the part's cells in row-major order
        doc = {**whole, "size": [len(keep) if d == split_dim else s for d, s in enumerate(sizes)]}
        doc["dimension"] = {
            d: {"category": {"index": {codes[i][j]: k for k, j in enumerate(keep)}}} if i == split_dim else dim
            for i, (d, dim) in enumerate(whole["dimension"].items())
        }
        doc["value"] = [whole["value"][r] for r in rows]
        doc["status"] = {str(k): status[str(r)] for k, r in enumerate(rows) if str(r) in status}
        cube = parse_cube(orjson.dumps(doc))
        local = code_index_arrays(cube.sizes)
        gidx = sum(
            np.asarray(keep if i == split_dim else range(s))[loc] * stride
            for i, (s, loc, stride) in enumerate(zip(sizes, local, strides, strict=True))
        )
        assembly.add(cube, np.asarray(gidx, dtype=np.int64))
    assert assembly.covered_exactly_once()
    return whole, assembly


def test_multi_chunk_streamed_landing_equals_single_table_landing(tmp_path: Path) -> None:
    """Responses split across a middle dimension, stitched and landed in small slices (several row groups), give
    the same rows in the same order, schema and manifest as the unchunked response landed as one table."""
    import orjson

    from extract.jsonstat import decode_jsonstat2
    from extract.landing import write_batch_stream

    sizes, status = [3, 5, 4], {"1": "..", "22": "p", "59": ".."}
    whole, assembly = _stitched(sizes, status, split_dim=1, parts=2)
    reference = decode_jsonstat2(orjson.dumps(whole))
    one = write_batch(reference, FIELDS, settings=Settings(data_dir=tmp_path / "one"))
    many = write_batch_stream(assembly.tables(rows=7), FIELDS, settings=Settings(data_dir=tmp_path / "many"))
    assert pq.ParquetFile(many.parquet_path).metadata.num_row_groups == 9  # ceil(60 / 7): it did stream
    landed = pq.read_table(many.parquet_path)
    assert landed.equals(pq.read_table(one.parquet_path))
    assert landed.schema.field("D1").type == pa.string()  # dictionary columns cast at the edge: plain landing schema
    assert landed.column("status").to_pylist()[22] == "p" and landed.column("value").null_count == 9
    assert many.rows == one.rows == 60 and many.schema == one.schema
    assert assembly.table().equals(reference.cast(landed.schema))  # the client's fetch() table: the same rows


def test_one_table_streamed_has_the_bytes_of_write_table(tmp_path: Path) -> None:
    import hashlib
    import io

    table = _table()
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_statistics=True)
    m = write_batch(table, FIELDS, settings=Settings(data_dir=tmp_path))
    assert (
        m.content_sha256
        == hashlib.sha256(buf.getvalue()).hexdigest()
        == hashlib.sha256(m.parquet_path.read_bytes()).hexdigest()
    )


@pytest.mark.parametrize("failure", ["schema", "pandera", "producer"])
def test_a_failing_part_lands_nothing(tmp_path: Path, failure: str) -> None:
    from extract.landing import write_batch_stream

    def parts():
        yield _table()
        if failure == "schema":
            yield _table(status=pa.array([None, None], pa.large_string()))
        elif failure == "pandera":
            yield _table(Region=pa.array(["0580", None], pa.string()))
        else:
            raise RuntimeError("connection lost after the first chunk")

    settings = Settings(data_dir=tmp_path)
    expected = {"schema": r"part 2 of the batch has columns", "pandera": "'Region'", "producer": "connection lost"}
    with pytest.raises((SchemaError, RuntimeError), match=expected[failure]):
        write_batch_stream(parts(), FIELDS, settings=settings)
    directory = settings.landing_dir / "population" / "population_tab638"
    assert not [p for p in directory.rglob("*") if p.is_file()]  # no Parquet, no manifest, no temp file
    assert latest_batch(settings, "population", "population_tab638") is None
