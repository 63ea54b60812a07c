"""Localities over time: one catalogue entry per delineation year, the offline snapshot's labelled-synthetic 2018
stand-in, the locality key across code changes, and growth per locality in the marts.

The mart checks share the session's one pipeline run (``run_with_inbox`` in conftest.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb

from extract.px import read_px
from regionstat.catalogue import load_catalogue
from tests.conftest import PROJECT_ROOT, REFERENCE_DATA
from tools.snapshot.build import REF, SYNTHETIC_DELINEATION_TABLE, read_csv, synthetic_delineation

TABLES = PROJECT_ROOT / "tools" / "snapshot" / "tables"


def _renumbered() -> dict[str, str]:
    rows = sorted(read_csv(REF / "tatorter_2023_scb_subset.csv"), key=lambda r: r["tatort_code"])
    return synthetic_delineation(rows)[1]


def test_one_entry_per_delineation_and_a_labelled_synthetic_stand_in() -> None:
    sources = {s.name: s for s in load_catalogue().sources if s.raw_table == "localities"}
    assert {n: s.selection["Tid"] for n, s in sources.items()} == {"localities": ["2023"], "localities_2018": ["2018"]}
    assert sources["localities_2018"].table == sources["localities"].table == "LandarealTatortN"  # live: SCB's
    assert sources["localities_2018"].offline_table == SYNTHETIC_DELINEATION_TABLE
    meta = json.loads((TABLES / SYNTHETIC_DELINEATION_TABLE / "metadata.json").read_text(encoding="utf-8"))
    assert meta["label"].startswith("SYNTHETIC") and meta["extension"]["regionstat"]["synthetic"] is True
    assert list(meta["dimension"]["Tid"]["category"]["index"]) == ["2018"]


def test_code_change_seed_follows_the_snapshot() -> None:
    """The seed's synthetic renumberings are exactly the ones the snapshot builder makes up."""
    with open(PROJECT_ROOT / "dbt_project" / "seeds" / "locality_code_changes.csv", encoding="utf-8") as fh:
        seed = [r for r in csv.DictReader(fh) if r["is_synthetic"] == "true"]
    assert {r["from_code"]: r["to_code"] for r in seed} == _renumbered()
    assert {(r["from_year"], r["to_year"], r["change"]) for r in seed} == {("2018", "2023", "renumbered")}


def _sql(data: Path, query: str) -> list[tuple]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_growth_follows_the_locality_across_a_code_change(run_with_inbox: Path) -> None:
    old, new = next((o, n) for o, n in sorted(_renumbered().items()) if o.startswith("0580"))
    rows = _sql(
        run_with_inbox,
        "select locality_code, year, population, previous_locality_code, previous_population, growth_pct, "
        f"is_synthetic, synthetic_inputs from marts.mart_locality_profile where locality_key = '{new}' order by year",
    )
    (c18, y18, p18, _, _, _, syn18, _), (c23, y23, p23, prev_code, prev_pop, growth, syn23, inputs) = rows
    assert (c18, y18, c23, y23, prev_code, prev_pop) == (old, 2018, new, 2023, old, p18)
    assert abs(growth - 100 * (p23 - p18) / p18) < 1e-9
    assert syn18 and syn23 and inputs == SYNTHETIC_DELINEATION_TABLE  # growth rests on the made-up year
    # the real 2023 population is SCB's, as in the reference file
    subset = {r["tatort_code"]: float(r["population_2023"]) for r in read_csv(REF / "tatorter_2023_scb_subset.csv")}
    assert p23 == subset[new]


def test_typology_has_growth_classes_and_one_row_per_locality(run_with_inbox: Path) -> None:
    classes = dict(
        _sql(
            run_with_inbox,
            "select growth_class, count(*) from marts.mart_locality_typology where municipality_code like '05%' "
            "group by growth_class",
        )
    )
    assert sum(classes.values()) == 81  # the county's 81 tätorter of 2023, a renumbered one counted once
    assert classes.get("G0") == 2  # the two that did not exist in the (synthetic) 2018 delineation
    assert classes.get("G1", 0) + classes.get("G2", 0) + classes.get("G3", 0) == 79
    renumbered_2018 = ", ".join(f"'{c}'" for c in _renumbered())
    assert _sql(
        run_with_inbox,
        f"select count(*) from marts.dim_localities where locality_code in ({renumbered_2018})",
    ) == [(0,)]


def test_district_seed_pairs_each_locality_with_its_namesake_district() -> None:
    """seeds/locality_districts.csv is exactly the same-name matches of PE12's districts and Linköping's tätorter."""
    px = read_px((REFERENCE_DATA / "linkoping_kommun_px" / "PE12.px").read_bytes(), name="PE12.px")
    district = next(v for v in px.variables if v.name == "stadsdel")
    by_name = dict(zip(district.values, district.codes, strict=True))
    subset = read_csv(REF / "tatorter_2023_scb_subset.csv")
    expected = {
        r["tatort_code"]: by_name[r["tatort_name"]]
        for r in subset
        if r["kommun_code"] == "0580" and r["tatort_name"] in by_name
    }
    with open(PROJECT_ROOT / "dbt_project" / "seeds" / "locality_districts.csv", encoding="utf-8") as fh:
        seed = {r["locality_code"]: r["district_code"] for r in csv.DictReader(fh)}
    assert seed == expected and len(seed) == 17  # every Linköping tätort but the city itself


def test_function_class_rests_on_the_localitys_own_districts(run_with_inbox: Path) -> None:
    """Brokind (583 people) was an 'employment centre' by Linköping's job ratio; by its own district it is not."""
    px = read_px((REFERENCE_DATA / "linkoping_kommun_px" / "PE12.px").read_bytes(), name="PE12.px")
    cells = px.to_arrow(use_codes=True).to_pandas()
    brokind = cells[(cells["stadsdel"] == "531") & (cells["tid"] == "2023")].set_index(["typ", "område"])["value"]
    live_and_work = brokind[("In", "Lika")]
    expected = (brokind[("In", "Tot")] + live_and_work) / (brokind[("Ut", "Tot")] + live_and_work)
    rows = dict(
        (r[0], r[1:])
        for r in _sql(
            run_with_inbox,
            "select locality_name, locality_job_ratio, function_basis, function_class, locality_function_year, "
            "source_tables from marts.mart_locality_typology where municipality_code = '0580'",
        )
    )
    ratio, basis, klass, year, tables = rows["Brokind"]
    assert (basis, year) == ("locality", 2023) and abs(ratio - expected) < 1e-12
    assert klass == "F1" and ratio < 0.85 and "PE12.px" in tables.split(",")
    assert rows["Linköping"][1] == "municipality" and rows["Linköping"][0] is None  # no district of its own
    assert sum(1 for r in rows.values() if r[1] == "locality") == 17
