"""The transform DAG's dbt work without repeats (issue 16): one parse per run reused by the later dbt commands of the
same process, dbt docs from the shared target (no second full parse), and ``dbt_tests`` starting no dbt when the
group tasks already ran every test. On a copy of the session's built data directory, one dbt group, one docs build.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import regionstat.dag_support as ra
from regionstat.settings import Settings
from warehouse import build

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("changes")]  # shares `built_data` with test_changes


def _invocations(settings: Settings) -> list[str]:
    """dbt.log split per invocation (each starts with a ``Running with dbt`` line), oldest first."""
    text = (settings.state_dir / "dbt" / "logs" / "dbt.log").read_text(encoding="utf-8", errors="replace")
    return text.split("Running with dbt=")[1:]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, built_data: Path) -> Settings:
    data = tmp_path_factory.mktemp("reuse") / "data"
    shutil.copytree(built_data, data)
    return Settings(data_dir=data)


def test_a_parse_is_handed_to_the_next_dbt_commands_of_the_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGIONSTAT_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("REGIONSTAT_API_URL", raising=False)
    build.parse_project(settings=settings)
    assert len(build._PARSED) == 1
    group = ra.dbt_group("marts_key_figures")
    assert group["failed"] == 0 and group["passed"] > 0
    assert group["tests_run"] and all(t.startswith(("test.", "unit_test.")) for t in group["tests_run"])
    parse_log, build_log = _invocations(settings)[-2:]
    assert "cli parse" in parse_log
    # the build got the parsed manifest: dbt neither parsed nor even checked its saved parse
    assert "cli build" in build_log and "partial pars" not in build_log.lower()

    docs = build.generate_docs(settings=settings)
    assert docs == settings.docs_dir / "dbt" / "static_index.html" and docs.stat().st_size > 100_000
    for name in build.DOCS_FILES:
        assert (docs.parent / name).is_file(), name
    docs_log = _invocations(settings)[-1]
    assert "cli docs generate" in docs_log and "Starting full parse" not in docs_log
    catalog = json.loads((docs.parent / "catalog.json").read_text(encoding="utf-8"))
    assert any(k.startswith("model.regionstat.mart_") for k in catalog["nodes"])


def test_an_edited_project_file_is_not_covered_by_the_handed_over_parse(settings: Settings) -> None:
    target = settings.state_dir / "dbt" / "target"
    env = build.dbt_env(settings, str(settings.warehouse_path))
    key = build._parsed_key(settings, target, env)
    assert key is not None
    assert build._parsed_key(settings, target, {**env, "REGIONSTAT_DUCKDB_PATH": "other.duckdb"}) != key
    assert build._parsed_key(settings, target / "elsewhere", env) is None  # no saved parse there


def test_dbt_tests_runs_no_dbt_when_the_groups_ran_every_test(settings: Settings, monkeypatch) -> None:
    monkeypatch.setenv("REGIONSTAT_DATA_DIR", str(settings.data_dir))
    manifest = json.loads((settings.state_dir / "dbt" / "target" / "manifest.json").read_text(encoding="utf-8"))
    tests = [u for u, n in manifest["nodes"].items() if n["resource_type"] == "test"] + list(manifest["unit_tests"])
    assert len(tests) > 100
    assert ra._tests_left(settings, set(tests[1:])) == 1
    before = len(_invocations(settings))
    out = ra.dbt_test_all(None, [{"tests_run": tests[:10]}, None, {"tests_run": tests[10:]}])
    assert out["already_run"] == len(tests) and out["failed"] == 0
    assert len(_invocations(settings)) == before  # no dbt started
