"""The HTML report: self-contained, offline, SYNTHETIC badges where the data is made up, robust to missing marts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from regionstat.settings import PROJECT_ROOT, Settings
from warehouse.report import commuting, lq, population, render_html, sectors, typology, write_report
from warehouse.report.access import Warehouse

MUNIS = {"0580": "Linköping", "0581": "Norrköping", "0583": "Motala", "0512": "Ydre"}
CATEGORY = {"0580": "K1", "0581": "K3", "0583": "K2", "0512": "K3"}
SECTORS = ["A", "B+C", "G", "P", "Q"]

MARTS_SQL = """
create schema if not exists marts;
create schema if not exists ops;
create table ops.loads (load_id varchar, source_name varchar, raw_table varchar, table_id varchar, rows bigint,
    content_sha256 varchar, synthetic boolean, status varchar, reason varchar, loaded_at timestamp);
insert into ops.loads values
    ('l1', 'population_tab638', 'population', 'TAB638', 8, 'x', false, 'loaded', null, '2025-11-25 10:00:00'),
    ('l2', 'employment_tab3204', 'employment_by_sector', 'TAB3204', 40, 'x', true, 'loaded', null,
     '2025-11-25 10:00:00'),
    ('l3', 'commuting_flows_tab1830', 'commuting_flows', 'TAB1830', 16, 'x', true, 'loaded', null,
     '2025-11-25 10:00:00'),
    ('l4', 'localities', 'localities', 'LandarealTatortN', 4, 'x', false, 'loaded', null, '2025-11-25 10:00:00');

create table marts.dim_municipalities (municipality_code varchar, municipality_name varchar, county_code varchar,
    is_study_area boolean, municipality_category varchar, category_basis varchar, minutes_by_car_to_k1 double);
create table marts.fct_population (region_code varchar, region_level varchar, region_name varchar,
    county_code varchar, year integer, population double, source_series varchar, is_synthetic boolean);
create table marts.mart_population_growth_by_category (county_code varchar, group_type varchar,
    group_code varchar, horizon_label varchar, horizon_years integer, start_year integer, end_year integer,
    members bigint, population_start double, population_end double, growth_pct_pooled double,
    growth_pct_unweighted_mean double, category varchar, category_basis varchar);
create table marts.mart_top_sectors (region_code varchar, region_level varchar, year integer, basis varchar,
    sector_rank bigint, sni_group_code varchar, sni_group_name_sv varchar, sni_group_name_en varchar,
    employed double, share double, comparison_year integer, rank_change bigint, is_synthetic boolean);
create table marts.mart_sector_location_quotients (region_code varchar, region_level varchar, county_code varchar,
    year integer, basis varchar, sni_group_code varchar, employed double, lq_vs_county double,
    lq_vs_reference double, is_synthetic boolean);
create table marts.fct_commuting_flows (residence_code varchar, residence_name varchar, workplace_code varchar,
    workplace_name varchar, is_stayer boolean, year integer, sex_code varchar, commuters double,
    is_synthetic boolean);
create table marts.mart_commuting_balance (municipality_code varchar, municipality_name varchar, year integer,
    employed_residents double, jobs double, stayers double, in_commuters double, out_commuters double,
    net_commuting double, job_ratio double, self_containment_supply double, largest_outflow_name varchar,
    largest_outflow_share double, is_synthetic boolean, balance_basis varchar, source_table varchar);
create table marts.mart_county_commuting (county_code varchar, county_name varchar, year integer,
    employed_residents bigint, jobs bigint, live_and_work bigint, in_commuters bigint, out_commuters bigint,
    net_commuting bigint, self_containment_supply double, self_containment_demand double,
    largest_outflow_name varchar, largest_outflow bigint, is_synthetic boolean);
create table marts.mart_commuting_totals_series (municipality_code varchar, municipality_name varchar,
    year integer, stayers double, out_commuters double, out_commuting_share double, source_series varchar,
    is_synthetic boolean);
create table marts.mart_population_age_groups (area_type varchar, area_code varchar, area_name varchar,
    county_code varchar, year integer, sex varchar, age_group varchar, age_group_from integer, population bigint,
    share_of_population_pct double, is_synthetic boolean);
