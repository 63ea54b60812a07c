"""Trust in the marts: lineage-derived synthetic flags, provenance on every row, honest group aggregates, docs.

Real dbt on real DuckDB: the graph test reads dbt's own manifest; the flag tests take the bundled snapshot as the
session's run loaded it (``built_data``), then build the marts on copies of the warehouse in which exactly ONE
input is marked synthetic, and check that exactly the rows using that input are flagged. The aggregate tests build
the study-area mart on small fixture warehouses.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from regionstat.settings import Settings
from warehouse.build import DBT_PROJECT_DIR, invoke_dbt, run_dbt
from warehouse.db import connect_writer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dbt_trust")]

PROVENANCE = ["is_synthetic", "synthetic_inputs", "source_tables", "source_updated"]
NUMERIC_TYPES = ("BIGINT", "INTEGER", "DOUBLE", "DECIMAL", "HUGEINT", "FLOAT", "SMALLINT")
#: columns that are numbers but not measurements: codes, ranks, years and counts of things are described by words
UNITLESS = re.compile(r"(^|_)(year|rank|order|links|vintage)(_|$)|^n_industries$|^members$")


def _sql(path: Path, query: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def _marts(path: Path) -> list[str]:
    return [r[0] for r in _sql(path, "select table_name from information_schema.tables where table_schema = 'marts'")]


# --- the dbt graph -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest(built_data: Path) -> dict:
    """dbt's own manifest, as the session's run (conftest.py) wrote it: no separate `dbt parse`."""
    return json.loads((built_data / ".state" / "dbt" / "target" / "manifest.json").read_text(encoding="utf-8"))


def _mart_nodes(manifest: dict) -> dict[str, dict]:
    return {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["original_file_path"].startswith("models/marts/")
    }


def _upstream_sources(manifest: dict, uid: str) -> set[str]:
    seen: set[str] = set()
    todo = [uid]
    while todo:
        for dep in manifest["nodes"].get(todo.pop(), {}).get("depends_on", {}).get("nodes", []):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return {d for d in seen if d.startswith("source.")}


def test_every_mart_exposes_the_provenance_contract(manifest: dict) -> None:
    marts = _mart_nodes(manifest)
    assert len(marts) >= 18
    tested = {
        node["attached_node"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
        and (node.get("test_metadata") or {}).get("name") == "provenance_is_consistent"
    }
    for uid, node in marts.items():
        columns = list(node["columns"])
        assert columns[-4:] == PROVENANCE, f"{node['name']} does not end with the provenance columns: {columns[-4:]}"
        # every raw table can hold a synthetic batch (the loader flags each batch), so any mart fed by a source
        # must expose and test the flag
        if _upstream_sources(manifest, uid):
            assert "is_synthetic" in columns, node["name"]
            assert uid in tested, f"{node['name']} has no provenance_is_consistent test"


def test_every_mart_column_is_described_in_words_first(manifest: dict) -> None:
    for node in _mart_nodes(manifest).values():
        assert node["description"].strip(), node["name"]
        for column in node["columns"].values():
            description = column["description"].strip()
            first = description.split()[0] if description else ""
            assert re.fullmatch(r"[^\W\d_][\w'-]*[.,:;]?", first) and "_" not in first, (
                f"{node['name']}.{column['name']}: description must start with words, not a formula: {description!r}"
            )


def test_commuting_balance_arithmetic_is_one_macro(manifest: dict) -> None:
    """Jobs, net commuting, self-containment, ... of an OD matrix are written once (macros/commuting.sql)."""
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    users = {
        name for name, n in models.items() if "macro.regionstat.commuting_balance_ctes" in n["depends_on"]["macros"]
    }
    assert users == {"int_commuting__municipal_balance", "mart_county_commuting"}
    for name in users:
        assert "safe_divide" not in models[name]["raw_code"], f"{name} computes a ratio itself"


def test_docs_overview_and_synthetic_sources(manifest: dict) -> None:
    overview = manifest["docs"].get("doc.regionstat.__overview__")
    assert overview, "no {% docs __overview__ %} in the project"
    text = overview["block_contents"]
    for needed in ("stg_", "int_", "mart", "synthetic", "TAB3204", "TAB1830"):
        assert needed in text, needed
    by_name = {(s["source_name"], s["name"]): s for s in manifest["sources"].values()}
    for key, source in by_name.items():
        assert isinstance(source["meta"].get("synthetic_offline"), bool), f"{key}: meta.synthetic_offline missing"
    for table in ("employment_by_sector", "commuting_flows"):
        source = by_name[("scb", table)]
        assert source["meta"].get("synthetic_offline") is True, table
        assert "SYNTHETIC" in source["description"], table
    assert by_name[("scb", "population")]["meta"].get("synthetic_offline") is False


# --- flags derived from lineage: one synthetic input at a time ------------------------------------------------


@pytest.fixture(scope="module")
def loaded(built_data: Path) -> Path:
    """The bundled snapshot extracted, validated and loaded into raw.*: the session's run (conftest.py), whose raw
    tables are what a load alone leaves. Read-only: tests copy its warehouse, and dbt rebuilds every model there."""
    return built_data


def _build_with_only(loaded: Path, tmp_path: Path, synthetic_raw_table: str) -> Path:
    """A copy of the loaded warehouse in which only `synthetic_raw_table` is marked synthetic, built by dbt.

    Test fixture only: the offline snapshot's employment and OD are both synthetic; to see that a flag follows
    exactly one input, the other is treated as real here. Nothing of this copy is published.
    """
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(loaded / "warehouse.duckdb", data / "warehouse.duckdb")
    con = duckdb.connect(str(data / "warehouse.duckdb"))
    for (table,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'raw'"
    ).fetchall():
        con.execute(f'update raw."{table}" set _synthetic = ?', [table == synthetic_raw_table])
    con.close()
    run_dbt(settings=Settings(data_dir=data))  # includes provenance_is_consistent on every mart
    return data / "warehouse.duckdb"


def _flag_rows(path: Path, mart: str, uses_input: str) -> list[tuple]:
    """Rows whose flag differs from `uses_input` (a SQL condition saying the row shows a figure of the input)."""
    return _sql(path, f"select * from marts.{mart} where is_synthetic != coalesce({uses_input}, false)")


def _check_every_mart(path: Path, table_id: str) -> None:
    for mart in _marts(path):
        rows = _sql(
            path,
            f"select is_synthetic, synthetic_inputs, list_contains(string_split(source_tables, ','), ?) "
            f"from marts.{mart}",
            [table_id],
        )
        for is_synthetic, synthetic_inputs, uses in rows:
            assert is_synthetic == uses, (mart, is_synthetic, synthetic_inputs)
            assert synthetic_inputs == (table_id if uses else None), (mart, synthetic_inputs)


def test_only_synthetic_employment_flags_exactly_its_rows(loaded: Path, tmp_path: Path) -> None:
    path = _build_with_only(loaded, tmp_path, "employment_by_sector")
    _check_every_mart(path, "TAB3204")
    assert _sql(path, "select bool_and(is_synthetic) from marts.fct_employment_by_sector") == [(True,)]
    for real in (
        "fct_population",
        "mart_population_growth",
        "fct_commuting_flows",
        "mart_commuting_balance",
        "mart_labour_market_areas",
        "dim_municipalities",
        "mart_population_growth_by_category",
    ):
        assert _sql(path, f"select count(*) filter (is_synthetic) from marts.{real}") == [(0,)], real
    # the study area's jobs, employed residents and job ratio come from employment; its population does not
    summary = "mart_study_area_summary"
    assert not _flag_rows(path, summary, "jobs is not null or employed_residents is not null")
    assert _sql(
        path, f"select count(*) filter (is_synthetic), count(*) filter (not is_synthetic) from marts.{summary}"
    )[0] > (0, 0)
    # the typology's function class rests on the municipality's jobs per employed resident
    assert not _flag_rows(path, "mart_locality_typology", "municipality_job_ratio is not null")


def test_only_synthetic_commuting_flags_exactly_its_rows(loaded: Path, tmp_path: Path) -> None:
    path = _build_with_only(loaded, tmp_path, "commuting_flows")
    _check_every_mart(path, "TAB1830")
    assert _sql(path, "select count(*) filter (is_synthetic) from marts.fct_employment_by_sector") == [(0,)]
    assert _sql(path, "select bool_and(is_synthetic) from marts.mart_labour_market_areas") == [(True,)]
    assert not _flag_rows(path, "mart_study_area_summary", "self_containment_supply is not null")
    # the K1/K2/K3 category rests on the OD matrix where the commuting proxy decided it
    assert not _flag_rows(
        path, "dim_municipalities", "category_basis = 'commuting_proxy' or commuting_share_to_k1 is not null"
    )
    assert not _flag_rows(path, "mart_locality_typology", "category_basis = 'commuting_proxy'")
    assert not _flag_rows(path, "dim_localities", "municipality_category in ('K2', 'K3')")
    assert _sql(path, "select count(*) filter (is_synthetic) from marts.mart_locality_typology")[0][0] > 0


def test_offline_marts_cite_vintages_and_units(built_data: Path) -> None:
    """As shipped (employment and OD synthetic): vintages in every row, units on every numeric column. The session's
    run built these marts with every dbt test (provenance_is_consistent included) and must have passed."""
    data = built_data
    path = data / "warehouse.duckdb"
    assert _sql(path, "select distinct source_updated from marts.fct_population order by 1") == [
        ("TAB5557=2026-02-24T07:00:00Z",),
        ("TAB638=2025-02-21T07:00:00Z",),
    ]
    assert _sql(
        path,
        "select synthetic_inputs, source_tables from marts.mart_study_area_summary "
        "where area_type = 'county' and year = 2024",
    ) == [("TAB1830,TAB3204", "TAB1830,TAB3204,TAB628,TAB638")]
    # Sweden: 13 of 290 municipalities loaded and no SCB figure -> no land area, no density, and a reason
    assert _sql(
        path,
        "select distinct land_area_km2, density_per_km2, members_expected, completeness_note "
        "from marts.mart_study_area_summary where area_type = 'country'",
    ) == [
        (
            None,
            None,
            290,
            "land area unknown: 13 of 290 member municipalities loaded and no SCB figure for the area",
        )
    ]
    # Östergötland: all 13 members loaded, so its land area is their sum
    (county_area,) = _sql(
        path,
        "select distinct land_area_km2 from marts.mart_study_area_summary where area_type = 'county'",
    )[0:1][0]
    members_sum = _sql(
        path,
        "select round(sum(land_area_km2), 2) from marts.dim_municipalities where county_code = '05'",
    )[0][0]
    assert county_area == members_sum and 10_000 < county_area < 11_000
    # Ydre alone is not "LA Aneby": an LA mostly outside the region set is left out
    assert _sql(path, "select distinct area_code from marts.mart_study_area_summary where area_type = 'la_region'") in (
        [("LA Linköping",), ("LA Norrköping",)],
        [("LA Norrköping",), ("LA Linköping",)],
    )
    # units: every numeric mart column that measures something names its unit in the dbt YAML
    manifest = json.loads((data / ".state" / "dbt" / "target" / "manifest.json").read_text(encoding="utf-8"))
    declared = {
        node["name"]: node["columns"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["original_file_path"].startswith("models/marts/")
    }
    for mart, column, dtype in _sql(
        path,
        "select table_name, column_name, data_type from information_schema.columns where table_schema = 'marts'",
    ):
        if dtype.startswith(NUMERIC_TYPES) and not UNITLESS.search(column):
            meta = declared[mart].get(column, {}).get("meta", {})
            assert meta.get("unit"), f"{mart}.{column} ({dtype}) has no meta.unit"


# --- group aggregates: complete, or saying how complete --------------------------------------------------------


def _fixture_warehouse(tmp_path: Path, *, missing_land_area: set[str]) -> Path:
    """Raw population and land area for all 290 municipalities (made-up, flagged synthetic) and the mart built."""
    data = tmp_path / "data"
    data.mkdir()
    path = data / "warehouse.duckdb"
    con = connect_writer(path)
    seeds = DBT_PROJECT_DIR / "seeds" / "municipalities.csv"
    codes = [
        r[0]
        for r in con.execute("select municipality_code from read_csv(?, all_varchar=true)", [str(seeds)]).fetchall()
    ]
    lineage = "'fixture', 'TAB638', 'fixture-load', true, now()::timestamp, '2025-02-21T07:00:00Z'"
    for code in codes:
        con.execute(
            f"insert into raw.population (Region, ContentsCode, Tid, value, status, _source_name, _source_table, "
            f"_load_id, _synthetic, _loaded_at, _source_updated) values (?, 'BE0101N1', '2024', 1000, null, {lineage})",
            [code],
        )
        land = None if code in missing_land_area else 10.0
        con.execute(
            "insert into raw.land_area (Region, ContentsCode, Tid, value, status, _source_name, _source_table, "
            "_load_id, _synthetic, _loaded_at, _source_updated) values (?, 'BE0101U3', '2024', ?, ?, "
            "'fixture', 'TAB628', 'fixture-load', true, now()::timestamp, '2026-02-24T07:00:00Z')",
            [code, land, ".." if land is None else None],
        )
    con.execute(
        "insert into raw.population (Region, ContentsCode, Tid, value, _source_name, _source_table, _load_id, "
        f"_synthetic, _loaded_at, _source_updated) values ('00', 'BE0101N1', '2024', {1000 * len(codes)}, "
        "'fixture', 'TAB638', 'fixture-load', true, now()::timestamp, '2025-02-21T07:00:00Z')"
    )
    con.close()
    settings = Settings(data_dir=data)
    result = invoke_dbt(
        "build",
        settings,
        ["--select", "+mart_study_area_summary", "--exclude", "resource_type:test", "resource_type:unit_test"],
        duckdb_path=str(path),
    )
    assert result.success, result.failures
    return path


def test_sweden_land_area_is_the_sum_of_all_290_municipalities(tmp_path: Path) -> None:
    path = _fixture_warehouse(tmp_path, missing_land_area=set())
    assert _sql(
        path,
        "select land_area_km2, density_per_km2, members_with_data, members_expected, completeness_note, is_synthetic "
        "from marts.mart_study_area_summary where area_type = 'country'",
    ) == [(2900.0, 100.0, 290, 290, None, True)]


def test_a_missing_member_makes_its_groups_land_area_null_with_a_reason(tmp_path: Path) -> None:
    path = _fixture_warehouse(tmp_path, missing_land_area={"0512"})
    rows = dict(
        ((area_type, area_code), (land, note))
        for area_type, area_code, land, note in _sql(
            path,
            "select area_type, area_code, land_area_km2, completeness_note from marts.mart_study_area_summary",
        )
    )
    assert rows[("country", "00")] == (
        None,
        "land area unknown: 289 of 290 member municipalities loaded and no SCB figure for the area",
    )
    assert rows[("county", "05")][0] is None and "12 of 13" in rows[("county", "05")][1]
    assert rows[("county", "01")] == (260.0, None)  # Stockholm's 26 municipalities are all there
    # with every municipality loaded, Ydre and Aneby make up LA Aneby; Ydre's missing land area shows there too
    assert rows[("la_region", "LA Aneby")][0] is None and "1 of 2" in rows[("la_region", "LA Aneby")][1]
