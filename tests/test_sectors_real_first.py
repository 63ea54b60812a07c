"""Business-sector marts real first: SCB RAMS 2018 by county and Linköping's FO05 beat synthetic TAB3204.

One warehouse for the module: synthetic TAB3204 from the bundled snapshot (HTTP), Linköping's real FO05.px through
the inbox, validation and loader, and raw.regional_employment filled per the shared contract from the real RAMS
CSV exports (reference/data/county_rams_2018). One dbt build of the business marts. The expected figures are
computed here from the CSV files themselves, never read back from the marts.
"""

from __future__ import annotations

import csv
import shutil
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from expectations.validate import validate_pending
from extract.pipeline import extract_inbox, extract_source
from regionstat.settings import Settings
from warehouse.build import invoke_dbt
from warehouse.db import connect_writer
from warehouse.load import load_validated

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("sectors_real_first")]

REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "data"
RAMS_DIR = REFERENCE / "county_rams_2018"
RAMS_FILES = {"AM0207I6": "day", "AM0207I5": "night"}  # by county of work / of residence
BUSINESS_MARTS = [
    "fct_employment_by_sector",
    "mart_sector_location_quotients",
    "mart_sector_specialisation",
    "mart_sector_shift_share",
    "mart_sector_shift_share_by_industry",
    "mart_top_sectors",
]

#: per basis, county code -> SNI group -> employed (the RAMS CSV as published)
Rams = dict[str, dict[str, dict[str, float]]]


def read_rams() -> Rams:
    """The RAMS exports: ISO-8859-1 PxWeb CSV, codes before the first space of the quoted labels."""
    out: Rams = {}
    for matrix, basis in RAMS_FILES.items():
        (path,) = RAMS_DIR.glob(f"{matrix}_*.csv")
        by_region: dict[str, dict[str, float]] = defaultdict(dict)
        with path.open(encoding="iso-8859-1", newline="") as fh:
            reader = csv.reader(fh)
            assert next(reader)[-1] == "2018"
            for region, sni, value in reader:
                by_region[region.split(" ", 1)[0]][sni.split(" ", 1)[0]] = float(value)
        out[basis] = dict(by_region)
    return out


def _insert_rams(path: Path, rams: Rams) -> None:
    """raw.regional_employment rows as the `files` loader writes them (docs/CONTRACTS.md shared contract)."""
    labels = {}
    for matrix in RAMS_FILES:
        (csv_path,) = RAMS_DIR.glob(f"{matrix}_*.csv")
        with csv_path.open(encoding="iso-8859-1", newline="") as fh:
            rows = list(csv.reader(fh))[1:]
        labels.update({(r[0].split(" ", 1)[0], r[1].split(" ", 1)[0]): (r[0], r[1]) for r in rows})
    matrix_of = {basis: matrix for matrix, basis in RAMS_FILES.items()}
    con = connect_writer(path)
    try:
        con.executemany(
            "insert into raw.regional_employment (region, region_label, sni_group, sni_label, basis, period, value, "
            "status, _source_name, _source_table, _load_id, _synthetic, _loaded_at, _source_updated) "
            "values (?, ?, ?, ?, ?, '2018', ?, null, 'regional_employment_csv', ?, ?, false, now()::timestamp, null)",
            [
                (
                    region,
                    labels[(region, sni)][0],
                    sni,
                    labels[(region, sni)][1],
                    basis,
                    value,
                    matrix_of[basis],
                    f"fixture-{matrix_of[basis]}",
                )
                for basis, by_region in rams.items()
                for region, groups in by_region.items()
                for sni, value in groups.items()
            ],
        )
    finally:
        con.close()


@pytest.fixture(scope="module")
def rams() -> Rams:
    return read_rams()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory, rams: Rams) -> Path:
    data = tmp_path_factory.mktemp("sectors") / "data"
    settings = Settings(data_dir=data)
    extract_source("employment_by_sector", settings=settings)  # synthetic offline
    settings.inbox_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(REFERENCE / "linkoping_kommun_px" / "FO05.px", settings.inbox_dir / "FO05.px")
    assert [r.status for r in extract_inbox(settings=settings)] == ["landed"]
    validate_pending(settings, build_docs=False)
    load_validated(settings=settings)
    path = data / "warehouse.duckdb"
    _insert_rams(path, rams)
    result = invoke_dbt(
        "build",
        settings,
        ["--select", *(f"+{mart}" for mart in BUSINESS_MARTS), "--exclude", "resource_type:unit_test"],
        duckdb_path=str(path),
        indirect_selection="cautious",
    )
    assert result.success, result.failures
    return path