create table marts.mart_population_age_structure (area_type varchar, area_code varchar, area_name varchar,
    county_code varchar, year integer, population_total bigint, median_age double, share_0_19_pct double,
    share_20_64_pct double, share_65_plus_pct double, share_80_plus_pct double, dependency_ratio double,
    compare_year integer, median_age_change double, completeness_note varchar, is_synthetic boolean);
create table marts.mart_locality_typology (locality_code varchar, locality_name varchar,
    municipality_code varchar, year integer, typology_code varchar, typology_name_en varchar, size_class varchar,
    population double, growth_class varchar, previous_year integer, growth_pct_per_year double,
    density_class varchar, density_per_km2 double, function_class varchar, municipality_job_ratio double,
    accessibility_class varchar, municipality_category varchar, category_basis varchar, rule_applied varchar,
    locality_job_ratio double, function_basis varchar);
create table marts.mart_key_figures (indicator_code varchar, indicator_name varchar, unit varchar,
    region_code varchar, year integer, quarter varchar, period varchar, value double, source_table varchar,
    is_synthetic boolean);
insert into marts.mart_key_figures
    select 'Befolkning', 'Population', 'persons', code, 2024, 'Q4', '2024Q4', 1000, 'ksi2242', false
    from (values ('0580'), ('0581'), ('05'), ('00')) as regions (code);
