"""Published Parquet marts describe themselves: column descriptions and units, the mart's description, source
tables, their upstream ``updated`` and synthetic status, in the file and in ``marts/_index.json``.

A module-scoped copy of the session's pipeline run on the bundled snapshot serves the checks on real marts; the
provenance rules (partial, lineage fallback) are checked on a small hand-made warehouse.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regionstat.settings import Settings
from warehouse.provenance import PROVENANCE_COLUMNS, Provenance, from_lineage, mart_provenance, source_vintages
from warehouse.publish import publish_marts, read_index_checksums, write_parquet

#: the upstream `updated` of the bundled snapshot's tables (tools/snapshot), as the landing manifests record it
SNAPSHOT_UPDATED = {
    "TAB638": "2025-02-21T07:00:00Z",
    "TAB5557": "2026-02-24T07:00:00Z",
    "TAB1830": "2025-06-01T06:00:00Z",
    "TAB3204": "2025-06-01T06:00:00Z",
}


@pytest.fixture(scope="module")
def run_dir(built_data_copy: Path) -> Path:
    """This module's own copy of the session's `regionstat run` on the bundled snapshot (conftest.py)."""
    return built_data_copy


def _marts(data: Path) -> list[Path]:
    paths = sorted((data / "marts").glob("*.parquet"))
    assert len(paths) >= 18, "the pipeline published fewer marts than the project has"
    return paths


def _expected_provenance(data: Path, mart: str) -> dict[str, object]:
    """What ``_index.json`` must say about a mart, computed independently from the warehouse: from the mart's
    own provenance columns where it has them (after trust-dbt's contract), else from the raw tables dbt says it
    is built from. Tolerates both, so the test holds before and after the contract columns land."""
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        columns = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns where table_schema = 'marts' and table_name = ?",
                [mart],
            ).fetchall()
        }
        expected: dict[str, object] = {}
        if "source_tables" in columns:
            cells = [r[0] for r in con.execute(f'select distinct source_tables from marts."{mart}"').fetchall()]
            expected["source_tables"] = sorted({t for c in cells if c for t in c.split(",")})
        if "is_synthetic" in columns:
            query = f'select count(*), count(*) filter (where is_synthetic) from marts."{mart}"'
            rows, syn = con.execute(query).fetchall()[0]
            expected["synthetic"] = "true" if syn and syn == rows else "partial" if syn else "false"
        return expected
    finally:
        con.close()


def test_every_parquet_mart_describes_every_column(run_dir: Path) -> None:
    """Strict: a column without a dbt description fails, naming mart and column."""
    missing = []
    for path in _marts(run_dir):
        schema = pq.read_schema(path)
        for f in schema:
            description = (f.metadata or {}).get(b"description", b"").decode().strip()
            if not description:
                missing.append(f"{path.stem}.{f.name}")
        meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
        assert meta["regionstat.model"] == path.stem
        assert meta["regionstat.description"].strip(), f"{path.stem}: no mart description"
        assert meta["regionstat.synthetic"] in ("true", "false", "partial"), path.stem
        if pq.ParquetFile(path).metadata.num_rows:
            assert meta["regionstat.source_tables"], f"{path.stem}: no source tables"
        assert b"ARROW:schema" in pq.ParquetFile(path).metadata.metadata  # pyarrow's own key is kept beside ours
    assert not missing, "Parquet columns without a description: " + ", ".join(missing)


def test_units_travel_with_the_columns_that_have_one(run_dir: Path) -> None:
    """Every `meta: {unit: ...}` in dbt's YAML reaches the Parquet field (none yet before trust-dbt's units)."""
    manifest = json.loads((run_dir / ".state" / "dbt" / "target" / "manifest.json").read_text(encoding="utf-8"))
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or not (run_dir / "marts" / f"{node['name']}.parquet").exists():
            continue
        schema = pq.read_schema(run_dir / "marts" / f"{node['name']}.parquet")
        for name, col in node["columns"].items():
            unit = (col.get("meta") or {}).get("unit") or (col.get("config", {}).get("meta") or {}).get("unit")
            if unit and name in schema.names:
                assert schema.field(name).metadata[b"unit"].decode() == unit, f"{node['name']}.{name}"


def test_index_carries_checksums_and_provenance(run_dir: Path) -> None:
    index = json.loads((run_dir / "marts" / "_index.json").read_text(encoding="utf-8"))
    paths = _marts(run_dir)
    assert set(index) == {p.stem for p in paths}
    for path in paths:
        entry = index[path.stem]
        meta = {k.decode(): v.decode() for k, v in (pq.read_schema(path).metadata or {}).items()}
        assert entry["rows"] == pq.ParquetFile(path).metadata.num_rows
        assert ",".join(entry["source_tables"]) == meta["regionstat.source_tables"]
        assert entry["synthetic"] == meta["regionstat.synthetic"]
        assert ",".join(entry["synthetic_inputs"]) == meta["regionstat.synthetic_inputs"]
        assert list(entry["source_updated"]) == [t for t in entry["source_tables"] if t in entry["source_updated"]]
        assert meta["regionstat.source_updated"] == ",".join(f"{t}={u}" for t, u in entry["source_updated"].items())
        for key, value in _expected_provenance(run_dir, path.stem).items():
            assert entry[key] == value, f"{path.stem}: {key}"
    assert read_index_checksums(run_dir / "marts" / "_index.json") == {k: v["sha256"] for k, v in index.items()}
    # real numbers from the snapshot: population is real SCB data of two tables, the OD matrix is synthetic
    population = index["fct_population"]
    assert population["source_tables"] == ["TAB5557", "TAB638"]
    assert population["source_updated"] == {t: SNAPSHOT_UPDATED[t] for t in ("TAB5557", "TAB638")}
    assert population["synthetic"] == "false" and population["synthetic_inputs"] == []
    flows = index["fct_commuting_flows"]
    assert flows["source_tables"] == ["TAB1830"] and flows["synthetic"] == "true"
    assert flows["synthetic_inputs"] == ["TAB1830"]
    assert flows["source_updated"] == {"TAB1830": SNAPSHOT_UPDATED["TAB1830"]}
    assert index["mart_top_sectors"]["synthetic"] == "true"
    assert "TAB3204" in index["mart_top_sectors"]["synthetic_inputs"]


def test_duckdb_and_pyarrow_see_the_descriptions(run_dir: Path) -> None:
    path = run_dir / "marts" / "mart_commuting_balance.parquet"
    field = pq.read_schema(path).field("net_commuting")
    con = duckdb.connect()
    (columns,) = con.execute(
        "select decode(value) from parquet_kv_metadata(?) where decode(key) = 'regionstat.columns'", [str(path)]
    ).fetchall()[0]
    assert json.loads(columns)["net_commuting"]["description"] == field.metadata[b"description"].decode()
    warehouse = duckdb.connect(str(run_dir / "warehouse.duckdb"), read_only=True)
    (comment,) = warehouse.execute(
        "select comment from duckdb_columns() where schema_name = 'marts' and table_name = 'mart_commuting_balance' "
        "and column_name = 'net_commuting'"
    ).fetchall()[0]
    warehouse.close()
    assert field.metadata[b"description"].decode() == comment
    con.close()


def test_parquet_holds_exactly_the_warehouse_rows(run_dir: Path) -> None:
    """The metadata changes nothing in the data: every file has the mart's rows, types and order."""
    con = duckdb.connect(str(run_dir / "warehouse.duckdb"), read_only=True)
    try:
        for path in _marts(run_dir):
            mart = f'marts."{path.stem}"'
            for a, b in ((f"read_parquet('{path}')", mart), (mart, f"read_parquet('{path}')")):
                assert con.execute(f"select count(*) from (select * from {a} except all select * from {b})").fetchall()[
                    0
                ] == (0,), path.stem
            assert (
                con.execute(f"describe {mart}").fetchall()
                == con.execute(f"describe select * from read_parquet('{path}')").fetchall()
            )
            first = con.execute(f"select * from read_parquet('{path}') limit 1").fetchall()
            assert first == con.execute(f"select * from {mart} order by all limit 1").fetchall(), path.stem
    finally:
        con.close()


