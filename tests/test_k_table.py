"""A county's own K-table from one config file and one command (issue 13).

The K1/K2/K3 table of the regional-development slides for Jönköping (06) and Örebro (18), 2003 -> 2022: county
and K1 pooled growth, K2/K3 also as the unweighted mean of their members. Nothing tracked is edited: a
``regionstat.toml`` names the counties, the period and a K2 membership CSV; ``regionstat run --table
population_tab638`` fetches TAB638 from a snapshot server serving a fixture, and builds what population allows.

The fixture is SYNTHETIC (made-up round numbers; reference/data has no municipal populations outside
Östergötland): its TAB638 metadata says so (``extension.regionstat.synthetic``), so the batch and every mart row
built from it are flagged ``is_synthetic``. Only the two years 2003 and 2022 are served.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regionstat.cli.main import main
from tools.snapshot import TABLES_DIR

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pipeline")]

# SYNTHETIC populations (2003, 2022); each county row is the sum of its municipalities, as in TAB638.
JONKOPING = {
    "0604": (6000, 6600),  # Aneby
    "0617": (9000, 9900),  # Gnosjö
    "0642": (7000, 7700),  # Mullsjö
    "0643": (10000, 12000),  # Habo
    "0662": (29000, 29000),  # Gislaved
    "0665": (12000, 13200),  # Vaggeryd
    "0680": (100000, 130000),  # Jönköping: the largest, K1
    "0682": (30000, 31500),  # Nässjö
    "0683": (32000, 35200),  # Värnamo
    "0684": (11000, 10450),  # Sävsjö
    "0685": (27000, 27000),  # Vetlanda
    "0686": (17000, 17000),  # Eksjö
    "0687": (18000, 18900),  # Tranås
}
OREBRO = {
    "1814": (5000, 6000),  # Lekeberg
    "1860": (6000, 5400),  # Laxå
    "1861": (15000, 15750),  # Hallsberg
    "1862": (10000, 9500),  # Degerfors
    "1863": (8000, 7200),  # Hällefors
    "1864": (5000, 4500),  # Ljusnarsberg
    "1880": (120000, 150000),  # Örebro: the largest, K1
    "1881": (20000, 22000),  # Kumla
    "1882": (11000, 11000),  # Askersund
    "1883": (28000, 29400),  # Karlskoga
    "1884": (10000, 10500),  # Nora
    "1885": (24000, 24000),  # Lindesberg
}
# The user's own K2 list (the rest of each county is K3; K1 is the largest municipality) ...
K2 = {"0642", "0643", "0665", "0682", "1814", "1861", "1881", "1884"}
# ... except Aneby, left out of the membership file: its category comes from the user's travel-time file
# (35 minutes to Jönköping <= k2_max_minutes 45: K2), which extends the bundled seed.
BY_TRAVEL_TIME = {"0604": 35}


def write_fixture(tables: Path) -> None:
    """TAB638 as the snapshot serves it (SCB's metadata), with the fixture's facts and marked SYNTHETIC."""
    table = tables / "TAB638"
    table.mkdir(parents=True)
    for name in ("metadata.json", "metadata_en.json"):
        meta = json.loads((TABLES_DIR / "TAB638" / name).read_text(encoding="utf-8"))
        meta["label"] = "SYNTHETIC: " + meta["label"]
        meta.setdefault("extension", {})["regionstat"] = {
            "synthetic": True,
            "note": "SYNTHETIC: test fixture for the K-table of counties 06 and 18, not SCB data",
        }
        (table / name).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    rows = []
    for county, members in (("06", JONKOPING), ("18", OREBRO)):
        for i, year in enumerate(("2003", "2022")):
            rows += [(code, year, float(pops[i])) for code, pops in members.items()]
            rows.append((county, year, float(sum(p[i] for p in members.values()))))
    # the region set of two counties asks for Sweden too; the snapshot refuses a region set it does not cover
    for i, year in enumerate(("2003", "2022")):
        rows.append(("00", year, float(sum(p[i] for m in (JONKOPING, OREBRO) for p in m.values()))))
    pq.write_table(
        pa.table(
            {
                "Region": [r for r, _, _ in rows],
                "ContentsCode": ["BE0101N1"] * len(rows),
                "Tid": [y for _, y, _ in rows],
                "value": [v for _, _, v in rows],
                "status": pa.array([None] * len(rows), pa.string()),
            }
        ),
        table / "facts.parquet",
    )
    (table / "provenance.json").write_text(
        json.dumps({"table": "TAB638", "synthetic": True, "facts": ["made-up round numbers for a test"]}),
        encoding="utf-8",
    )
    index = json.loads((TABLES_DIR / "index.json").read_text(encoding="utf-8"))
    index["tables"] = [
        {**t, "label": "SYNTHETIC: " + t["label"], "synthetic": True, "size": len(rows), "factRows": len(rows)}
        for t in index["tables"]
        if t["id"] == "TAB638"
    ]
    (tables / "index.json").write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")


@pytest.fixture(scope="module")
def k_table_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One config file, one command: the pipeline for counties 06 and 18 on population alone."""
    from tools.snapshot.server import SnapshotServer

    root = tmp_path_factory.mktemp("k_table")
    write_fixture(root / "tables")
    membership = ["municipality_code,category"] + [
        f"{code},{'K2' if code in K2 else 'K3'}"
        for code in (*JONKOPING, *OREBRO)
        if code not in ("0680", "1880", *BY_TRAVEL_TIME)
    ]
    (root / "k2.csv").write_text("\n".join(membership) + "\n", encoding="utf-8")
    (root / "minutes.csv").write_text(
        "municipality_code,k1_municipality_code,minutes_by_car,source\n"
        + "".join(f"{code},0680,{minutes},test fixture\n" for code, minutes in BY_TRAVEL_TIME.items()),
        encoding="utf-8",
    )
    (root / "regionstat.toml").write_text(
        'tables = ["population_tab638"]\n\n[seeds]\nk2_membership = "k2.csv"\ntravel_time = "minutes.csv"\n',
        encoding="utf-8",
    )
    data = root / "data"
    mp = pytest.MonkeyPatch()
    mp.setenv("REGIONSTAT_DATA_DIR", str(data))
    mp.delenv("REGIONSTAT_API_URL", raising=False)
    mp.delenv("REGIONSTAT_REGION_SET", raising=False)
    mp.chdir(root)  # regionstat.toml is found in the working directory
    out = io.StringIO()
    try:
        with SnapshotServer(tables_dir=root / "tables") as server, contextlib.redirect_stdout(out):
            code = main(["run", "--api-url", server.url, "--counties", "06,18", "--period", "2003:2022", "--no-docs"])
    finally:
        mp.undo()
    assert code == 0, out.getvalue()
    return data, out.getvalue()


def k_rows(data: Path) -> dict[tuple[str, str, str], tuple]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            """
            select county_code, group_type, group_code, members, population_start, population_end,
                   growth_pct_pooled, growth_pct_unweighted_mean, category_basis, is_synthetic
            from marts.mart_population_growth_by_category
            where horizon_label = '2003-2022' and group_type in ('county', 'category')
            """
        ).fetchall()
    finally:
        con.close()
    return {(r[0], r[1], r[2]): r[3:] for r in rows}