"""


def _build_marts(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute(MARTS_SQL)
    for i, (code, name) in enumerate(sorted(MUNIS.items())):
        con.execute(
            "insert into marts.dim_municipalities values (?, ?, '05', ?, ?, ?, null)",
            [
                code,
                name,
                code in ("0580", "0583"),
                CATEGORY[code],
                "largest_population" if code == "0580" else "commuting_proxy",
            ],
        )
        for year in range(2014, 2025):
            con.execute(
                "insert into marts.fct_population values (?, 'municipality', ?, '05', ?, ?, 'rtb_1968_2024', false)",
                [code, name, year, 10000.0 * (i + 1) + 50 * (year - 2014)],
            )
            if i == 0:  # the county itself: not a panel of the trend chart
                con.execute(
                    "insert into marts.fct_population values ('05', 'county', 'Östergötlands län', '05', ?, "
                    "500000, 'rtb_1968_2024', false)",
                    [year],
                )
        con.execute(
            "insert into marts.mart_population_growth_by_category values ('05', 'municipality', ?, "
            "'2014-2024', 10, 2014, 2024, 1, 100, 105, 5.0, 5.0, ?, 'commuting_proxy')",
            [code, CATEGORY[code]],
        )
        for rank, sni in enumerate(SECTORS, start=1):
            con.execute(
                "insert into marts.mart_top_sectors values (?, 'municipality', 2024, 'day', ?, ?, ?, ?, ?, "
                "?, 2019, ?, true)",
                [code, rank, sni, f"sv {sni}", f"Sector {sni}", 1000.0 / rank, 0.2 / rank, 1 - rank],
            )
            for basis, quotient in (("day", 0.5 + 0.3 * rank), ("night", 3.9)):
                con.execute(
                    "insert into marts.mart_sector_location_quotients values (?, 'municipality', '05', "
                    "2024, ?, ?, 100, 1.0, ?, true)",
                    [code, basis, sni, quotient],
                )
        if i < 2:  # real county figures (RAMS 2018-like), shown first in their own block
            for rank, sni in enumerate(SECTORS, start=1):
                con.execute(
                    "insert into marts.mart_sector_location_quotients values (?, 'county', ?, 2018, 'day', ?, 100, "
                    "1.0, ?, false)",
                    [("05", "01")[i], ("05", "01")[i], sni, 0.6 + 0.2 * rank],
                )
        for other in sorted(MUNIS):
            for sex in ("1", "2", "total"):
                value = (5000.0 if other == code else 100.0 * (i + 1)) * (2 if sex == "total" else 1)
                con.execute(
                    "insert into marts.fct_commuting_flows values (?, ?, ?, ?, ?, 2024, ?, ?, true)",
                    [code, name, other, MUNIS[other], other == code, sex, value],
                )
        if code == "0580":  # made-up figures standing for a real municipal file (PE12) 2020-2024
            for year in range(2020, 2025):
                con.execute(
                    "insert into marts.mart_commuting_balance values (?, ?, ?, 10000, 11000, 7000, 4000, 3000, "
                    "1000, 1.1, 0.7, null, null, false, 'municipal_file_pe12', 'PE12.px')",
                    [code, name, year],
                )
        else:
            con.execute(
                "insert into marts.mart_commuting_balance values (?, ?, 2024, 10000, ?, 7000, 2000, 3000, ?, "
                "?, 0.7, 'Linköping', 0.12, true, 'od_matrix', 'TAB1830')",
                [code, name, 9000.0 + 500 * i, -1000.0 + 500 * i, 0.9 + 0.05 * i],
            )
        for year in (1993, 2003, 2004, 2018, 2019, 2021):
            series = "rams_1993_2003" if year < 2004 else "rams_2004_2018" if year < 2019 else "bas_2019"
            con.execute(
                "insert into marts.mart_commuting_totals_series values (?, ?, ?, 7000, 3000, 0.3, ?, false)",
                [code, name, year, series],
            )
        con.execute(
            "insert into marts.mart_locality_typology values (?, ?, ?, 2023, 'S3-G0-D2-F2-A2', "
            "'town / growth unknown', 'S3', 6000, 'G0', null, null, 'D2', 800, 'F2', 0.9, 'A2', ?, "
            "'commuting_proxy', 'size = 6000 -> S3 town; density = 800 -> D2', null, 'municipality')",
            [f"{code}TC101", f"Ort {name}", code, CATEGORY[code]],
        )
        con.execute(
            "insert into marts.mart_population_age_structure values ('municipality', ?, ?, '05', 2024, 1000, 40.5, "
            "20, 55, 25, 8, 0.82, null, null, null, false)",
            [code, name],
        )
    for start in range(0, 105, 5):
        group = "100+" if start == 100 else f"{start}-{start + 4}"
        for sex in ("men", "women"):
            con.execute(
                "insert into marts.mart_population_age_groups values ('county', '05', 'Östergötlands län', '05', 2024, "
                "?, ?, ?, ?, 1.0, false)",
                [sex, group, start, 1000 - 9 * start],
            )
    con.execute(
        "insert into marts.mart_population_age_structure values ('county', '05', 'Östergötlands län', '05', 2024, "
        "null, null, null, null, null, null, null, null, null, 'age structure unknown: 3 of 13 member "
        "municipalities have complete age data', false)"
    )
    for code, name, out in (("05", "Östergötland county", 13548), ("06", "Jönköping county", 9000)):
        con.execute(
            "insert into marts.mart_county_commuting values (?, ?, 2018, 200000, 199000, 190000, 9000, ?, "
            "-1000, 0.95, 0.96, 'Stockholm county', 4000, false)",
            [code, name, out],
        )
    for t, c in (("county", "05"), ("category", "K1"), ("category", "K2"), ("category", "K3")):
        con.execute(
            "insert into marts.mart_population_growth_by_category values ('05', ?, ?, '2014-2024', 10, "
            "2014, 2024, 2, 200, 210, 5.0, 4.5, ?, 'commuting_proxy')",
            [t, c, None if t == "county" else c],
        )
    con.close()


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings.from_env()


def _section(text: str, section_id: str) -> str:
    m = re.search(rf'<section class="sec" id="{section_id}">(.*?)</section>', text, re.S)
    assert m, f"section {section_id} missing"
    return m.group(1)


def _block(text: str, block_id: str) -> str:
    m = re.search(rf'<div class="block" id="{block_id}">(.*?)(?=<div class="block"|</section>)', text, re.S)
    assert m, f"block {block_id} missing"
    return m.group(1)


def _contract() -> dict[str, set[str]]:
    """mart -> its columns, from the dbt models' YAML."""
    out: dict[str, set[str]] = {}
    for path in sorted((PROJECT_ROOT / "dbt_project" / "models" / "marts").glob("**/_*__models.yml")):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models", []):
            out[model["name"]] = {c["name"] for c in model.get("columns", [])}
    return out


