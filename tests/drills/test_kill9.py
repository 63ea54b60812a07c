"""Slow fault drills (`make drills`): whole `regionstat run`s killed with SIGKILL, two runs at once, and a changed
upstream ``updated`` with the same data. Each compares the published marts (``marts/_index.json`` checksums) with
those of an undisturbed run on the bundled Östergötland snapshot.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tools.snapshot import TABLES_DIR
from tools.snapshot.server import SnapshotServer

pytestmark = [pytest.mark.drill, pytest.mark.xdist_group("drills-slow")]

ROOT = Path(__file__).resolve().parents[2]
REGIONSTAT = str(Path(sys.executable).parent / "regionstat")
RUN = [REGIONSTAT, "run", "--no-docs"]


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, REGIONSTAT_DATA_DIR=str(data), DO_NOT_TRACK="1", DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    env.pop("REGIONSTAT_API_URL", None)
    env.pop("REGIONSTAT_REGION_SET", None)
    env.update(extra)
    return env


def _run(data: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(RUN, env=_env(data, **extra), cwd=ROOT, capture_output=True, text=True, timeout=600)


def _marts(data: Path) -> dict[str, str]:
    return json.loads((data / "marts" / "_index.json").read_text())


def _holder(data: Path) -> str:
    try:
        return json.loads((data / ".state" / "warehouse.lock.holder").read_text()).get("purpose", "")
    except (OSError, ValueError):
        return ""


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data = tmp_path_factory.mktemp("undisturbed") / "data"
    r = _run(data)
    assert r.returncode == 0, r.stderr[-2000:]
    marts = _marts(data)
    assert len(marts) >= 10
    return marts


def _in_extract(data: Path) -> bool:
    return any((data / "landing").rglob("*.manifest.json")) if (data / "landing").exists() else False


def _in_load(data: Path) -> bool:
    return _holder(data) == "load"


def _in_build(data: Path) -> bool:
    return _holder(data).startswith("dbt build")


STAGES: dict[str, tuple[Callable[[Path], bool], float]] = {
    # stage: (how we know the run is in it, how long to let it go on before SIGKILL)
    "extract": (_in_extract, 0.0),
    "load": (_in_load, 0.0),
    "build": (_in_build, 2.0),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_kill9_then_rerun_gives_the_undisturbed_marts(stage: str, tmp_path: Path, undisturbed: dict[str, str]):
    data = tmp_path / "data"
    seen, linger = STAGES[stage]
    proc = subprocess.Popen(RUN, env=_env(data), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while not seen(data):
            assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before reaching {stage}"
            assert time.monotonic() < deadline, f"never saw stage {stage}"
            time.sleep(0.005)
        time.sleep(linger)
        assert proc.poll() is None, f"the run finished before the kill during {stage}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    warehouse = data / "warehouse.duckdb"
    if warehouse.exists():  # whatever is live must be a readable, consistent warehouse
        with duckdb.connect(str(warehouse), read_only=True) as con:
            con.execute("select count(*) from ops.loads").fetchone()
    if stage == "build":
        assert not (data / "marts" / "_index.json").exists()  # nothing published from a half-built warehouse
    r = _run(data)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert _marts(data) == undisturbed
    assert not (data / ".state" / "warehouse.next.duckdb").exists()


def test_two_runs_at_once_both_finish_or_one_refuses_clearly(tmp_path: Path, undisturbed: dict[str, str]):
    data = tmp_path / "data"
    procs = [
        subprocess.Popen(RUN, env=_env(data), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = [p.returncode for p in procs]
    text = "\n".join(o + e for o, e in outs)
    assert "Could not set lock" not in text and "Conflicting lock" not in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert 0 in codes, text[-3000:]
    for (_, err), code in zip(outs, codes, strict=True):
        if code != 0:  # the refusing one says why in its first line
            assert err.strip().splitlines()[0].startswith("error:") and "another run" in err, err
    assert _marts(data) == undisturbed
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        for (table,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'"
        ).fetchall():
            dup = con.execute(
                f'select _source_name from raw."{table}" group by 1 having count(distinct _load_id) > 1'
            ).fetchall()
            assert dup == [], table


def test_changed_updated_with_same_data_refetches_and_marts_stay(tmp_path: Path, undisturbed: dict[str, str]):
    tables = tmp_path / "tables"
    shutil.copytree(TABLES_DIR, tables)
    data = tmp_path / "data"
    with SnapshotServer(tables) as server:
        r = _run(data, REGIONSTAT_API_URL=server.url)
        assert r.returncode == 0, r.stderr[-2000:]
    first = _marts(data)
    assert first == undisturbed
    meta_path = tables / "TAB5839" / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8-sig"))
    meta["updated"] = "2026-01-01T07:00:00Z"
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    with SnapshotServer(tables) as server:
        r = _run(data, REGIONSTAT_API_URL=server.url)
        data_calls = server.stats.data_requests
    assert r.returncode == 0, r.stderr[-2000:]
    assert data_calls == 1  # only the table whose `updated` moved was fetched again
    assert "landed commuting_totals_tab5839" in " ".join(r.stdout.split())
    assert _marts(data) == first