def _sql(path: Path, query: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def test_rams_control_totals(rams: Rams) -> None:
    """The README's control totals hold for the parsed files (so the hand computations below start right)."""
    assert {basis: len(by_region) for basis, by_region in rams.items()} == {"day": 21, "night": 21}
    assert sum(rams["night"]["05"].values()) == 216_877
    assert sum(rams["day"]["05"].values()) == 213_744
    assert sum(sum(g.values()) for g in rams["night"].values()) == 4_927_941
    assert sum(sum(g.values()) for g in rams["day"].values()) == 4_920_748


@pytest.mark.parametrize("basis", ["day", "night"])
def test_ostergotland_lq_vs_sweden_equals_the_hand_computed_rams_figure(
    warehouse: Path, rams: Rams, basis: str
) -> None:
    region = rams[basis]["05"]
    sweden: dict[str, float] = defaultdict(float)
    for groups in rams[basis].values():
        for sni, value in groups.items():
            sweden[sni] += value
    e_j, e = sum(region.values()), sum(sweden.values())
    expected = {sni: (region[sni] / e_j) / (sweden[sni] / e) for sni in region}
    rows = _sql(
        warehouse,
        "select sni_group_code, lq_vs_reference, region_total, reference_total, bases_match, is_synthetic, "
        "source_tables from marts.mart_sector_location_quotients where region_code = '05' and year = 2018 "
        "and basis = ?",
        [basis],
    )
    assert len(rows) == 15
    for sni, lq, region_total, reference_total, bases_match, is_synthetic, source_tables in rows:
        assert lq == pytest.approx(expected[sni], abs=1e-7), sni
        assert (region_total, reference_total) == (e_j, e)
        assert bases_match is True and is_synthetic is False
        assert source_tables == {"day": "AM0207I6", "night": "AM0207I5"}[basis]


@pytest.mark.parametrize("basis", ["day", "night"])
def test_ostergotland_krugman_vs_sweden_equals_the_hand_computed_rams_figure(
    warehouse: Path, rams: Rams, basis: str
) -> None:
    region = rams[basis]["05"]
    sweden: dict[str, float] = defaultdict(float)
    for groups in rams[basis].values():
        for sni, value in groups.items():
            sweden[sni] += value
    e_j, e = sum(region.values()), sum(sweden.values())
    krugman = sum(abs(region[sni] / e_j - sweden[sni] / e) for sni in region)
    ((mart_krugman, hoover, is_synthetic),) = _sql(
        warehouse,
        "select krugman_vs_reference, hoover_vs_reference, is_synthetic from marts.mart_sector_specialisation "
        "where region_code = '05' and year = 2018 and basis = ?",
        [basis],
    )
    assert mart_krugman == pytest.approx(krugman, abs=1e-7)
    assert hoover == pytest.approx(krugman / 2, abs=1e-7)
    assert is_synthetic is False
    # every county has real 2018 indices against Sweden
    assert _sql(
        warehouse,
        "select count(*), count(krugman_vs_reference), bool_or(is_synthetic) from marts.mart_sector_specialisation "
        "where region_level = 'county' and year = 2018 and basis = ?",
        [basis],
    ) == [(21, 21, False)]


def test_linkoping_2024_jobs_are_fo05s_real_total(warehouse: Path) -> None:
    assert _sql(
        warehouse,
        "select employed, source_table, is_synthetic, synthetic_inputs from marts.fct_employment_by_sector "
        "where region_code = '0580' and year = 2024 and basis = 'day' and sex_code = 'total' and is_all_industries",
    ) == [(95_007, "FO05.px", False, None)]
    # the same total in the LQ mart (sum of FO05's 16 groups) and in the top sectors' shares
    assert _sql(
        warehouse,
        "select distinct region_total, source_table from marts.mart_sector_location_quotients "
        "where region_code = '0580' and year = 2024 and basis = 'day'",
    ) == [(95_007, "FO05.px")]
    # TAB3204's synthetic Linköping 2024 day figures are not in the fact (real first), its night figures are
    assert _sql(
        warehouse,
        "select basis, source_table, bool_and(is_synthetic) from marts.fct_employment_by_sector "
        "where region_code = '0580' and year = 2024 group by all order by basis",
    ) == [("day", "FO05.px", False), ("night", "TAB3204", True)]
    # districts come from the same file and add up to the municipality
    ((districts, total),) = _sql(
        warehouse,
        "select count(distinct region_code), sum(employed) from marts.fct_employment_by_sector "
        "where region_level = 'district' and municipality_code = '0580' and year = 2024 and sex_code = 'total' "
        "and is_all_industries",
    )
    assert districts == 74 and total == 95_007


def test_a_row_mixing_real_and_synthetic_inputs_is_flagged(warehouse: Path) -> None:
    """Linköping 2024 (real FO05) against Sweden 2024 (TAB3204, synthetic offline): flagged with the input."""
    rows = _sql(
        warehouse,
        "select distinct is_synthetic, synthetic_inputs, source_tables, age_range, reference_age_range, bases_match "
        "from marts.mart_sector_location_quotients where region_code = '0580' and year = 2024 and basis = 'day'",
    )
    assert rows == [(True, "TAB3204", "FO05.px,TAB3204", "15-74", "15-74", True)]
    assert _sql(
        warehouse,
        "select is_synthetic, synthetic_inputs from marts.mart_sector_specialisation "
        "where region_code = '0580' and year = 2024 and basis = 'day'",
    ) == [(True, "TAB3204")]
    # 2018 against the RAMS sum: all real, over the same 15 groups (RAMS has no unknown-industry group, so
    # FO05's is left out), but FO05 counts ages 16-74 and RAMS 16+: said in bases_match
    assert _sql(
        warehouse,
        "select distinct is_synthetic, source_tables, age_range, reference_age_range, bases_match, count(*) over () "
        "from marts.mart_sector_location_quotients where region_code = '0580' and year = 2018 and basis = 'day'",
    ) == [(False, "AM0207I6,FO05.px", "16-74", "16+", False, 15)]
    ((krugman, bases_match, is_synthetic),) = _sql(
        warehouse,
        "select krugman_vs_reference, bases_match, is_synthetic from marts.mart_sector_specialisation "
        "where region_code = '0580' and year = 2018 and basis = 'day'",
    )
    assert 0 < krugman < 2 and bases_match is False and is_synthetic is False
    # a district's top sectors are real (no reference needed)
    assert _sql(
        warehouse,
        "select count(*), bool_or(is_synthetic) from marts.mart_top_sectors where region_code = '0580-133' "
        "and year = 2024",
    ) == [(15, False)]
