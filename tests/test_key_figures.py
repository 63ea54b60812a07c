"""mart_key_figures: Linköping kommun's KS indicators (ksi2242.px, an inbox file) next to regionstat's own series.

The seeds that name, unit and define the indicators and regions are checked against the PX file itself; the
peer-group checks show why Plus4 is not published. One module-scoped pipeline run (the bundled snapshot plus
ksi2242.px in the inbox) serves the checks on the mart and the report; the expected values are read from the PX
file independently of the pipeline (extract/px.py on the file, and literal numbers from its text).
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from extract.px import read_px
from tests.conftest import PROJECT_ROOT, REFERENCE_DATA

KSI = REFERENCE_DATA / "linkoping_kommun_px" / "ksi2242.px"
SEEDS = PROJECT_ROOT / "dbt_project" / "seeds"


@pytest.fixture(scope="module")
def ksi() -> pd.DataFrame:
    """The PX file as a long table (codes), read directly with the PX reader, not through the pipeline."""
    return read_px(KSI.read_bytes(), name=str(KSI)).to_arrow(use_codes=True).to_pandas()


def _seed(name: str) -> list[dict[str, str]]:
    with open(SEEDS / f"{name}.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_seeds_name_every_indicator_and_region_as_the_file_does() -> None:
    px = read_px(KSI.read_bytes(), name=str(KSI))
    by_name = {v.name: v for v in px.variables}
    indicators = {r["indicator_code"]: r for r in _seed("key_figure_indicators") if r["source"] == "ksi2242"}
    assert {c: r["indicator_name_sv"] for c, r in indicators.items()} == dict(
        zip(by_name["indikator"].codes, by_name["indikator"].values, strict=True)
    )
    assert all(r["unit"] and r["indicator_name"] and r["definition"] for r in indicators.values())
    regions = {r["region_code"]: r["region_name_sv"] for r in _seed("key_figure_regions")}
    assert regions == dict(zip(by_name["kommun"].codes, by_name["kommun"].values, strict=True))


def test_peer_groups_are_means_of_their_members_except_plus4(ksi: pd.DataFrame) -> None:
    """Plus4's values in the file are the sum of its four members divided by five: it stays unpublished."""
    pop = ksi[ksi["indikator"] == "Befolkning"].pivot_table(index=["tid", "kvartal"], columns="kommun", values="value")
    regions = {r["region_code"]: r for r in _seed("key_figure_regions")}
    for code in ("2700", "2701", "2703", "2707", "2709"):
        members = regions[code]["members"].split()
        mean = pop[members].mean(axis=1)
        agrees = (mean - pop[code]).abs() <= 0.5
        assert agrees.all() == (regions[code]["published"] == "true"), code
    plus4 = pop[regions["2709"]["members"].split()].sum(axis=1) / 5
    assert ((plus4 - pop["2709"]).abs() <= 0.5).all()
    # the county without Linköping is the county minus Linköping
    assert ((pop["05"] - pop["0580"] - pop["3105"]).abs() < 0.5).all()


@pytest.fixture(scope="module")
def run_dir(run_with_inbox: Path) -> Path:
    return run_with_inbox


def _mart(run_dir: Path, where: str = "true") -> pd.DataFrame:
    con = duckdb.connect(str(run_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"select * from marts.mart_key_figures where {where}").df()
    finally:
        con.close()


def test_mart_compares_linkoping_norrkoping_county_sweden_and_peers(run_dir: Path) -> None:
    latest = _mart(run_dir, "source_table = 'ksi2242' and period = '2024Q4'")
    for indicator in ("Befolkning", "Syssgrad", "Pendlingsnetto", "Arbetlös16-65", "PåbörjadTot"):
        regions = set(latest.loc[latest["indicator_code"] == indicator, "region_code"])
        assert {"0580", "0581", "05", "00", "2700", "2707", "3105"} <= regions, indicator
    assert "2709" not in set(latest["region_code"])  # Plus4 is not published
    kinds = latest.drop_duplicates("region_code").set_index("region_code")["region_kind"].to_dict()
    assert (kinds["0580"], kinds["05"], kinds["00"], kinds["2700"]) == (
        "municipality",
        "county",
        "country",
        "peer group",
    )
    units = latest.drop_duplicates("indicator_code").set_index("indicator_code")["unit"].to_dict()
    assert (units["Befolkning"], units["Syssgrad"], units["GångerUtrikes"]) == ("persons", "per cent", "times")
    assert not latest["is_synthetic"].any()
    assert set(latest["source_tables"]) == {"ksi2242.px"}
    assert set(latest["source_updated"]) == {"ksi2242.px=2026-03-12T00:00:00Z"}  # the file's LAST-UPDATED="20260312"


def test_mart_values_equal_the_px_file(run_dir: Path, ksi: pd.DataFrame) -> None:
    mart = _mart(run_dir, "source_table = 'ksi2242'")
    # literal cells of the file (2024 Q4): Linköping's population and employment rate, Norrköping's net commuting
    cell = mart.set_index(["indicator_code", "region_code", "period"])["value"]
    assert cell[("Befolkning", "0580", "2024Q4")] == 168_035
    assert cell[("Syssgrad", "0580", "2024Q4")] == 76.7
    assert cell[("Pendlingsnetto", "0581", "2024Q4")] == 236
    # every published number of the file, and no other
    published = ksi[(ksi["kommun"] != "2709") & (ksi["value"].notna() | (ksi["status"] != ".."))]
    expected = published.assign(period=published["tid"] + published["kvartal"]).set_index(
        ["indikator", "kommun", "period"]
    )["value"]
    got = cell.rename_axis(["indikator", "kommun", "period"]).sort_index()
    assert len(got) == len(expected)
    pd.testing.assert_series_equal(got, expected.sort_index(), check_names=False)


def test_ksi_population_agrees_with_fct_population(run_dir: Path) -> None:
    """ksi2242 Befolkning in Q4 is the population on 31 December; from 2025 SCB's figure carries Cell Key Method
    noise (TAB5557), and Linköping's differs by one person (168,713 in the file, 168,714 in TAB5557)."""
    both = _mart(
        run_dir,
        "region_code in ('0580', '05') and ((indicator_code = 'Befolkning' and quarter = 'Q4') "
        "or indicator_code = 'population')",
    ).pivot_table(index=["region_code", "year"], columns="indicator_code", values="value")
    both = both.dropna()
    assert both.loc[("0580", 2024), "population"] == both.loc[("0580", 2024), "Befolkning"] == 168_035
    exact = both[both.index.get_level_values("year") <= 2024]
    assert len(exact) >= 2 * 15  # 2010-2024 for Linköping and the county
    assert (exact["population"] == exact["Befolkning"]).all()
    assert (both.loc[("0580", 2025), "population"], both.loc[("0580", 2025), "Befolkning"]) == (168_714, 168_713)


def test_report_shows_the_key_figures_table(run_dir: Path) -> None:
    html = (run_dir / "reports" / "index.html").read_text(encoding="utf-8")
    start = html.index('id="key_figures"')
    section = html[start : html.index("</section>", start)]
    assert "Employment rate 20-64" in section and "Norrköping" in section
    assert "168\u2009713" in section  # Linköping's population, 2025 Q4, as in the file
    assert "Updated upstream</b> ksi2242.px 2026-03-12" in section  # the vintage the PX file states
