"""The Airflow DAGs: they parse fast and cleanly, are generated from the catalogue, and their task-side helpers work.

No Airflow metadata DB is needed here (the one run through `airflow dags test` is tests/test_airflow_e2e.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DAGS = PROJECT_ROOT / "dags"
DBT_MODELS = PROJECT_ROOT / "dbt_project" / "models"

# Airflow reads (and may write) its config at import: never the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(Path(tempfile.gettempdir()) / "regionstat-test-airflow-home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))

import regionstat.dag_support as ra  # noqa: E402
from regionstat.catalogue import load_catalogue  # noqa: E402

CATALOGUE = load_catalogue()
WRITER_TASKS = {
    "regionstat_ingest": {"load"},
    "regionstat_inbox": {"load"},
    "regionstat_transform": {f"dbt_{g}" for g in ra.DBT_GROUPS}
    | {"dbt_tests", "publish_marts", "write_report", "build_docs"},
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS, bundle_name="dags-folder")


def test_dagbag_has_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) >= {"regionstat_ingest", "regionstat_inbox", "regionstat_transform"}
    # parse time is a benchmark figure (make bench: DagBag parse vs `import airflow`), not a test


def test_every_dag_is_documented_single_run_and_not_catching_up(dagbag):
    for dag in dagbag.dags.values():
        assert dag.doc_md and len(dag.doc_md) > 200, dag.dag_id
        assert dag.max_active_runs == 1, dag.dag_id
        assert dag.catchup is False, dag.dag_id
        assert "regionstat" in dag.tags, dag.dag_id
        assert dag.on_failure_callback is not None, dag.dag_id
        for t in dag.tasks:
            assert t.on_failure_callback, f"{dag.dag_id}.{t.task_id} has no failure callback"


def test_duckdb_work_runs_in_the_writer_pool_and_nothing_else_does(dagbag):
    for dag_id, writers in WRITER_TASKS.items():
        dag = dagbag.dags[dag_id]
        in_pool = {t.task_id for t in dag.tasks if t.pool == ra.POOL}
        assert in_pool == writers, dag_id


def test_ingest_maps_extract_and_validate_over_catalogue_sources(dagbag):
    from airflow.sdk import TriggerRule

    dag = dagbag.dags["regionstat_ingest"]
    assert set(dag.task_ids) == {"source.extract", "source.validate", "load", "verdict"}
    group = dag.task_group_dict["source"]
    assert group._expand_input.value == {"source_name": [s.name for s in CATALOGUE.sources]}
    extract = dag.get_task("source.extract")
    assert extract.retries == 3 and extract.retry_exponential_backoff > 1
    assert dag.get_task("source.validate").retries == 0  # a quarantine does not get better by retrying
    load = dag.get_task("load")
    assert load.trigger_rule == TriggerRule.ALL_DONE  # good sources load although another was quarantined
    assert [o.name for o in load.outlets] == [ra.RAW_ALIAS.name]
    assert dag.get_task("verdict").trigger_rule == TriggerRule.ALL_DONE  # green when nothing failed, not skipped
    assert dag.get_task("source.validate").upstream_task_ids == {"source.extract"}
    assert dag.params["force"] is False


def test_ingest_dags_cover_every_source_once():
    groups = ra.ingest_groups()
    assert "regionstat_ingest" in groups
    names = [n for _, ns in groups.values() for n in ns]
    assert sorted(names) == sorted(s.name for s in CATALOGUE.sources)


def test_ingest_groups_split_by_schedule():
    fake = SimpleNamespace(
        sources=[
            SimpleNamespace(name="a", schedule="@monthly"),
            SimpleNamespace(name="b", schedule="@weekly"),
            SimpleNamespace(name="c", schedule="@monthly"),
            SimpleNamespace(name="d", schedule="0 6 * * 1"),
        ]
    )
    groups = ra.ingest_groups(fake)  # type: ignore[arg-type]
    assert groups == {
        "regionstat_ingest": ("@monthly", ["a", "c"]),
        "regionstat_ingest_weekly": ("@weekly", ["b"]),
        "regionstat_ingest_0_6_1": ("0 6 * * 1", ["d"]),
    }


def test_inbox_dag_short_circuits_then_validates_and_loads(dagbag):
    dag = dagbag.dags["regionstat_inbox"]
    assert set(dag.task_ids) == {"scan", "extract_inbox", "validate", "load", "verdict"}
    assert dag.get_task("scan").downstream_task_ids == {"extract_inbox"}
    assert dag.get_task("validate").upstream_task_ids == {"extract_inbox"}
    assert [o.name for o in dag.get_task("load").outlets] == [ra.RAW_ALIAS.name]
    assert ra.INBOX_SCHEDULE in repr(dag.timetable)


def test_transform_is_scheduled_on_every_raw_asset(dagbag):
    from airflow.sdk import AssetAny

    dag = dagbag.dags["regionstat_transform"]
    condition = dag.timetable.asset_condition
    assert isinstance(condition, AssetAny)
    uris = {a.uri for a in condition.objects}
    assert uris == {f"regionstat://raw/{t}" for t in CATALOGUE.raw_tables}
    assert [o.uri for o in dag.get_task("publish_marts").outlets] == [ra.MARTS_ASSET.uri]
    # `plan` (a short-circuit: nothing changed -> everything after it is skipped) feeds every writing task
    assert type(dag.get_task("plan")).__name__ == "_ShortCircuitDecoratedOperator"
    assert dag.get_task("publish_marts").upstream_task_ids == {"dbt_tests", "plan"}
    assert dag.get_task("build_docs").upstream_task_ids == {"publish_marts"}
    assert dag.get_task("write_report").upstream_task_ids == {"build_docs", "plan"}  # links the docs it finds
    for group, (_, upstream) in ra.DBT_GROUPS.items():
        assert dag.get_task(f"dbt_{group}").upstream_task_ids == {f"dbt_{u}" for u in upstream} | {"plan"}


# -- dbt model groups ------------------------------------------------------------------------------------------

_REF = re.compile(r"""\bref\(\s*['"]([\w]+)['"]\s*\)""")


def _model_group(path: Path) -> str | None:
    rel = path.relative_to(DBT_MODELS).parts
    for group, (selector, _) in ra.DBT_GROUPS.items():
        if selector.startswith("resource_type:"):
            continue
        if tuple(selector.split(".")) == rel[: len(selector.split("."))]:
            return group
    return None


def _ancestors(group: str) -> set[str]:
    out: set[str] = set()
    todo = list(ra.DBT_GROUPS[group][1])
    while todo:
        g = todo.pop()
        if g not in out:
            out.add(g)
            todo.extend(ra.DBT_GROUPS[g][1])
    return out


def test_every_dbt_model_is_in_a_group_and_refs_point_upstream():
    models = sorted(DBT_MODELS.rglob("*.sql"))
    if not models:
        pytest.skip("no dbt models yet")
    group_of = {p.stem: _model_group(p) for p in models}
    orphans = [name for name, g in group_of.items() if g is None]
    assert not orphans, f"dbt models in no transform task group: {orphans}"
    seeds = {p.stem for p in (PROJECT_ROOT / "dbt_project" / "seeds").glob("*.csv")}
    problems = []
    for p in models:
        group = group_of[p.stem]
        allowed = {group} | _ancestors(group)  # type: ignore[arg-type]
        for ref in _REF.findall(p.read_text(encoding="utf-8")):
            target = "seeds" if ref in seeds else group_of.get(ref)
            if target is not None and target not in allowed:
                problems.append(f"{p.stem} ({group}) refs {ref} ({target})")
    assert not problems, "; ".join(problems)


# -- task-side helpers -------------------------------------------------------------------------------------------


def test_describe_extract_says_what_was_fetched():
    landed = {
        "source_name": "population_tab638",
        "table_id": "TAB638",
        "status": "landed",
        "rows": 1234,
        "cells": 1234,
        "requests": 2,
        "lower_bound": 2,
        "manifest_path": "/d/m.json",
    }
    line = ra.describe_extract(landed)
    assert "1,234 rows" in line and "2 data request(s) (lower bound 2, 1.00x)" in line
    fresh = {"source_name": "x", "table_id": "TAB1", "status": "skipped_fresh", "message": "unchanged upstream since t"}
    assert ra.describe_extract(fresh).endswith("0 data requests")
    assert "unchanged upstream" in ra.describe_extract(fresh)


def _manifest(directory: Path, load_id: str, raw_table: str, source: str, rows: int = 3) -> Path:
    d = directory / raw_table / source
    d.mkdir(parents=True, exist_ok=True)
    fields = dict(
        load_id=load_id,
        source_name=source,
        raw_table=raw_table,
        kind="pxweb",
        table_id="TAB1",
        source_url="u",
        query={},
        updated="2025-01-01",
        fetched_at="t",
        rows=rows,
        cells=rows,
        requests=1,
        content_sha256="0" * 64,
        synthetic=False,
        region_set="ostergotland",
    )
    path = d / f"{load_id}.manifest.json"
    path.write_text(json.dumps(fields))
    return path


def test_needs_validation(tmp_path):
    m = _manifest(tmp_path, "20250101T000000000000Z-aaaaaaaa", "population", "population_tab638")
    assert ra.needs_validation({"status": "landed", "manifest_path": str(m)})
    assert ra.needs_validation({"status": "skipped_fresh", "manifest_path": str(m)})  # left unvalidated earlier
    m.with_name("20250101T000000000000Z-aaaaaaaa.validation.parquet").write_bytes(b"x")
    assert not ra.needs_validation({"status": "skipped_fresh", "manifest_path": str(m)})
    assert not ra.needs_validation({"status": "skipped_seen", "manifest_path": None})


class _Accessor:
    def __init__(self):
        self.added: list[tuple[str, dict]] = []
        self.extra: dict = {}

    def add(self, asset, extra=None):
        self.added.append((asset.uri, extra or {}))


class _OutletEvents(dict):
    def __missing__(self, key):
        self[key] = _Accessor()
        return self[key]


def test_load_emits_asset_events_only_for_changed_raw_tables(tmp_path, monkeypatch, data_dir):
    import warehouse.load

    landing = data_dir / "landing"
    _manifest(landing, "20250101T000000000000Z-aaaaaaaa", "population", "population_tab638", rows=10)
    summary = SimpleNamespace(
        loaded=["20250101T000000000000Z-aaaaaaaa"],
        unchanged=["x"],
        quarantined=[],
        rows=10,
        changed={
            "population": {
                "load_ids": ["20250101T000000000000Z-aaaaaaaa"],
                "sources": ["population_tab638"],
                "rows": 10,
            }
        },
        line=lambda: "loaded 1 batch(es)",
    )
    monkeypatch.setattr(warehouse.load, "load_validated", lambda **kw: summary)
    events = _OutletEvents()
    out = ra.load_and_announce(events)
    assert out["changed_raw_tables"] == ["population"]
    assert events[ra.RAW_ALIAS].added == [
        (
            "regionstat://raw/population",
            {"load_ids": ["20250101T000000000000Z-aaaaaaaa"], "sources": ["population_tab638"], "rows": 10},
        )
    ]

    nothing = SimpleNamespace(loaded=[], unchanged=["x"], quarantined=[], rows=0, changed={}, line=lambda: "loaded 0")
    monkeypatch.setattr(warehouse.load, "load_validated", lambda **kw: nothing)
    events = _OutletEvents()
    assert ra.load_and_announce(events)["changed_raw_tables"] == []
    assert events[ra.RAW_ALIAS].added == []  # no change, no event, no transform run


def test_validate_quarantine_raises_one_readable_line(tmp_path, monkeypatch, data_dir, caplog):
    pytest.importorskip("expectations.validate")
    import expectations.validate

    m = _manifest(data_dir / "landing", "20250101T000000000000Z-aaaaaaaa", "population", "population_tab638")
    outcome = SimpleNamespace(
        success=False,
        failures=["column value: 3 null(s)\nmore detail"],
        warnings=[],
        load_id="20250101T000000000000Z-aaaaaaaa",
        source_name="population_tab638",
        quarantined_to=data_dir / "quarantine" / "population",
    )
    monkeypatch.setattr(expectations.validate, "validate_batch", lambda path, settings: outcome)
    with caplog.at_level(logging.ERROR, logger="regionstat.airflow"), pytest.raises(ra.Quarantined) as exc:
        ra.validate_one({"status": "landed", "manifest_path": str(m), "source_name": "population_tab638"})
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("population_tab638 batch 20250101T000000000000Z-aaaaaaaa quarantined: column value")
    assert "marts are unchanged" in message
    assert message in caplog.text

    outcome.success, outcome.failures = True, []
    assert ra.validate_one({"status": "landed", "manifest_path": str(m)})["success"] is True
    assert ra.validate_one({"status": "skipped_fresh", "manifest_path": None}) is None


def test_quarantined_since_lists_reasons_of_this_run(data_dir):
    q = data_dir / "quarantine" / "population" / "population_tab638"
    q.mkdir(parents=True)
    (q / "L1.reason.txt").write_text("value below 0 in 3 rows\ndetails")
    assert ra.quarantined_since(datetime(2000, 1, 1, tzinfo=UTC)) == ["population_tab638 L1: value below 0 in 3 rows"]
    assert ra.quarantined_since(datetime(2999, 1, 1, tzinfo=UTC)) == []


def test_inbox_scan_finds_new_files_only(data_dir):
    assert ra.inbox_has_new_files() is False  # no inbox folder
    inbox = data_dir / "inbox" / "commuting"
    inbox.mkdir(parents=True)
    assert ra.inbox_has_new_files() is False
    (inbox / "PE12.px").write_bytes(b"px file")
    assert ra.inbox_has_new_files() is True
    # once landed (a manifest with its hash exists), it is no longer new
    from extract.files import file_sha256

    m = _manifest(
        data_dir / "landing", "20250101T000000000000Z-aaaaaaaa", "municipal_commuting", "linkoping_commuting_districts"
    )
    fields = json.loads(m.read_text())
    fields["file_sha256"] = file_sha256(inbox / "PE12.px")
    m.write_text(json.dumps(fields))
    assert ra.inbox_has_new_files() is False
    (inbox / "notes.txt").write_text("matches no pattern: extract_inbox quarantines it")
    assert ra.inbox_has_new_files() is True


def test_extract_level_quarantine_fails_validate_with_one_line():
    result = {
        "status": "quarantined",
        "source_name": "_unmatched",
        "table_id": "notes.txt",
        "message": "notes.txt: matches no catalogue file pattern\nmore",
        "manifest_path": "/q/x.manifest.json",
    }
    with pytest.raises(
        ra.Quarantined,
        match=r"^_unmatched notes.txt quarantined: notes.txt: matches no catalogue "
        r"file pattern \(kept in /q/x.manifest.json",
    ):
        ra.validate_one(result)
    assert "quarantined at extract" in ra.describe_extract(result)


def test_failure_callback_logs_one_line(caplog):
    ti = SimpleNamespace(dag_id="regionstat_ingest", task_id="source.validate", map_index=2)
    with caplog.at_level(logging.ERROR, logger="regionstat.airflow"):
        ra.log_task_failure({"ti": ti, "exception": ValueError("bad batch: 3 nulls\ntraceback...")})
        ra.log_dag_failure(
            {"dag_run": SimpleNamespace(dag_id="regionstat_ingest", run_id="r1"), "reason": "task_failure"}
        )
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "regionstat task failed: regionstat_ingest.source.validate[2]: bad batch: 3 nulls",
        "regionstat DAG run failed: regionstat_ingest run r1: task_failure",
    ]