def test_k_table_for_two_counties_from_a_config_file_and_flags(k_table_run: tuple[Path, str]) -> None:
    got = k_rows(k_table_run[0])
    assert sorted({k[0] for k in got}) == ["06", "18"]
    # Hand computation (pooled = (sum 2022 - sum 2003) / sum 2003; K2/K3 also the mean of the members' %):
    # 06 county: 308000 -> 348450, +13.1331 %. K1 Jönköping 100000 -> 130000, +30 %.
    # 06 K2 (Aneby +10 by travel time, Mullsjö +10, Habo +20, Vaggeryd +10, Nässjö +5): 65000 -> 71000,
    #   pooled +9.2308 %, mean 55 / 5 = +11 %.
    # 06 K3 (Gnosjö +10, Gislaved 0, Värnamo +10, Sävsjö -5, Vetlanda 0, Eksjö 0, Tranås +5):
    #   143000 -> 147450, pooled +3.1119 %, mean 20 / 7 = +2.8571 %.
    # 18 county: 262000 -> 295250, +12.6908 %. K1 Örebro 120000 -> 150000, +25 %.
    # 18 K2 (Lekeberg +20, Hallsberg +5, Kumla +10, Nora +5): 50000 -> 54250, pooled +8.5 %, mean +10 %.
    # 18 K3 (Laxå -10, Degerfors -5, Hällefors -10, Ljusnarsberg -10, Askersund 0, Karlskoga +5, Lindesberg 0):
    #   92000 -> 91000, pooled -1.0870 %, mean -4.2857 %.
    expected = {
        ("06", "county", "06"): (13, 308000, 348450, 13.1331, None),
        ("06", "category", "K1"): (1, 100000, 130000, 30.0, 30.0),
        ("06", "category", "K2"): (5, 65000, 71000, 9.2308, 11.0),
        ("06", "category", "K3"): (7, 143000, 147450, 3.1119, 2.8571),
        ("18", "county", "18"): (12, 262000, 295250, 12.6908, None),
        ("18", "category", "K1"): (1, 120000, 150000, 25.0, 25.0),
        ("18", "category", "K2"): (4, 50000, 54250, 8.5, 10.0),
        ("18", "category", "K3"): (7, 92000, 91000, -1.0870, -4.2857),
    }
    assert set(got) == set(expected)
    for key, (members, start, end, pooled, mean) in expected.items():
        row = got[key]
        assert row[:3] == (members, start, end), key
        assert row[3] == pytest.approx(pooled, abs=5e-5), key
        if mean is not None:
            assert row[4] == pytest.approx(mean, abs=5e-5), key
        assert row[6] is True, f"{key}: built from the SYNTHETIC fixture, must say so"
    # K2/K3 rest on the user's file, K1 on the largest population
    assert got[("06", "category", "K2")][5] == "travel_time, user_membership"
    assert got[("06", "category", "K3")][5] == "user_membership"
    assert got[("18", "category", "K1")][5] == "largest_population"


