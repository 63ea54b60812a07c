"""The whole pipeline without a scheduler (`regionstat run`) on the bundled snapshot, as an analyst uses it.

One module-scoped copy of the session's run (`built_data_copy`) serves every assertion: real numbers in landing and
marts, idempotence, the freshness gate, and a bad inbox file that is quarantined while the marts stay as they were.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from regionstat.catalogue import load_catalogue
from regionstat.cli.main import main, run_pipeline
from regionstat.settings import Settings
from tests.conftest import REFERENCE_DATA

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pipeline")]

LA_LINKOPING = {"0580", "0583", "0586", "0584", "0509", "0560", "0513", "0561"}


@pytest.fixture(scope="module")
def run_dir(built_data_copy: Path) -> Path:
    """This module's own copy of the session's `regionstat run` on the bundled snapshot (conftest.py)."""
    return built_data_copy


def _sql(data: Path, query: str) -> list[tuple]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_landing_holds_real_population(run_dir: Path) -> None:
    rows = duckdb.sql(
        f"select Tid, value from read_parquet('{run_dir}/landing/population/*/*.parquet', union_by_name=true) "
        "where Region = '0580' and Tid in ('2024', '2025') order by Tid"
    ).fetchall()
    assert rows == [("2024", 168035.0), ("2025", 168714.0)]


def test_analyst_questions_answered_from_sql(run_dir: Path) -> None:
    with (REFERENCE_DATA / "ostergotland_population_1968_2025.csv").open(encoding="utf-8") as fh:
        expected = sum(
            int(r["population"]) for r in csv.DictReader(fh) if r["year"] == "2024" and r["region_code"] in LA_LINKOPING
        )
    assert expected == 279_903
    assert _sql(
        run_dir, "select population from marts.mart_study_area_summary where area_code = 'LA Linköping' and year = 2024"
    ) == [(expected,)]
    assert _sql(
        run_dir,
        "select year, out_commuters from marts.mart_commuting_totals_series "
        "where municipality_code = '0580' and year between 2019 and 2021 order by year",
    ) == [(2019, 10912), (2020, 11080), (2021, 11792)]
    (lq,) = _sql(
        run_dir,
        "select lq_vs_reference from marts.mart_sector_location_quotients where "
        "region_code = '0581' and sni_group_code = 'Q' and basis = 'day' and year = 2024",
    )
    assert 0 < lq[0] < 5
    unclassified = _sql(
        run_dir,
        "select count(*) from marts.mart_locality_typology t join marts.dim_localities d "
        "using (locality_code) where d.is_study_area and t.typology_code is null",
    )
    assert unclassified == [(0,)]
    assert (
        _sql(
            run_dir,
            "select count(*) from marts.mart_locality_typology t join marts.dim_localities d "
            "using (locality_code) where d.is_study_area",
        )[0][0]
        > 20
    )


def test_outputs_are_where_the_summary_says(run_dir: Path) -> None:
    marts = json.loads((run_dir / "marts" / "_index.json").read_text())
    assert {
        "fct_population",
        "mart_commuting_balance",
        "mart_sector_specialisation",
        "mart_locality_typology",
        "mart_labour_market_areas",
        "mart_population_growth_by_category",
        "mart_top_sectors",
    } <= set(marts)
    html = (run_dir / "reports" / "index.html").read_text(encoding="utf-8")
    assert "SYNTHETIC" in html and "Linköping" in html and "<svg" in html
    sources = len(load_catalogue().sources)  # one batch per catalogue source (10 with the ages of TAB638)
    assert _sql(run_dir, "select count(*) from ops.loads where status = 'loaded'") == [(sources,)]


def test_second_run_is_fresh_and_byte_identical(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (run_dir / "marts" / "_index.json").read_text()
    assert run_pipeline(Settings(data_dir=run_dir), docs=False).exit_code == 0
    out = capsys.readouterr().out
    assert "0 data request(s)" in out and f"{len(load_catalogue().sources)} skipped as unchanged" in out
    assert (run_dir / "marts" / "_index.json").read_text() == before


def test_bad_inbox_file_is_quarantined_and_marts_stay(
    run_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (run_dir / "marts" / "_index.json").read_text()
    inbox = run_dir / "inbox" / "commuting"
    inbox.mkdir(parents=True, exist_ok=True)
    shutil.copy(REFERENCE_DATA / "linkoping_kommun_px" / "PE12.px", inbox / "PE12.px")
    (inbox / "kommun_commuting.csv").write_text("flow_type,district,area,period,value\nUt,0580,Annan,2021,-5\n")
    summary = run_pipeline(Settings(data_dir=run_dir), docs=False)
    out = capsys.readouterr().out
    assert "1 quarantined" in out
    assert summary.exit_code == 1  # `regionstat run` ends non-zero, naming the batch
    assert [(p.kind, p.source_name) for p in summary.problems] == [("quarantined", "municipal_commuting_csv")]
    assert _sql(run_dir, "select count(*) from raw.municipal_commuting")[0][0] > 30_000
    quarantined = _sql(run_dir, "select source_name, reason from ops.loads where status = 'quarantined'")
    assert len(quarantined) == 1 and quarantined[0][0] == "municipal_commuting_csv"
    assert quarantined[0][1].startswith("quarantined: ")
    # the good file feeds the commuting marts (real first); the quarantined file's -5 reaches none of them
    assert (run_dir / "marts" / "_index.json").read_text() != before
    assert _sql(
        run_dir,
        "select in_commuters, out_commuters, source_table from marts.mart_commuting_balance "
        "where municipality_code = '0580' and year = 2021",
    ) == [(22_417, 11_792, "PE12.px")]
    # only marts built on the good file changed (the locality typology reads PE12's districts); the
    # quarantined file reached none
    after = json.loads((run_dir / "marts" / "_index.json").read_text())
    changed = {m for m, entry in json.loads(before).items() if after.get(m) != entry}
    assert all("PE12.px" in after[m]["source_tables"] for m in changed), changed
    assert not any("kommun_commuting.csv" in entry["source_tables"] for entry in after.values())
    monkeypatch.setenv("REGIONSTAT_DATA_DIR", str(run_dir))
    assert main(["quarantine", "list"]) == 0
    assert "municipal_commuting_csv" in capsys.readouterr().out