def test_pool_name_is_the_same_everywhere():
    from regionstat.cli import airflow_local

    assert ra.POOL == airflow_local.POOL == "duckdb_writer"
    assert airflow_local.POOL_SLOTS == 1


def test_airflow_env_is_project_local(tmp_path):
    from regionstat.cli.airflow_local import airflow_env

    env = airflow_env(base={"PATH": "/usr/bin"}, data_dir=tmp_path / "d")
    assert env["AIRFLOW_HOME"] == str(PROJECT_ROOT / ".airflow")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS)
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite:///") and env[
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
    ].endswith("/.airflow/airflow.db")
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1" and env["AIRFLOW__API__PORT"] == "8080"
    assert env["REGIONSTAT_DATA_DIR"] == str((tmp_path / "d").resolve())
    assert env["DO_NOT_TRACK"] == "1" and env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    kept = airflow_env(base={"AIRFLOW_HOME": str(tmp_path / "h"), "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"})
    assert kept["AIRFLOW_HOME"] == str(tmp_path / "h") and kept["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_failure_callback_names_a_task_that_never_started(caplog, monkeypatch):
    """Run by the DAG processor for a task whose supervisor could not start it: no exception, no start date."""
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "http://127.0.0.1:8080/execution/")
    never = SimpleNamespace(dag_id="regionstat_inbox", task_id="scan", map_index=-1, start_date=None)
    ran = SimpleNamespace(dag_id="regionstat_inbox", task_id="scan", map_index=-1, start_date="2026-01-01")
    with caplog.at_level(logging.ERROR, logger="regionstat.airflow"):
        ra.log_task_failure({"ti": never})
        ra.log_task_failure({"ti": ran})
    assert [r.getMessage() for r in caplog.records] == [
        "regionstat task failed: regionstat_inbox.scan: it never started: its supervisor could not start it "
        "(often: http://127.0.0.1:8080/execution/ did not answer); the error is in the scheduler's or worker's log",
        "regionstat task failed: regionstat_inbox.scan: see the task log",
    ]
