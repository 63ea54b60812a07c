"""Per-process savings of the Airflow task path that must not change behaviour: the exit without a shutdown
collection (and without DuckDB leak reports), and the catalogue's raw-table columns read once per file version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from regionstat.catalogue import CATALOGUE_PATH
from warehouse.db import declared_raw_columns


def test_declared_raw_columns_follow_an_edited_catalogue(tmp_path: Path, monkeypatch) -> None:
    raw = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    copy = tmp_path / "catalogue.yaml"
    copy.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("REGIONSTAT_CATALOGUE", str(copy))
    before = declared_raw_columns()
    assert "Civilstand" in before["population"]  # only population_tab5557 selects it
    before["population"].clear()  # a caller changing its copy does not change the next caller's
    assert "Civilstand" in declared_raw_columns()["population"]

    [tab5557] = [s for s in raw["sources"] if s["name"] == "population_tab5557"]
    del tab5557["selection"]["Civilstand"]  # eliminated: SCB aggregates it
    copy.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    after = declared_raw_columns()
    assert "Civilstand" not in after["population"]
    assert set(after["population"]) == {"Region", "Alder", "Kon", "ContentsCode", "Tid"}


def test_a_process_that_imported_the_dags_exits_cleanly_without_duckdb_leak_reports() -> None:
    code = (
        "import gc, duckdb\n"
        "import regionstat.dag_support\n"
        "con = duckdb.connect()\n"
        "assert con.execute('select 41 + 1').fetchone() == (42,)\n"
        "con.close()\n"
        "print('done', gc.get_freeze_count())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("done 0")  # frozen only at exit, not while tasks run
    assert "leaked" not in proc.stderr, proc.stderr[-2000:]
