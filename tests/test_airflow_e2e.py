"""End to end through Airflow: `airflow dags test` of ingest and transform in a throwaway AIRFLOW_HOME and data dir
give the same marts as `regionstat run`, and a second ingest makes no data request and triggers nothing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("airflow")]


def _tail(path: Path | None, n: int = 40) -> str:
    if path is None or not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])


def _clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REGIONSTAT_"))}
    env["REGIONSTAT_DATA_DIR"] = str(data_dir)
    return env


# Imported by every Python process started with this directory on PYTHONPATH: corrupts one source's batches
# (negative values) before they land, so the real GX suite quarantines them.
SITECUSTOMIZE = """
import os
source = os.environ.get("REGIONSTAT_TEST_CORRUPT_SOURCE")
if source:
    import pyarrow.compute as pc
    import extract.landing as landing

    _write_batch_stream = landing.write_batch_stream

    # every batch is written through write_batch_stream (SCB extracts directly, write_batch via it)
    def write_batch_stream(tables, fields, *, settings):
        if fields["source_name"] == source:
            tables = (t.set_column(t.column_names.index("value"), "value", pc.negate(t["value"])) for t in tables)
        return _write_batch_stream(tables, fields, settings=settings)

    landing.write_batch_stream = write_batch_stream
"""


def _live_loads(data: Path) -> dict[str, str]:
    import duckdb

    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "select source_name, load_id from ops.loads where status = 'loaded' "
            "qualify row_number() over (partition by source_name order by loaded_at desc) = 1"
        )
        return dict(rows.fetchall())
    finally:
        con.close()


def test_airflow_dags_test_matches_regionstat_run(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from regionstat.catalogue import load_catalogue
    from regionstat.cli.airflow_local import airflow_env, dags_test, setup

    catalogue = load_catalogue()
    data = tmp_path / "airflow-data"
    env = setup(airflow_env(home=tmp_path / "airflow-home", base=_clean_env(data)), echo=None)

    ingest = dags_test("regionstat_ingest", env)
    assert ingest.ok, f"{ingest.line()}\n{_tail(ingest.log_path)}"
    extracts = ingest.task_states
    assert extracts.get("success", 0) >= 2 * len(catalogue.sources) + 2  # extract + validate per source, load, verdict
    assert not extracts.get("skipped"), ingest.line()  # the verdict is green when nothing failed, not skipped
    from regionstat.cli.airflow_local import task_log_path

    load_log = task_log_path(env, "regionstat_ingest", str(ingest.run_id), "load", -1, 1)
    assert "load: loaded" in load_log.read_text(encoding="utf-8"), "the UI would show an empty task log"

    import duckdb

    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        counts = {
            t: con.execute(f'select count(*) from raw."{t}"').fetchone()[0]
            for t in dict.fromkeys(s.raw_table for s in catalogue.sources)
        }
        loaded = {r[0] for r in con.execute("select source_name from ops.loads where status = 'loaded'").fetchall()}
    finally:
        con.close()
    assert all(n > 0 for n in counts.values()), counts
    assert loaded == {s.name for s in catalogue.sources}

    transform = dags_test("regionstat_transform", env)
    assert transform.ok, f"{transform.line()}\n{_tail(transform.log_path)}"
    airflow_index = json.loads((data / "marts" / "_index.json").read_text())
    assert airflow_index, "no marts published"
    assert (data / "reports" / "index.html").exists()

    # the same pipeline without a scheduler gives byte-identical marts: the session's `regionstat run` (GX docs
    # off) on the same bundled snapshot, asked for only now, so the other worker has usually built it meanwhile
    ref = request.getfixturevalue("built_data")
    assert json.loads((ref / "marts" / "_index.json").read_text()) == airflow_index

    # a second ingest: unchanged upstream everywhere, zero data requests, no asset event, nothing triggered
    again = dags_test("regionstat_ingest", env)
    assert again.ok, f"{again.line()}\n{_tail(again.log_path)}"
    log = again.log_path.read_text(encoding="utf-8", errors="replace")
    assert not re.search(r"fetched \S+: .* data request", log), "a second ingest fetched data"
    unchanged = set(re.findall(r"(\w+): \S+ unchanged upstream .*0 data requests", log))
    assert unchanged == {s.name for s in catalogue.sources}
    assert "no raw table changed" in log

    # the transform run anyway (a manual trigger): its plan finds nothing changed and short-circuits the rest
    idle = dags_test("regionstat_transform", env)
    assert idle.ok, f"{idle.line()}\n{_tail(idle.log_path)}"
    assert idle.task_states.get("success") == 1 and idle.task_states.get("skipped", 0) >= 10, idle.line()
    assert "transform skipped: nothing changed" in idle.log_path.read_text(encoding="utf-8", errors="replace")
    assert json.loads((data / "marts" / "_index.json").read_text()) == airflow_index

    # a forced refetch where one source's batch fails validation: that mapped validate fails with a one-line
    # reason, the others go on, the load runs, the warehouse keeps the good batch, and the run is failed
    live_before = _live_loads(data)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    bad = "land_area_tab628"
    bad_env = {**env, "PYTHONPATH": str(hook), "REGIONSTAT_TEST_CORRUPT_SOURCE": bad}
    forced = dags_test("regionstat_ingest", bad_env, conf={"force": True})
    log = forced.log_path.read_text(encoding="utf-8", errors="replace")
    assert forced.state == "failed" and forced.returncode != 0, forced.line()
    index = [s.name for s in catalogue.sources].index(bad)
    assert forced.failed_tasks == [f"source.validate[{index}]", "verdict"], forced.line()
    assert re.search(rf"{bad} batch \S+ quarantined: \S", log), _tail(forced.log_path)
    assert forced.task_states.get("success", 0) >= 2 * len(catalogue.sources)  # incl. the load
    assert _live_loads(data)[bad] == live_before[bad]  # raw.land_area keeps its last good batch
    assert "no raw table changed" in log  # identical content elsewhere: no asset event, marts untouched
    assert json.loads((data / "marts" / "_index.json").read_text()) == airflow_index