def test_row_groups_do_not_depend_on_batching(tmp_path: Path) -> None:
    """The same rows in different record batches give the same bytes, in groups of the requested size."""
    table = pa.table({"code": [f"{i:04d}" for i in range(250)], "value": [float(i) for i in range(250)]})
    schema = table.schema.with_metadata({"regionstat.model": "t"})
    sizes = []
    for chunk in (7, 100, 250):
        path = tmp_path / f"t{chunk}.parquet"
        assert write_parquet(table.to_batches(max_chunksize=chunk), schema, path, row_group_size=100) == 250
        sizes.append(path.read_bytes())
        meta = pq.ParquetFile(path).metadata
        assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [100, 100, 50]
    assert sizes[0] == sizes[1] == sizes[2]
    assert pq.read_table(tmp_path / "t7.parquet").equals(table.replace_schema_metadata(schema.metadata))


def test_republishing_is_byte_identical(run_dir: Path) -> None:
    before = (run_dir / "marts" / "_index.json").read_bytes()
    publish_marts(settings=Settings(data_dir=run_dir))
    assert (run_dir / "marts" / "_index.json").read_bytes() == before
    assert not list((run_dir / "marts").glob(".*.tmp"))


# ----------------------------------------------------------------------------------------------------------------
# Provenance rules on a hand-made warehouse (no dbt needed)


