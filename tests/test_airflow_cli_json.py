"""Reading Airflow's CLI listings (``-o json``); the commands themselves run in test_airflow_e2e/standalone."""

from __future__ import annotations

import pytest

from regionstat.cli.airflow_local import AirflowSetupError, _json_rows


def test_json_rows_skip_log_lines_before_the_listing() -> None:
    stdout = '2026-01-01T00:00:00Z [info] loading\n[{"run_id": "manual__1", "state": "success"}]\n'
    assert _json_rows(stdout, "airflow dags list-runs x -o json") == [{"run_id": "manual__1", "state": "success"}]
    assert _json_rows("[]\n", "airflow dags list-import-errors -o json") == []


def test_json_rows_name_the_command_when_there_is_no_listing() -> None:
    with pytest.raises(AirflowSetupError, match=r"^`airflow pools list -o json` printed no JSON list$"):
        _json_rows("No data found\n", "airflow pools list -o json")
    with pytest.raises(AirflowSetupError, match="malformed JSON"):
        _json_rows('[{"pool": ', "airflow pools list -o json")


def test_dags_test_output_is_split_into_the_task_logs_the_ui_reads(tmp_path) -> None:
    """`dags test` logs to its stdout only; each task attempt's part goes where the UI looks (a retry = attempt 2)."""
    from regionstat.cli.airflow_local import split_task_logs, task_log_path

    out = tmp_path / "ingest.log"
    out.write_text(
        "dag-level line\n"
        "[DAG TEST] starting task_id=source.extract map_index=0\nfetched TAB638\nConnectionError\n"
        "[DAG TEST] starting task_id=source.extract map_index=0\nfetched TAB638: 855 rows\n"
        "[DAG TEST] starting task_id=load map_index=-1\nload: loaded 1 batch(es)\n"
    )
    env = {"AIRFLOW_HOME": str(tmp_path / "home")}
    written = split_task_logs(env, "regionstat_ingest", "manual__1", out)
    first = task_log_path(env, "regionstat_ingest", "manual__1", "source.extract", 0, 1)
    retry = task_log_path(env, "regionstat_ingest", "manual__1", "source.extract", 0, 2)
    load = task_log_path(env, "regionstat_ingest", "manual__1", "load", -1, 1)
    assert written == [first, retry, load]
    assert first.read_text().endswith("ConnectionError\n") and "855 rows" in retry.read_text()
    assert load.read_text().splitlines()[-1] == "load: loaded 1 batch(es)"
    assert load.parent.name == "task_id=load" and "map_index" not in str(load)