def test_only_population_was_fetched_and_the_other_marts_are_skipped_with_a_note(
    k_table_run: tuple[Path, str],
) -> None:
    data, out = k_table_run
    assert "region set counties:06,18" in out
    assert "tables: population_tab638\n" in out
    assert "skipped mart_top_sectors: needs raw.employment_by_sector (not loaded)" in out
    assert "skipped mart_commuting_balance: needs raw.commuting_flows" in out
    published = sorted(p.stem for p in (data / "marts").glob("*.parquet"))
    # dim_municipalities too: land area is an optional input of it (null without TAB628)
    # and the marts that read only inbox files (built empty until a file arrives, as the Airflow transform does)
    assert published == [
        "dim_municipalities",
        "fct_county_commuting_flows",
        "fct_population",
        "mart_commuting_districts",
        "mart_county_commuting",
        "mart_population_growth",
        "mart_population_growth_by_category",
    ]


def test_report_has_a_section_per_county_of_the_region_set(k_table_run: tuple[Path, str]) -> None:
    html = (k_table_run[0] / "reports" / "index.html").read_text(encoding="utf-8")
    assert "Regional statistics: Jönköping and Örebro" in html
    assert "Jönköpings län (county 06, 13 municipalities), Örebro län (county 18, 12 municipalities)" in html
    for county in ("06", "18"):
        assert f'<section class="sec" id="c{county}-population">' in html
    assert html.index('id="c06-population"') < html.index('id="c18-population"')
    # the K-table block is shown (not "not available") for both counties, labelled synthetic
    population = html[html.index('id="c06-population"') : html.index('id="c06-sectors"')]
    assert "not available" not in population.split('id="c06-population-2"')[0]
    assert "SYNTHETIC" in population
    assert "user membership" in population
    assert "Aneby 0604 K2 travel time 35" in " ".join(re.sub(r"<[^>]+>", " ", population).split())