@pytest.fixture
def small_warehouse(data_dir: Path) -> tuple[duckdb.DuckDBPyConnection, Settings]:
    settings = Settings.from_env()
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute(
        """
        create schema raw; create schema marts;
        create table raw.population (value double, _source_name varchar, _source_table varchar, _load_id varchar,
            _synthetic boolean, _loaded_at timestamp, _source_updated varchar);
        insert into raw.population values (1, 'population_tab638', 'TAB638', 'l1', false, now(),
            '2025-02-21T07:00:00Z');
        create table raw.commuting_flows (value double, _source_name varchar, _source_table varchar,
            _load_id varchar, _synthetic boolean, _loaded_at timestamp);
        insert into raw.commuting_flows values (1, 'commuting_flows', 'TAB1830', 'l2', true, now());
        create table marts.mixed (x integer, is_synthetic boolean, synthetic_inputs varchar, source_tables varchar,
            source_updated varchar);
        insert into marts.mixed values
            (1, false, null, 'TAB638', 'TAB638=2025-02-21T07:00:00Z'),
            (2, true, 'TAB1830', 'TAB1830,TAB638', 'TAB638=2025-02-21T07:00:00Z');
        create table marts.empty (x integer, is_synthetic boolean, synthetic_inputs varchar, source_tables varchar,
            source_updated varchar);
        create table marts.old (x integer);
        """
    )
    return con, settings


def test_row_provenance_gives_partial_and_sorted_pairs(small_warehouse: tuple) -> None:
    con, settings = small_warehouse
    lineage = from_lineage(["population"], source_vintages(con, settings))
    prov = mart_provenance(con, "marts.mixed", PROVENANCE_COLUMNS, lineage)
    assert prov == Provenance(
        source_tables=["TAB1830", "TAB638"],
        source_updated={"TAB638": "2025-02-21T07:00:00Z"},  # TAB1830's vintage is unknown: omitted
        synthetic="partial",
        synthetic_inputs=["TAB1830"],
        basis="rows",
    )
    assert prov.source_updated_text == "TAB638=2025-02-21T07:00:00Z"
    empty = mart_provenance(con, "marts.empty", PROVENANCE_COLUMNS, lineage)
    assert empty.source_tables == [] and empty.synthetic == "false" and empty.basis == "rows"


def test_lineage_fallback_is_synthetic_when_any_input_is(small_warehouse: tuple) -> None:
    con, settings = small_warehouse
    vintages = source_vintages(con, settings)
    assert [(v.table_id, v.updated, v.synthetic) for v in vintages["population"]] == [
        ("TAB638", "2025-02-21T07:00:00Z", False)
    ]
    prov = mart_provenance(con, "marts.old", ["x"], from_lineage(["population", "commuting_flows"], vintages))
    assert prov.source_tables == ["TAB1830", "TAB638"]
    assert prov.synthetic == "true" and prov.synthetic_inputs == ["TAB1830"]
    assert prov.basis == "dbt lineage"
    real = mart_provenance(con, "marts.old", ["x"], from_lineage(["population"], vintages))
    assert real.synthetic == "false" and real.synthetic_inputs == []
