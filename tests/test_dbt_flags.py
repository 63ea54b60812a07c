"""dbt options travel as dbt's own command-line flags (``--indirect-selection``), not through ``os.environ``.

Real dbt: ``dbt ls`` over the project lists which tests a selection would run under each indirect-selection mode.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from regionstat.settings import Settings
from warehouse.build import dbt_args, dbt_env

pytestmark = pytest.mark.slow

SELECT = "+mart_population_growth"


def _listed_tests(settings: Settings, tmp_path: Path, mode: str | None) -> list[str]:
    from dbt.cli.main import dbtRunner

    args = dbt_args(
        "ls",
        settings,
        ["--select", SELECT, "--resource-type", "test", "--output", "name"],
        target=tmp_path / "target",
        indirect_selection=mode,  # type: ignore[arg-type]
    )
    res = dbtRunner().invoke(args)
    assert res.success, res.exception
    return sorted(res.result or [])


def test_indirect_selection_is_passed_as_a_dbt_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    for var, value in dbt_env(settings, str(tmp_path / "ls.duckdb")).items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("DBT_INDIRECT_SELECTION", raising=False)
    eager = _listed_tests(settings, tmp_path, None)
    assert eager, f"no tests attached to {SELECT}"
    assert _listed_tests(settings, tmp_path, "empty") == []
    assert set(_listed_tests(settings, tmp_path, "buildable")) <= set(eager)
    assert "DBT_INDIRECT_SELECTION" not in os.environ
    assert "--no-send-anonymous-usage-stats" in dbt_args("build", settings)
