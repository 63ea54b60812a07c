"""Issue 13 item 5: municipalities that did not exist yet are null (not SCB's 0) and group rows say so.

The seed is checked against SCB's boundary notes in the recorded TAB638 metadata; the marts are built by real dbt on
a small fixture warehouse (made-up numbers, flagged synthetic) whose results are checked by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest

from regionstat.settings import Settings
from warehouse.build import DBT_PROJECT_DIR, invoke_dbt
from warehouse.db import connect_writer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TAB638_META = PROJECT_ROOT / "reference" / "data" / "scb_v2_metadata" / "TAB638_metadata_sv.json"
SEED = DBT_PROJECT_DIR / "seeds" / "municipality_formation.csv"


def test_seed_lists_every_municipality_scb_notes_as_formed() -> None:
    """Every 'Ny regional indelning ... bildar en ny kommun benämnd X' note of TAB638's Region dimension is a row."""
    region = json.loads(TAB638_META.read_text(encoding="utf-8-sig"))["dimension"]["Region"]
    labels = region["category"]["label"]
    from_notes: dict[str, str] = {}
    for code, notes in region["category"]["note"].items():
        for note in notes:
            m = re.match(r"Ny regional indelning fr\.o\.m\. (\d{4}-\d{2}-\d{2})\.", note)
            # the note hangs on both the old and the new municipality; the new one is the one it names as new
            if m and re.search(rf"ny(?:a)? kommun(?:er)? benämnda? .*\b{re.escape(labels[code])}", note):
                from_notes[code] = m.group(1)
    con = duckdb.connect()
    seed = {
        code: (str(formed), first, note)
        for code, formed, first, note in con.execute(
            "select municipality_code, formed_on, first_population_year, scb_note from read_csv(?, all_varchar=true)",
            [str(SEED)],
        ).fetchall()
    }
    assert {code: formed for code, (formed, _, _) in seed.items()} == from_notes
    assert sorted(from_notes) == ["0140", "0330", "0461", "0488", "1443", "1814"]
    for code, (formed, first, note) in seed.items():
        assert int(first) == int(formed[:4]) - 1  # population on 31 Dec by the division of 1 January after
        assert note in region["category"]["note"][code]  # quoted verbatim


ORELAND = {  # county 18; made-up figures (flagged synthetic), chosen to be checked by hand
    "1880": (120_000, 126_000),  # Örebro: +5 %; its 1990 figure holds Lekeberg's territory
    "1814": (0, 7_000),  # Lekeberg, formed 1995-01-01: SCB publishes 0 for 1990
}
OTHER = (10_000, 9_000)  # each of the other ten: -10 %


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("formation") / "data"
    data.mkdir()
    path = data / "warehouse.duckdb"
    con = connect_writer(path)
    codes = [
        r[0]
        for r in con.execute(
            "select municipality_code from read_csv(?, all_varchar=true) where county_code = '18'",
            [str(DBT_PROJECT_DIR / "seeds" / "municipalities.csv")],
        ).fetchall()
    ]
    assert len(codes) == 12
    for code in codes:
        for year, value in zip(("1990", "2004"), ORELAND.get(code, OTHER), strict=True):
            con.execute(
                "insert into raw.population (Region, ContentsCode, Tid, value, status, _source_name, _source_table, "
                "_load_id, _synthetic, _loaded_at, _source_updated) values (?, 'BE0101N1', ?, ?, null, 'fixture', "
                "'TAB638', 'fixture-load', true, now()::timestamp, '2025-02-21T07:00:00Z')",
                [code, year, float(value)],
            )
    con.close()
    result = invoke_dbt(
        "build",
        Settings(data_dir=data),
        [
            "--select",
            "+mart_population_growth_by_category",
            "+mart_population_growth",
            "--exclude",
            "resource_type:test",
            "resource_type:unit_test",
            "--vars",
            '{"growth_periods": [{"start": 1990, "end": 2004}]}',
        ],
        duckdb_path=str(path),
    )
    assert result.success, result.failures
    return path


def _sql(path: Path, query: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_zero_before_formation_is_null_with_a_note(warehouse: Path) -> None:
    assert _sql(warehouse, "select year, population, series_note from staging.stg_scb__population "
                           "where region_code = '1814' order by year") == [
        (1990, None, "Lekeberg (1814) did not exist yet: formed 1995-01-01 from part of Örebro (1880), whose "
                     "figure includes its territory; SCB stores 0"),
        (2004, 7000.0, None),
    ]  # fmt: skip


def test_period_before_lekeberg_existed_excludes_it_and_counts_it(warehouse: Path) -> None:
    county = _sql(
        warehouse,
        "select members, members_excluded, members_excluded_note, population_start, population_end, "
        "round(growth_pct_pooled, 6), round(growth_pct_unweighted_mean, 6), is_synthetic "
        "from marts.mart_population_growth_by_category "
        "where group_type = 'county' and group_code = '18' and horizon_label = '1990-2004'",
    )
    # 11 members with data in both years: Örebro 120,000 -> 126,000 and ten times 10,000 -> 9,000. Lekeberg's 2004
    # population (7,000) is in the pooled end because Örebro, in the same county, held its territory in 1990:
    # (126,000 + 90,000 + 7,000 - 220,000) / 220,000 = +1.363636 %. Mean of the 11 rates: (5 - 10 * 10) / 11.
    assert county == [
        (
            11,
            1,
            "1814 Lekeberg: formed 1995-01-01 from 1880 Örebro, no population for 1990; its 2004 population is in "
            "the pooled end, as its territory was in 1880 at the start",
            220_000,
            223_000,
            round(100 * 3_000 / 220_000, 6),
            round((5 - 100) / 11, 6),
            True,
        )
    ]
    # a municipality row: its own figures, nothing excluded
    assert _sql(
        warehouse,
        "select members, members_excluded, members_excluded_note, population_start, population_end, "
        "growth_pct_pooled, growth_pct_unweighted_mean from marts.mart_population_growth_by_category "
        "where group_type = 'municipality' and group_code = '1880' and horizon_label = '1990-2004'",
    ) == [(1, 0, None, 120_000, 126_000, 5.0, 5.0)]
    # no municipality row for Lekeberg over a period it did not exist at the start of
    assert _sql(
        warehouse,
        "select count(*) from marts.mart_population_growth_by_category where group_code = '1814' "
        "and horizon_label = '1990-2004'",
    ) == [(0,)]


def test_area_growth_counts_the_member_formed_during_the_period(warehouse: Path) -> None:
    assert _sql(
        warehouse,
        "select population_start, population_end, members_with_data, members_expected, members_excluded, "
        "series_note, is_complete from marts.mart_population_growth "
        "where area_type = 'county' and area_code = '18' and horizon_label = '1990-2004'",
    ) == [
        (
            220_000,
            223_000,
            11,
            12,
            1,
            "start year 1990: Lekeberg (1814) not formed until 1995-01-01; its territory is in Örebro (1880)",
            True,
        )
    ]
