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
