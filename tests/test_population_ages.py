"""Population by age and sex: the real 2024 TAB638 ages from the bundled snapshot up to the age-structure marts.

One warehouse for the module: the session's run on the bundled snapshot (``built_data``: every source extracted,
validated, loaded; dbt builds every mart with its tests). Expected figures come from SCB's published totals and
from the reference CSV, read here on its own with the csv module and turned into median ages and dependency ratios
by hand.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import requests

from expectations import checks
from regionstat.settings import Settings
from tests.conftest import REFERENCE_DATA
from warehouse.build import run_dbt

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("population_ages")]

AGE_CSV = REFERENCE_DATA / "ostergotland_age_2024" / "ostergotland_population_age_sex_2024_TAB638.csv"


@pytest.fixture(scope="module")
def warehouse(built_data: Path) -> Path:
    """The session's run on the bundled snapshot (conftest.py): its population sources landed, validated and
    loaded, the age marts built with every dbt test. Read-only; a test that changes it works on a copy."""
    return built_data


def _sql(data: Path, query: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def _reference_ages(regions: set[str]) -> dict[int, float]:
    """Inhabitants by single year of age (both sexes; 100+ as 100) summed over `regions`, from the CSV."""
    by_age: dict[int, float] = defaultdict(float)
    with AGE_CSV.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["region_code"] in regions and row["sex"] == "total" and row["year"] == "2024":
                by_age[int(row["age"].rstrip("+"))] += float(row["population"])
    return dict(by_age)


def _median_age(by_age: dict[int, float]) -> float:
    """Age a covers [a, a+1); the median lies where the running count passes half of everyone."""
    half = sum(by_age.values()) / 2
    below = 0.0
    for age in sorted(by_age):
        if below + by_age[age] >= half:
            return age + (half - below) / by_age[age]
        below += by_age[age]
    raise AssertionError("no median")


def _dependency_ratio(by_age: dict[int, float]) -> float:
    young = sum(v for a, v in by_age.items() if a <= 19)
    old = sum(v for a, v in by_age.items() if a >= 65)
    working = sum(v for a, v in by_age.items() if 20 <= a <= 64)
    return (young + old) / working


def _json(response: requests.Response) -> dict:
    response.raise_for_status()
    return json.loads(response.content.decode("utf-8-sig"))  # SCB's bodies start with a BOM


def _all_municipalities() -> set[str]:
    with AGE_CSV.open(encoding="utf-8", newline="") as fh:
        return {row["region_code"] for row in csv.DictReader(fh)}


def test_snapshot_serves_real_2024_ages_and_nothing_else(snapshot_server) -> None:
    query = {
        "valueCodes[Region]": "0580",
        "valueCodes[Alder]": "range(0,100+)",
        "valueCodes[Kon]": "1,2",
        "valueCodes[ContentsCode]": "BE0101N1",
        "valueCodes[Tid]": "2023,2024",
    }
    doc = _json(requests.get(f"{snapshot_server.url}/tables/TAB638/data", params=query, timeout=30))
    assert doc["id"] == ["Region", "Alder", "Kon", "ContentsCode", "Tid"]  # civil status summed away
    values = doc["value"]  # C order: Alder x Kon x Tid (2023, 2024)
    men_2024 = [values[a * 4 + 0 * 2 + 1] for a in range(101)]
    women_2024 = [values[a * 4 + 1 * 2 + 1] for a in range(101)]
    assert sum(men_2024) == 85_509 and sum(women_2024) == 82_526
    assert all(values[a * 4 + k * 2] is None for a in range(101) for k in range(2))  # 2023 ages: absent
    # the eliminated total still comes from the total series, not from the age cells
    total = _json(
        requests.get(
            f"{snapshot_server.url}/tables/TAB638/data",
            params={"valueCodes[Region]": "0580", "valueCodes[ContentsCode]": "BE0101N1", "valueCodes[Tid]": "2023"},
            timeout=30,
        )
    )
    assert total["value"] == [167_404]


def test_linkoping_and_county_totals_by_sex(warehouse: Path) -> None:
    rows = _sql(
        warehouse,
        "select area_code, population_men, population_women, population_total, is_complete "
        "from marts.mart_population_age_structure where year = 2024 and area_code in ('0580', '05') order by 1",
    )
    assert rows == [("05", 239_153, 233_293, 472_446, True), ("0580", 85_509, 82_526, 168_035, True)]
    groups = _sql(
        warehouse,
        "select sex, sum(population), count(*), sum(share_of_population_pct) from marts.mart_population_age_groups "
        "where area_code = '0580' and year = 2024 group by sex order by sex",
    )
    assert [(s, n, c) for s, n, c, _ in groups] == [
        ("men", 85_509, 21),
        ("total", 168_035, 21),
        ("women", 82_526, 21),
    ]
    assert groups[1][3] == pytest.approx(100.0)


def test_median_age_and_dependency_ratio_equal_a_hand_computation(warehouse: Path) -> None:
    cases = {
        ("municipality", "0580"): {"0580"},
        ("municipality", "0512"): {"0512"},
        ("county", "05"): _all_municipalities(),
        ("study_area", "study_area"): {"0580", "0583", "0586", "0513", "0561"},  # catalogue study_area
    }
    for (area_type, area_code), regions in cases.items():
        by_age = _reference_ages(regions)
        (row,) = _sql(
            warehouse,
            "select median_age, dependency_ratio, share_65_plus_pct, share_80_plus_pct "
            "from marts.mart_population_age_structure where area_type = ? and area_code = ? and year = 2024",
            [area_type, area_code],
        )
        total = sum(by_age.values())
        assert row[0] == pytest.approx(_median_age(by_age), abs=1e-9), area_code
        assert row[1] == pytest.approx(_dependency_ratio(by_age), abs=1e-12), area_code
        assert row[2] == pytest.approx(100 * sum(v for a, v in by_age.items() if a >= 65) / total), area_code
        assert row[3] == pytest.approx(100 * sum(v for a, v in by_age.items() if a >= 80) / total), area_code
    # Linköping 2024: 82,875 are younger than 37 and 85,104 younger than 38; half of 168,035 is 84,017.5
    linkoping = "select median_age from marts.mart_population_age_structure where area_code = '0580'"
    assert _sql(warehouse, linkoping)[0][0] == pytest.approx(37 + (84_017.5 - 82_875) / (85_104 - 82_875))


def test_age_marts_are_real_and_cite_tab638(warehouse: Path) -> None:
    for mart in ("mart_population_age_groups", "mart_population_age_structure"):
        provenance = f"select distinct is_synthetic, synthetic_inputs, source_tables, source_updated from marts.{mart}"
        assert _sql(warehouse, provenance) == [(False, None, "TAB638", "TAB638=2025-02-21T07:00:00Z")], mart
    # only 2024 exists offline: no earlier year to compare with
    assert _sql(
        warehouse,
        "select count(*), count(compare_year), count(population_change) from marts.mart_population_age_structure",
    ) == [(15, 0, 0)]


def test_a_missing_member_nulls_the_county_and_changes_need_both_years(warehouse: Path, tmp_path: Path) -> None:
    """On a copy of the warehouse (test fixture, never published): a made-up 2023 with one more person in every
    age x sex cell, and Ydre without 2024 ages. The county's 2024 figures are null with a reason (never 12
    municipalities' sum, never a change); Linköping's 2024 row compares with 2023."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(warehouse / "warehouse.duckdb", data / "warehouse.duckdb")
    con = duckdb.connect(str(data / "warehouse.duckdb"))
    con.execute(
        "insert into raw.population_by_age by name "
        "select * replace ('2023' as Tid, value + 1 as value) from raw.population_by_age"
    )
    con.execute("delete from raw.population_by_age where Region = '0512' and Tid = '2024'")
    con.close()
    run_dbt(settings=Settings(data_dir=data), select="int_population__age_by_area+", indirect_selection="cautious")
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        county = con.execute(
            "select year, population_total, median_age, dependency_ratio, is_complete, members_with_data, "
            "members_expected, completeness_note, compare_year from marts.mart_population_age_structure "
            "where area_code = '05' order by year"
        ).fetchall()
        groups = con.execute(
            "select count(*), count(population) from marts.mart_population_age_groups "
            "where area_code = '05' and year = 2024"
        ).fetchall()
        linkoping = con.execute(
            "select population_total, compare_year, population_change, median_age_change, dependency_ratio_change "
            "from marts.mart_population_age_structure where area_code = '0580' and year = 2024"
        ).fetchall()
    finally:
        con.close()
    note = "age structure unknown: 12 of 13 member municipalities have complete age data"
    assert county == [
        (2023, 472_446 + 13 * 202, pytest.approx(county[0][2]), pytest.approx(county[0][3]), True, 13, 13, None, None),
        (2024, None, None, None, False, 12, 13, note, None),
    ]
    assert groups == [(63, 0)]
    ages_2024 = _reference_ages({"0580"})
    ages_2023 = {a: v + 2 for a, v in ages_2024.items()}  # one man and one woman more at every age
    ((total, compare_year, change, median_change, ratio_change),) = linkoping
    assert (total, compare_year, change) == (168_035, 2023, -202)
    assert median_change == pytest.approx(_median_age(ages_2024) - _median_age(ages_2023), abs=1e-9)
    assert ratio_change == pytest.approx(_dependency_ratio(ages_2024) - _dependency_ratio(ages_2023), abs=1e-12)


def test_validation_checks_that_ages_add_up_to_the_total(warehouse: Path) -> None:
    """The age batch's suite compares it with TAB638's total batch: it passed, and one person more fails it."""
    folder = warehouse / "landing" / "population_by_age" / "population_by_age_tab638"
    (results,) = folder.glob("*.validation.parquet")
    rows = pd.read_parquet(results)
    check = rows[rows["expectation"] == "expect_age_cells_sum_to_population_total"]
    assert list(check["success"]) == [True] and list(check["observed_value"]) == ["13 region-years add up"]
    (batch,) = (p for p in folder.glob("*.parquet") if not p.name.endswith(".validation.parquet"))
    cells = pd.read_parquet(batch)
    cells.loc[(cells["Region"] == "0512") & (cells["Alder"] == "40") & (cells["Kon"] == "2"), "value"] += 1
    result = checks.age_sums_match_population(cells, landing_dir=warehouse / "landing")
    assert not result.success and result.severity == "fail"
    assert (
        "1 region-year(s) whose age cells do not add up" in result.message
        and "0512 2024 3627 != 3626" in result.message
    )
