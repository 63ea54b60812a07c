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
    """`dags test` logs to its stdout only; each task attempt's part goes where the UI looks (a retry = attempt 2),
    as Airflow's JSON records, so the UI shows each line's level."""
    import json

    from regionstat.cli.airflow_local import split_task_logs, task_log_path

    out = tmp_path / "ingest.log"
    out.write_text(
        "2026-01-01T00:00:00.000001Z [info     ] dag-level line                 [airflow.models.dag] loc=dag.py:1\n"
        "2026-01-01T00:00:01.000001Z [info     ] [DAG TEST] starting task_id=source.extract map_index=0 "
        "[airflow.sdk.definitions.dag] loc=dag.py:1501\n"
        "2026-01-01T00:00:02.000001Z [error    ] fetch failed                   [regionstat.airflow] loc=x.py:2\n"
        "Traceback (most recent call last):\nConnectionError\n"
        "2026-01-01T00:00:03.000001Z [info     ] [DAG TEST] starting task_id=source.extract map_index=0 "
        "[airflow.sdk.definitions.dag] loc=dag.py:1501\n"
        "2026-01-01T00:00:04.000001Z [warning  ] fetched TAB638: 855 rows [0580] [regionstat.airflow]\n"
        "2026-01-01T00:00:05.000001Z [info     ] [DAG TEST] starting task_id=load map_index=-1 "
        "[airflow.sdk.definitions.dag] loc=dag.py:1501\n"
        "2026-01-01T00:00:06.000001Z [info     ] load: loaded 1 batch(es)       [regionstat.airflow] loc=d.py:3\n"
    )
    env = {"AIRFLOW_HOME": str(tmp_path / "home")}
    written = split_task_logs(env, "regionstat_ingest", "manual__1", out)
    first = task_log_path(env, "regionstat_ingest", "manual__1", "source.extract", 0, 1)
    retry = task_log_path(env, "regionstat_ingest", "manual__1", "source.extract", 0, 2)
    load = task_log_path(env, "regionstat_ingest", "manual__1", "load", -1, 1)
    assert written == [first, retry, load]

    def records(path):
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    assert records(first)[-1] == {
        "timestamp": "2026-01-01T00:00:02.000001Z",
        "level": "error",
        "event": "fetch failed loc=x.py:2\nTraceback (most recent call last):\nConnectionError",  # kept together
        "logger": "regionstat.airflow",
    }
    assert records(first)[0]["event"] == "[DAG TEST] starting task_id=source.extract map_index=0 loc=dag.py:1501"
    assert records(retry)[-1]["level"] == "warning" and records(retry)[-1]["event"] == "fetched TAB638: 855 rows [0580]"
    assert [(r["level"], r["logger"]) for r in records(load)] == [
        ("info", "airflow.sdk.definitions.dag"),
        ("info", "regionstat.airflow"),
    ]
    assert records(load)[-1]["event"] == "load: loaded 1 batch(es) loc=d.py:3"
    assert load.parent.name == "task_id=load" and "map_index" not in str(load)


def test_text_before_any_record_is_kept_as_an_event() -> None:
    from regionstat.cli.airflow_local import task_log_records

    assert task_log_records(["plain print\n", "second line\n"]) == [{"event": "plain print\nsecond line"}]