def test_fixture_marts_follow_the_dbt_contract(settings: Settings) -> None:
    _build_marts(settings)
    contract = _contract()
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    rows = con.execute("select table_name, column_name from information_schema.columns where table_schema = 'marts'")
    for table, column in rows.fetchall():
        assert table in contract, f"marts.{table} is not a dbt mart"
        assert column in contract[table], f"marts.{table}.{column} is not in the dbt contract"
    con.close()


def test_report_is_self_contained_and_complete(settings: Settings) -> None:
    _build_marts(settings)
    path = write_report(settings=settings)
    assert path == settings.reports_dir / "index.html"
    assert path.exists()
    text = path.read_text(encoding="utf-8")
    # offline: no external scripts, stylesheets, fonts or images
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)
    assert not re.search(r"<link[^>]*stylesheet[^>]*href\s*=\s*[\"']?https?:", text, re.I)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?https?:", text, re.I)
    assert not re.search(r"@import|url\(\s*[\"']?https?:", text, re.I)
    assert not re.search(r"<img[^>]*src\s*=\s*[\"']?https?:", text, re.I)
    assert "<script" not in text.lower()
    # category growth, population trend, age pyramid, LQ heatmaps (real, latest year), municipal commuting file,
    # out-commuting series, net commuting
    assert text.count("<svg") == 8
    for name in MUNIS.values():
        assert name in text
    # the sector section carries the SYNTHETIC badge; population does not
    sectors = _section(text, "sectors")
    assert 'class="badge synthetic"' in sectors and "SYNTHETIC" in sectors
    assert "SYNTHETIC" in _section(text, "lq")
    population = _section(text, "population")
    assert "SYNTHETIC" not in population
    assert "K1" in population and "commuting proxy" in population
    assert "4 municipalities, 2014–2024" in population  # the county row is not a municipality
    assert ">3.9<" not in _section(text, "lq")  # day basis only
    real_lq = _block(text, "lq-1")  # real figures first, without the badge; the synthetic block after, with it
    assert "from real figures" in real_lq and "SYNTHETIC" not in real_lq and "Stockholms län 2018" in real_lq
    assert "SYNTHETIC" in _block(text, "lq-2")
    ages = _section(text, "ages")
    assert "SYNTHETIC" not in ages and "40.50" in ages and "0.82" in ages
    assert "Dashes: age structure unknown: 3 of 13 member municipalities have complete age data" in ages
    commuting = _section(text, "commuting")
    assert "SYNTHETIC" in commuting and "Out-commuting since 1993" in commuting
    # real first: the municipal file and the county matrix lead, unbadged; the OD blocks follow, badged
    assert "SYNTHETIC" not in _block(text, "commuting-1") and "PE12.px" in _block(text, "commuting-1")
    county = _block(text, "commuting-2")
    assert "SYNTHETIC" not in county and county.index("Östergötland county") < county.index("Jönköping county")
    balance = _block(text, "commuting-4")
    assert "PARTLY SYNTHETIC" in balance and balance.index("municipal file, PE12.px") < balance.index("OD matrix")
    flows = _block(text, "commuting-5")
    assert flows.count("<tr>") == 1 + 12  # header + the 12 pairs of different municipalities, both sexes only
    assert "4 localities in the county; 2 in the study area" in _section(text, "localities")
    assert "note na" not in text  # no section fell back to a "not available" note
    # header and footer
    assert "Östergötland" in text and "CC0" in text
    assert "regionstat sql" in text
    assert "../docs/" not in text  # no docs built here: no dead links (test_report_links_the_docs_that_exist)
    assert "raw.employment_by_sector" in text and "raw.commuting_flows" in text


def test_report_is_deterministic_apart_from_timestamp(settings: Settings) -> None:
    _build_marts(settings)
    now = dt.datetime(2025, 1, 2, 3, 4, tzinfo=dt.UTC)
    assert render_html(settings, now=now) == render_html(settings, now=now)


