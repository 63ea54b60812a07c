"""Commuting marts, real first: Linköping from its own PE12 file, counties from SCB's real 21 x 21 matrix.

One fixture warehouse, one dbt build (tests included, so provenance_is_consistent and the identities run too):
- PE12.px (Linköping, 1994-2024, real) through the inbox loader like any municipal file;
- raw.commuting_od per the shared contract from SCB's real AM0207AC CSV (county matrix 2018), read here with the
  csv module, and the real Norrbotten ArRegPend2 2024 fixture (municipal OD) rewritten in the contract's shape
  and dropped into the inbox (catalogue entry commuting_od_csv);
- raw.commuting_totals from the real TAB3267/TAB3266/TAB5839 reference files;
- a few SYNTHETIC TAB1830 rows (made up here, flagged synthetic) so one row of a mart mixes real and synthetic.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pytest

from expectations.validate import validate_pending
from extract.pipeline import extract_inbox
from regionstat.settings import Settings
from tests.conftest import REFERENCE_DATA
from warehouse.build import invoke_dbt
from warehouse.db import connect_writer
from warehouse.load import load_validated

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("commuting_real_first")]

AM0207AC = REFERENCE_DATA / "county_rams_2018" / "AM0207AC_20230705-141955.csv"
NORRBOTTEN = REFERENCE_DATA / "commuting_od_fixtures" / "norrbotten_ArRegPend2_2024_totalt.csv"
TOTALS = sorted(REFERENCE_DATA.glob("ostergotland_commuting_TAB*.csv"))
LINEAGE_COLUMNS = "_source_name, _source_table, _load_id, _synthetic, _loaded_at, _source_updated"
NORRBOTTEN_DROP = "norrbotten_2024_od_flows.csv"
MARTS = (
    "+mart_commuting_balance +mart_commuting_totals_series +mart_commuting_districts +mart_county_commuting "
    "+fct_county_commuting_flows +fct_commuting_flows"
)


def _county_matrix_rows() -> list[tuple[str, str, str, str, str, str, float]]:
    """AM0207AC as raw.commuting_od rows: codes before the first space, 'men and women' -> 'total'."""
    with AM0207AC.open(encoding="iso-8859-1", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        period = header[3]
        rows = []
        for residence, work, sex, value in reader:
            assert sex == "men and women"
            res_code, res_label = residence.split(" ", 1)
            work_code, work_label = work.split(" ", 1)
            rows.append((res_code, res_label, work_code, work_label, "total", period, float(value)))
    return rows


def _norrbotten_rows() -> list[tuple[str, str, str, str, str, str, float]]:
    with NORRBOTTEN.open(encoding="utf-8", newline="") as fh:
        return [
            (r["residence_code"], r["residence"], r["workplace_code"], r["workplace"], "total", r["year"],
             float(r["employed"]))
            for r in csv.DictReader(fh)
            if r["sex"] == "totalt"
        ]  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("commuting") / "data"
    settings = Settings(data_dir=data)
    settings.inbox_dir.mkdir(parents=True)
    shutil.copy(REFERENCE_DATA / "linkoping_kommun_px" / "PE12.px", settings.inbox_dir / "PE12.px")
    with (settings.inbox_dir / NORRBOTTEN_DROP).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["residence_region", "residence_label", "work_region", "work_label", "sex", "period", "value"])
        writer.writerows(_norrbotten_rows())
    extract_inbox(settings=settings)
    validate_pending(settings, build_docs=False)
    load_validated(settings=settings)

    path = settings.warehouse_path
    con = connect_writer(path)
    try:
        od_insert = (
            "insert into raw.commuting_od (residence_region, residence_label, work_region, work_label, sex, "
            f"period, value, status, {LINEAGE_COLUMNS}) values (?, ?, ?, ?, ?, ?, ?, null, "
            "'commuting_od_csv', ?, ?, false, now()::timestamp, null)"
        )
        con.executemany(od_insert, [(*r, AM0207AC.name, "fixture-county") for r in _county_matrix_rows()])
        for totals in TOTALS:
            table = totals.name.split("_")[2]  # ostergotland_commuting_TAB3266_2004_2018.csv
            con.execute(
                f"insert into raw.commuting_totals (Region, Kon, ContentsCode, Tid, value, status, {LINEAGE_COLUMNS}) "
                "select region_code, kon, contents_code, year, value::double, null, 'fixture', ?, "
                "'fixture-totals', false, now()::timestamp, null from read_csv(?, all_varchar=true)",
                [table, str(totals)],
            )
        # SYNTHETIC (made up for this test, flagged): TAB1830 rows for Linköping 2024 and 0580 -> Luleå, so that
        # Luleå's 2024 jobs mix the real Norrbotten file with a synthetic flow.
        con.executemany(
            "insert into raw.commuting_flows (Bostadskommun, Arbetsstallekommun, Kon, ContentsCode, Tid, value, "
            f"status, {LINEAGE_COLUMNS}) values ('0580', ?, ?, '00000545', '2024', ?, null, 'fixture', 'TAB1830', "
            "'fixture-synthetic', true, now()::timestamp, null)",
            [("0580", "1", 40_000.0), ("0580", "2", 38_000.0), ("2580", "1", 3.0), ("2580", "2", 2.0)],
        )
    finally:
        con.close()
    result = invoke_dbt("build", settings, ["--select", MARTS], duckdb_path=str(path), indirect_selection="cautious")
    assert result.success, result.failures
    return path


def _sql(path: Path, query: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def test_linkoping_balance_comes_from_pe12_real(warehouse: Path) -> None:
    rows = _sql(
        warehouse,
        "select year, in_commuters, out_commuters, net_commuting, stayers, balance_basis, source_table, "
        "is_synthetic, synthetic_inputs from marts.mart_commuting_balance where municipality_code = '0580' "
        "order by year",
    )
    by_year = {r[0]: r[1:] for r in rows}
    assert by_year[2021] == (22_417, 11_792, 10_625, 69_141, "municipal_file_pe12", "PE12.px", False, None)
    assert [r[0] for r in rows] == list(range(1993, 2025))  # 1993 from TAB3267, 1994-2024 from PE12
    assert by_year[1993][4:7] == ("commuting_totals", "TAB3267", False)
    # 2024: PE12 is real, the TAB1830 rows for Linköping are synthetic: PE12 wins, the row stays real
    assert by_year[2024][:4] == (23_191, 12_415, 10_776, 71_816) and by_year[2024][4:7] == (
        "municipal_file_pe12",
        "PE12.px",
        False,
    )
    # jobs = live and work + in-commuters: 95,007 in 2024, the figure Linköping's FO05 (day population) gives
    assert _sql(
        warehouse,
        "select jobs, employed_residents from marts.mart_commuting_balance where municipality_code = '0580' "
        "and year = 2024",
    ) == [(95_007, 71_816 + 12_415)]
    # PE12 agrees with SCB's own totals except out-commuters in 1994 (PE12 5,848, TAB3267 5,964)
    differ = _sql(
        warehouse,
        "select b.year from marts.mart_commuting_balance b join marts.mart_commuting_totals_series t "
        "using (municipality_code, year) where municipality_code = '0580' "
        "and (b.out_commuters != t.out_commuters or b.stayers != t.stayers)",
    )
    assert differ == [(1994,)]


def test_other_municipalities_fall_back_to_real_totals(warehouse: Path) -> None:
    rows = _sql(
        warehouse,
        "select balance_basis, source_table, count(*), bool_or(is_synthetic), count(jobs) "
        "from marts.mart_commuting_balance where municipality_code like '05%' and municipality_code != '0580' "
        "group by all order by all",
    )
    assert rows == [
        ("commuting_totals", "TAB3266", 12 * 15, False, 0),
        ("commuting_totals", "TAB3267", 12 * 11, False, 0),
        ("commuting_totals", "TAB5839", 12 * 3, False, 0),
    ]


def test_linkoping_districts_from_pe12(warehouse: Path) -> None:
    whole = _sql(
        warehouse,
        "select in_from_other_municipalities, out_to_other_municipalities, net_other_municipalities, "
        "is_synthetic from marts.mart_commuting_districts "
        "where area_level = 'municipality' and area_code = '0580' and year = 2021",
    )
    assert whole == [(22_417, 11_792, 10_625, False)]
    districts = _sql(
        warehouse,
        "select count(distinct area_code), min(year), max(year) from marts.mart_commuting_districts "
        "where area_level = 'district' and municipality_code = '0580'",
    )
    assert districts == [(74, 1994, 2024)]
    # names as labelled in the file (seed pe12_districts), every area named
    assert _sql(
        warehouse,
        "select area_name from marts.mart_commuting_districts where area_code = '132' and year = 2024",
    ) == [("Vasastaden",)]
    assert _sql(warehouse, "select count(*) from marts.mart_commuting_districts where area_name is null") == [(0,)]
    # a "-" cell stays null: district 110 had no in-commuters from other municipalities in 2021
    assert _sql(
        warehouse,
        "select in_from_other_municipalities, out_to_other_municipalities from marts.mart_commuting_districts "
        "where area_code = '110' and year = 2021",
    ) == [(None, 1)]


def test_ostergotland_county_balance_from_the_real_matrix(warehouse: Path) -> None:
    (row,) = _sql(
        warehouse,
        "select employed_residents, jobs, live_and_work, in_commuters, out_commuters, net_commuting, "
        "self_containment_supply, self_containment_demand, largest_outflow_name, largest_outflow, "
        "is_synthetic, source_tables from marts.mart_county_commuting where county_code = '05' and year = 2018",
    )
    assert row[:6] == (218_734, 215_778, 205_186, 215_778 - 205_186, 218_734 - 205_186, 215_778 - 218_734)
    assert row[6] == pytest.approx(205_186 / 218_734) and row[7] == pytest.approx(205_186 / 215_778)
    assert row[8:] == ("Stockholm county", 4_476, False, AM0207AC.name)
    assert _sql(warehouse, "select count(*), sum(employed_residents) - sum(jobs) from marts.mart_county_commuting") == [
        (21, 0)
    ]
    top_out = _sql(
        warehouse,
        "select work_county_name, commuters from marts.fct_county_commuting_flows "
        "where residence_county_code = '05' and not is_stayer order by commuters desc limit 3",
    )
    assert top_out == [("Stockholm county", 4_476), ("Jönköping county", 2_302), ("Södermanland county", 1_733)]


def test_municipal_od_file_feeds_flows_real_first_and_a_mixed_row_is_flagged(warehouse: Path) -> None:
    assert _sql(
        warehouse,
        "select count(*), bool_or(is_synthetic), min(source_table), max(source_series) "
        "from marts.fct_commuting_flows where residence_code like '25%' and sex_code = 'total'",
    ) == [(196, False, NORRBOTTEN_DROP, "municipal_od_file")]
    # Luleå 2024: its balance comes from the OD matrix; its jobs include one made-up TAB1830 flow from Linköping
    (lulea,) = _sql(
        warehouse,
        "select balance_basis, is_synthetic, synthetic_inputs, source_tables from marts.mart_commuting_balance "
        "where municipality_code = '2580' and year = 2024",
    )
    assert lulea == ("od_matrix", True, "TAB1830", f"TAB1830,{NORRBOTTEN_DROP}")
    arvidsjaur = _sql(
        warehouse,
        "select is_synthetic, source_tables from marts.mart_commuting_balance "
        "where municipality_code = '2505' and year = 2024",
    )
    assert arvidsjaur == [(False, NORRBOTTEN_DROP)]
