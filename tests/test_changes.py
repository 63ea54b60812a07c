"""Incremental runs (warehouse/changes.py): a run that loads nothing skips dbt, publish and report; a run where one
raw table changed builds only what is downstream of it, and its marts are byte-identical to a full build's.

A copy of the session's built data directory (``built_data``), a copy of the bundled snapshot served over HTTP,
then one changed table and, for comparison, one build from scratch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regionstat.cli.main import run_pipeline
from regionstat.settings import Settings
from tools.snapshot import TABLES_DIR
from tools.snapshot.server import SnapshotServer
from warehouse import changes

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("changes")]  # shares `built_data` with test_readme


def _index(data: Path) -> dict[str, dict]:
    return json.loads((data / "marts" / "_index.json").read_text(encoding="utf-8"))


def _run(settings: Settings, tables: Path) -> None:
    with SnapshotServer(tables) as server:
        summary = run_pipeline(Settings(data_dir=settings.data_dir, api_url=server.url), docs=False)
    assert summary.exit_code == 0, summary.problems


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, built_data: Path) -> tuple[Settings, Path]:
    root = tmp_path_factory.mktemp("changes")
    tables = root / "tables"
    shutil.copytree(TABLES_DIR, tables)
    settings = Settings(data_dir=root / "data")
    shutil.copytree(built_data, settings.data_dir)  # built from the same snapshot: every table is unchanged
    return settings, tables


def test_nothing_loaded_skips_build_publish_and_report(
    world: tuple[Settings, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, tables = world
    report = settings.reports_dir / "index.html"
    before, report_mtime = _index(settings.data_dir), report.stat().st_mtime_ns
    capsys.readouterr()
    _run(settings, tables)
    out = capsys.readouterr().out
    assert "0 loaded, build, publish and report skipped: nothing changed since the last run" in out
    assert "dbt build" not in out
    assert _index(settings.data_dir) == before
    assert report.stat().st_mtime_ns == report_mtime


def test_one_changed_table_builds_downstream_only_and_equals_a_full_build(
    world: tuple[Settings, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    settings, tables = world
    before = _index(settings.data_dir)
    # upstream publishes a revision of TAB5839 (commuting totals): one figure moves, `updated` moves
    facts = tables / "TAB5839" / "facts.parquet"
    table = pq.read_table(facts)
    values = table["value"].to_pylist()
    values[0] += 7.0
    pq.write_table(
        table.set_column(table.schema.get_field_index("value"), "value", pa.array(values, pa.float64())), facts
    )
    meta_path = tables / "TAB5839" / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8-sig"))
    meta["updated"] = "2026-11-30T07:00:00Z"
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    capsys.readouterr()
    _run(settings, tables)
    out = capsys.readouterr().out
    assert "build: only what depends on raw.commuting_totals" in out
    built = next(line for line in out.splitlines() if line.startswith("dbt build:"))
    assert int(built.split()[2]) < 200  # a full build is ~290 nodes
    incremental = _index(settings.data_dir)
    moved = {m for m in incremental if incremental[m]["sha256"] != before[m]["sha256"]}
    assert "mart_commuting_totals_series" in moved
    affected = changes.marts_to_publish(settings, changes.Plan("publish", False, ("commuting_totals",)))
    assert affected is not None and moved <= affected & set(incremental) < set(incremental)

    # the same data directory built from scratch (no record: everything) gives the same bytes
    full = Settings(data_dir=tmp_path / "data")
    shutil.copytree(settings.data_dir, full.data_dir)
    (full.state_dir / changes.STATE_NAME).unlink()
    _run(full, tables)
    assert "build: only" not in capsys.readouterr().out
    assert {m: e["sha256"] for m, e in _index(full.data_dir).items()} == {
        m: e["sha256"] for m, e in incremental.items()
    }


def test_transform_dag_tasks_build_only_downstream_and_record(
    world: tuple[Settings, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transform DAG's task functions, in DAG order, on a changed municipal file: the plan parses once and
    narrows every group; afterwards the plan finds nothing to do (the DAG short-circuits)."""
    from collections import defaultdict
    from types import SimpleNamespace

    import regionstat.dag_support as ra
    from expectations.validate import validate_pending
    from extract.pipeline import extract_inbox
    from tests.conftest import REFERENCE_DATA
    from warehouse.load import load_validated

    settings, _ = world
    monkeypatch.setenv("REGIONSTAT_DATA_DIR", str(settings.data_dir))
    assert ra.plan_transform() is None  # nothing changed since the CLI runs above
    before = _index(settings.data_dir)
    settings.inbox_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(REFERENCE_DATA / "linkoping_kommun_px" / "PE12.px", settings.inbox_dir / "PE12.px")
    extract_inbox(settings=settings)
    validate_pending(settings, build_docs=False)
    assert load_validated(settings=settings).changed.keys() == {"municipal_commuting"}

    plan = ra.plan_transform()
    assert plan is not None and plan["select"] == "source:municipal.municipal_commuting+"
    assert ra._group_selector("staging", plan["select"]) == "staging,source:municipal.municipal_commuting+"
    built = [ra.dbt_group(group, plan) for group in ra.DBT_GROUPS]
    assert sum(g["passed"] for g in built) >= 1 and not any(g["failed"] for g in built)
    assert ra.dbt_group("seeds", plan)["passed"] == 0  # no seed is downstream of a raw table
    ra.dbt_test_all(plan)
    events: defaultdict = defaultdict(SimpleNamespace)  # stands in for Airflow's outlet events accessor
    published = ra.publish(events, plan)
    ra.report(plan)
    assert set(published["changed"]) <= set(plan["publish_only"] or ())
    assert {m: e["sha256"] for m, e in _index(settings.data_dir).items() if m not in published["changed"]} == {
        m: e["sha256"] for m, e in before.items() if m not in published["changed"]
    }
    assert ra.plan_transform() is None and changes.nothing_changed(settings)