def test_missing_marts_give_notes_not_crashes(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    _build_marts(settings)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("drop table marts.mart_top_sectors; drop table marts.mart_locality_typology")
    con.execute("alter table marts.mart_commuting_balance drop column net_commuting")
    con.close()
    with caplog.at_level("WARNING", logger="warehouse.report"):
        text = write_report(settings=settings).read_text(encoding="utf-8")
    assert "not available: mart marts.mart_top_sectors" in _section(text, "sectors")
    assert "not available" in _section(text, "localities")
    assert "not available" in _section(text, "commuting")
    assert "<svg" in _section(text, "lq")  # the rest still renders
    assert any("mart_top_sectors" in r.getMessage() for r in caplog.records)


def test_report_links_the_docs_that_exist(settings: Settings) -> None:
    """A CLI-only run has GX Data Docs but no dbt docs: only the GX link; both once ``regionstat docs`` ran."""
    gx = settings.docs_dir / "gx" / "index.html"
    dbt_docs = settings.docs_dir / "dbt" / "static_index.html"
    gx.parent.mkdir(parents=True)
    gx.write_text("<html></html>")
    text = write_report(settings=settings).read_text(encoding="utf-8")
    assert 'href="../docs/gx/index.html"' in text and "static_index.html" not in text
    assert "not built yet (<code>regionstat docs</code>" in text
    dbt_docs.parent.mkdir(parents=True)
    dbt_docs.write_text("<html></html>")
    text = write_report(settings=settings).read_text(encoding="utf-8")
    assert 'href="../docs/dbt/static_index.html"' in text and "not built yet" not in text


def test_report_without_a_warehouse(settings: Settings) -> None:
    text = write_report(settings=settings).read_text(encoding="utf-8")
    assert "not available" in text and "regionstat run" in text


def _vintage_line(text: str) -> str:
    m = re.search(r"<dt>Data vintage</dt><dd>(.*?)</dd>", text, re.S)
    assert m, "no data vintage in the header"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", m.group(1)))


def test_vintage_line_shows_upstream_updated_from_the_landing_manifests(settings: Settings) -> None:
    """Marts without provenance columns: the upstream `updated` comes from the manifest of the live load."""
    _build_marts(settings)
    manifest = settings.landing_dir / "population" / "population_tab638" / "l1.manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"load_id": "l1", "updated": "2025-02-21T07:00:00Z"}', encoding="utf-8")
    text = write_report(settings=settings).read_text(encoding="utf-8")
    assert "population 2014–2024 · updated TAB638 2025-02-21" in _vintage_line(text)
    assert "Updated upstream</b> TAB638 2025-02-21" in _block(text, "population-2")
    assert re.search(r"<td>TAB638</td><td>2025-02-21</td>", text)  # the footer's loaded sources
    assert "updated TAB3204 vintage unknown" in _vintage_line(text)  # no manifest for it: said, no date made up


def test_blocks_take_flag_and_vintage_from_the_rows_shown(settings: Settings) -> None:
    """Marts with the contract's provenance columns: each block's badge and vintage come from its rows."""
    _build_marts(settings)
    con = duckdb.connect(str(settings.warehouse_path))
    for mart in ("fct_population", "mart_top_sectors"):
        con.execute(
            f"alter table marts.{mart} add column synthetic_inputs varchar; "
            f"alter table marts.{mart} add column source_tables varchar; "
            f"alter table marts.{mart} add column source_updated varchar"
        )
    con.execute(
        "update marts.fct_population set source_tables = 'TAB5557,TAB638', "
        "source_updated = 'TAB5557=2026-02-24T07:00:00Z,TAB638=2025-02-21T07:00:00Z'"
    )
    # only Linköping's sector rows are synthetic: the block is partly synthetic, 5 of 20 rows
    con.execute(
        "update marts.mart_top_sectors set is_synthetic = region_code = '0580', "
        "synthetic_inputs = case when region_code = '0580' then 'TAB3204' end, source_tables = 'TAB3204', "
        "source_updated = 'TAB3204=2025-06-01T06:00:00Z'"
    )
    con.close()
    text = write_report(settings=settings).read_text(encoding="utf-8")
    trend = _block(text, "population-2")
    assert "SCB data" in trend and "SYNTHETIC" not in trend
    assert "Updated upstream</b> TAB5557 2026-02-24, TAB638 2025-02-21" in trend
    assert "fct_population ← TAB5557; TAB638 (population)" in trend  # the ledger knows only TAB638's raw table
    sectors = _section(text, "sectors")
    assert "PARTLY SYNTHETIC" in sectors
    assert "5 of 20 rows shown derive from synthetic inputs: raw.employment_by_sector (TAB3204)" in sectors
    assert "Updated upstream</b> TAB3204 2025-06-01" in sectors
    line = _vintage_line(text)
    assert "updated TAB5557 2026-02-24, TAB638 2025-02-21" in line
    assert "employment 2024 (synthetic) · updated TAB3204 2025-06-01" in line  # the LQ block is all synthetic
    # real commuting domains first; no vintage known for the matrix: none is made up, and the line says so
    assert "commuting file 2020–2024 county commuting matrix 2018 commuting totals 1993–2021" in line
    assert "commuting matrix 2024 (synthetic) · updated TAB1830 vintage unknown key figures" in line


# ---------------------------------------------------------------------------------------------------------------
# Section view models: each section module returns a typed view model from the marts, without any markup.


@pytest.fixture
def warehouse(settings: Settings) -> Iterator[Warehouse]:
    _build_marts(settings)
    wh = Warehouse(settings)
    yield wh
    wh.close()


def test_warehouse_takes_county_vars_and_source_labels_from_dbt(warehouse: Warehouse) -> None:
    project = yaml.safe_load((PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text(encoding="utf-8"))
    assert warehouse.county == project["vars"]["county_code"]
    assert warehouse.sources["population"].label == "SCB TAB638/TAB5557"
    assert warehouse.offline_synthetic() == ["commuting_flows", "employment_by_sector", "localities"]
    assert warehouse.region_label().startswith("Östergötlands län (county 05, 4 municipalities)")


def test_population_views(warehouse: Warehouse) -> None:
    growth = population.category_growth(warehouse)
    view = growth.view
    assert isinstance(view, population.CategoryGrowthView)
    assert [p.title for p in view.periods] == ["2014–2024"]
    assert [g.name for g in view.groups] == ["K1", "K2", "K3", "County"]
    assert view.groups[-1].is_county and view.groups[0].growth == [(5.0, 4.5)]
    assert [m.name for m in view.members] == ["Linköping", "Motala", "Ydre", "Norrköping"]  # K1, K2, K3 by code
    assert all(m.is_proxy for m in view.members)  # the fixture mart says commuting_proxy for all
    assert "45-minute rule" in view.proxy_note and "7.5 %" in view.proxy_note  # dbt vars, not restated
    assert view.chart is not None and view.chart.svg is not None
    trend = population.population_trend(warehouse)
    assert isinstance(trend.view, population.TrendView)
    assert trend.view.note.startswith("4 municipalities, 2014–2024") and trend.vintage == "2014–2024"


def test_sector_views(warehouse: Warehouse) -> None:
    block = sectors.top_sectors(warehouse)
    view = block.view
    assert isinstance(view, sectors.TopSectorsView)
    assert view.rank_change_header == "Rank change since 2019"
    assert [r.code for r in view.regions] == sorted(MUNIS)
    first = view.regions[0]
    assert first.top.rank == 1 and first.top.bar_pct == 100.0 and first.rows[1].bar_pct == 50.0
    assert block.intro.startswith("The 15 largest")  # var top_sectors_n
    assert block.synthetic and block.vintage == "2024"
    heat = lq.location_quotients(warehouse)
    assert isinstance(heat.view, lq.HeatmapView) and heat.view.chart.svg is not None


def test_commuting_views(warehouse: Warehouse) -> None:
    balance = commuting.commuting_balance(warehouse).view
    assert isinstance(balance, commuting.ChartTableView) and balance.table is not None
    rows = balance.table.rows
    # real first: Linköping's municipal file row leads, then the synthetic OD rows by net commuting
    assert rows[0]["source"] == "municipal file, PE12.px" and rows[0]["largest"] == "–"
    assert all(r["source"] == "OD matrix, TAB1830 (synthetic)" for r in rows[1:])
    nets = [r["net_commuting"] for r in rows[1:]]
    assert nets == sorted(nets, reverse=True)
    assert rows[1]["largest"] == "Linköping (12.0\u2009%)"
    assert "20 % and 7.5 %" in balance.note  # la_max_out_share, la_max_single_destination_share
    flows = commuting.top_flows(warehouse, top_n=5).view
    assert flows.table is not None and [r["rank"] for r in flows.table.rows] == [1, 2, 3, 4, 5]
    assert all(r["residence_name"] != r["workplace_name"] for r in flows.table.rows)
    series = commuting.commuting_series(warehouse)
    assert "series breaks (2004, 2019)" in series.view.note and series.vintage == "1993–2021"
    file_series = commuting.commuting_file_series(warehouse)
    assert file_series.vintage == "2020–2024" and "PE12.px" in file_series.view.note
    assert [r["year"] for r in file_series.view.table.rows] == [2024]  # every fifth year back from the latest
    county = commuting.county_commuting(warehouse)
    assert county.vintage == "2018" and not county.synthetic
    assert [r["county"] for r in county.view.table.rows] == ["Östergötland county", "Jönköping county"]
    assert county.view.table.rows[0]["largest"] == "Stockholm county (4\u2009000)"


def test_typology_view_sorts_municipalities_in_swedish_order(settings: Settings) -> None:
    _build_marts(settings)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute(
        "insert into marts.dim_municipalities values ('0509', 'Ödeshög', '05', false, 'K3', 'commuting_proxy', null), "
        "('0561', 'Åtvidaberg', '05', false, 'K3', 'commuting_proxy', null), "
        "('0560', 'Boxholm', '05', false, 'K3', 'commuting_proxy', null)"
    )
    for code in ("0509", "0561", "0560"):
        con.execute(
            "insert into marts.mart_locality_typology select ? || 'TC101', 'Ort', ?, 2023, typology_code, "
            "typology_name_en, size_class, population, growth_class, previous_year, growth_pct_per_year, "
            "density_class, density_per_km2, function_class, municipality_job_ratio, accessibility_class, "
            "municipality_category, category_basis, rule_applied, locality_job_ratio, function_basis "
            "from marts.mart_locality_typology limit 1",
            [code, code],
        )
    con.close()
    wh = Warehouse(settings)
    view = typology.locality_typology(wh).view
    wh.close()
    assert isinstance(view, typology.TypologyView)
    munis = [r.municipality for r in view.rows]
    assert munis == ["Boxholm", "Linköping", "Motala", "Norrköping", "Ydre", "Åtvidaberg", "Ödeshög"]
    linkoping = view.rows[1]
    assert linkoping.study_area and linkoping.rules == ["size = 6000 -> S3 town", "density = 800 -> D2"]
    assert [c.class_code for c in linkoping.cells] == ["S3", "G0", "D2", "F2", "A2"]
    assert view.rules is not None and view.rules.rows  # the seed's classification rules


def test_dbt_exposure_lists_every_mart_the_report_reads() -> None:
    """dbt's lineage of the report (exposure html_report) is complete: each mart a report query reads is in it."""
    sql_dir = PROJECT_ROOT / "warehouse" / "report" / "sql"
    read = {m for path in sql_dir.glob("*.sql") for m in re.findall(r"\bmarts\.(\w+)", path.read_text("utf-8"))}
    exposures = PROJECT_ROOT / "dbt_project" / "models" / "reports" / "_reports__exposures.yml"
    (report,) = [e for e in yaml.safe_load(exposures.read_text("utf-8"))["exposures"] if e["name"] == "html_report"]
    listed = {re.fullmatch(r"ref\('(\w+)'\)", dep).group(1) for dep in report["depends_on"]}  # type: ignore[union-attr]
    assert len(read) >= 9
    assert read <= listed, f"add to the exposure: {sorted(read - listed)}"
