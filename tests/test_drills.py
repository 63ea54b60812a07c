"""Fault drills that take seconds (the long ones, kill -9 of whole runs, are in tests/drills/, `make drills`).

Each drill breaks one thing on purpose and asserts a concrete outcome: correct data, or a clear one-line error
that names what failed, with nothing partial landed and the last good warehouse intact.

- two writers at once: the second waits or refuses with WriterBusyError, never a DuckDB lock error;
- a 429 storm, a 503 spell, a slow server, truncated bodies: landed equal to an undisturbed fetch, or a PxWebError
  naming the table and nothing landed;
- a read-only data directory and a full disk (a real tmpfs when we may mount one, else simulated);
- upstream schema drift: a renamed variable, a new value code, a changed ``updated`` with the same data.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from expectations.validate import validate_batch, validate_pending
from extract.pipeline import extract_all, extract_source
from extract.pxweb import PxWebClient, RetryPolicy
from regionstat.batches import batches, latest_batch
from regionstat.cli.main import main as cli
from regionstat.errors import PxWebError, WarehouseWriteError, WriterBusyError
from regionstat.settings import Settings
from tools.snapshot import TABLES_DIR
from tools.snapshot.server import Faults, SnapshotServer
from warehouse.db import connect_reader
from warehouse.load import load_validated

pytestmark = [pytest.mark.xdist_group("drills")]

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.2, read_timeout=5.0)


# ------------------------------------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Östergötland, extracted, validated and loaded (no dbt): the 'last good warehouse' of every drill."""
    data = tmp_path_factory.mktemp("drills") / "base"
    settings = Settings(data_dir=data)
    extract_all(settings=settings)
    assert all(o.success for o in validate_pending(settings, build_docs=False))
    assert load_validated(settings=settings).loaded
    return data


def _copy(base: Path, dst: Path) -> Settings:
    shutil.copytree(base, dst)
    return Settings(data_dir=dst)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pending(settings: Settings, source: str = "population_tab5557") -> str:
    """Land and validate a fresh batch of ``source`` that is not loaded yet; returns its load id."""
    res = extract_source(source, settings=settings, force=True)
    assert res.status == "landed"
    outcome = validate_batch(res.manifest_path, settings=settings)
    assert outcome.success
    return res.manifest_path.name.removesuffix(".manifest.json")


def _landing_files(settings: Settings, raw_table: str, source: str) -> list[str]:
    d = settings.landing_dir / raw_table / source
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def _loaded_ids(settings: Settings) -> set[str]:
    con = connect_reader(settings)
    try:
        return {r[0] for r in con.execute("select load_id from ops.loads where status = 'loaded'").fetchall()}
    finally:
        con.close()


def _raw_rows(settings: Settings, table: str, source: str) -> list[tuple]:
    con = connect_reader(settings)
    try:
        cols = [
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ? "
                "and column_name not in ('_load_id', '_loaded_at', '_source_updated') order by ordinal_position",
                [table],
            ).fetchall()
        ]
        sel = ", ".join(f'"{c}"' for c in cols)
        return con.execute(f'select {sel} from raw."{table}" where _source_name = ? order by all', [source]).fetchall()
    finally:
        con.close()


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path | None]:
    """A tiny tmpfs at ``path`` (root only); yields None when mounting is not possible here."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        yield None
        return
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


# ------------------------------------------------------------------------------------------------ two writers
HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from regionstat.settings import Settings
    from warehouse.db import connect_writer, work_copy
    settings = Settings(data_dir=Path(sys.argv[1]))
    with work_copy(settings, purpose="drill: another run") as path:
        con = connect_writer(path)
        con.execute("create table if not exists ops.drill as select 1 as x")
        con.close()
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
    print("released", flush=True)
    """
)


def test_two_writers_at_once_one_waits_the_other_refuses_clearly(base: Path, tmp_path: Path, monkeypatch, capsys):
    settings = _copy(base, tmp_path / "data")
    load_id = _pending(settings)
    before = _sha(settings.warehouse_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(settings.data_dir), "4"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        # refuses clearly when it may not wait long enough
        with pytest.raises(WriterBusyError) as info:
            load_validated(settings=settings, wait=0.3)
        msg = str(info.value)
        assert "another run" in msg and str(holder.pid) in msg and "drill: another run" in msg
        assert _sha(settings.warehouse_path) == before  # nobody touched the live file
        # the CLI says so in one line and exits 1
        monkeypatch.setenv("REGIONSTAT_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("REGIONSTAT_WRITER_WAIT_SECONDS", "0.3")
        assert cli(["load"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[0].startswith("error:") and "only one writer at a time" in err[0]
        # ... and waits, then proceeds, when it may wait
        summary = load_validated(settings=settings, wait=30)
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
    assert load_id in summary.loaded
    con = connect_reader(settings)
    try:
        assert con.execute("select count(*) from ops.drill").fetchone() == (1,)  # the holder's write survived
        dup = con.execute(
            "select _source_name, count(distinct _load_id) from raw.population "
            "group by 1 having count(distinct _load_id) > 1"
        ).fetchall()
        assert dup == []
    finally:
        con.close()
    assert load_id in _loaded_ids(settings)


# ------------------------------------------------------------------------------------------------ HTTP faults
SOURCE, RAW, TABLE = "population_tab638", "population", "TAB638"


@pytest.fixture(scope="module")
def reference_hash(tmp_path_factory: pytest.TempPathFactory) -> str:
    """content_sha256 of an undisturbed, 3-chunk fetch of TAB638."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("ref") / "data")
    with SnapshotServer(max_data_cells=300) as server:
        client = PxWebClient(server.url, state_dir=False, retry=FAST_RETRY)
        res = extract_source(SOURCE, settings=settings, client=client, base_url=server.url)
        assert res.requests == 3
    return latest_batch(settings, RAW, SOURCE).content_sha256


RECOVERABLE = {
    "429 storm (every 2nd data call)": Faults(rate_limit_every=2, retry_after=1),
    "503 spell (first 3 data calls)": Faults(fail_first_n=3, retry_after=0),
    "truncated body (every 2nd)": Faults(truncate_every=2),
}


@pytest.mark.parametrize("fault", list(RECOVERABLE), ids=list(RECOVERABLE))
def test_transient_faults_end_in_correct_data(fault: str, tmp_path: Path, reference_hash: str):
    settings = Settings(data_dir=tmp_path / "data")
    with SnapshotServer(max_data_cells=300, faults=RECOVERABLE[fault]) as server:
        client = PxWebClient(server.url, state_dir=False, retry=FAST_RETRY)
        res = extract_source(SOURCE, settings=settings, client=client, base_url=server.url)
        bad = server.stats.responses_429 + server.stats.responses_503 + server.stats.truncated_responses
    assert res.status == "landed" and res.requests == 3
    assert bad > 0, "the fault was not exercised"
    assert latest_batch(settings, RAW, SOURCE).content_sha256 == reference_hash


PERMANENT = {
    "429 storm that never ends": (Faults(rate_limit_every=1, retry_after=1), RetryPolicy(max_attempts=3), "429"),
    "503 spell that never ends": (Faults(unavailable_every=1, retry_after=0), FAST_RETRY, "503"),
    "503 mid-fetch, no retries left": (Faults(unavailable_every=2, retry_after=0), RetryPolicy(max_attempts=1), "503"),
    "slow server, short timeout": (
        Faults(delay_seconds=1.5),
        RetryPolicy(max_attempts=2, base_delay=0.05, read_timeout=0.3),
        "timed out",
    ),
    "every body truncated": (Faults(truncate_every=1), FAST_RETRY, "truncated"),
}


@pytest.mark.parametrize("fault", list(PERMANENT), ids=list(PERMANENT))
def test_persistent_faults_fail_clearly_and_land_nothing(fault: str, tmp_path: Path):
    faults, retry, needle = PERMANENT[fault]
    settings = Settings(data_dir=tmp_path / "data")
    with SnapshotServer(max_data_cells=300, faults=faults) as server:
        client = PxWebClient(server.url, state_dir=False, retry=retry)
        with pytest.raises(PxWebError) as info:
            extract_source(SOURCE, settings=settings, client=client, base_url=server.url)
    msg = str(info.value)
    assert "\n" not in msg and f"table {TABLE}" in msg and needle in msg, msg
    assert info.value.table_id == TABLE
    assert _landing_files(settings, RAW, SOURCE) == []  # no partial batch, no temp file


# ------------------------------------------------------------------------------------------------ storage
def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_read_only_data_directory_clear_error_warehouse_intact(base: Path, tmp_path: Path, monkeypatch, capsys):
    with _tmpfs(tmp_path / "mnt", "64m") as mnt:
        settings = _copy(base, (mnt or tmp_path) / "data")
        load_id = _pending(settings)
        before = _sha(settings.warehouse_path)
        if mnt is not None:
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        else:  # simulate: every write under the data directory fails with EROFS
            import warehouse.db as db

            def read_only(*a, **k):
                raise OSError(errno.EROFS, "Read-only file system", str(settings.data_dir))

            monkeypatch.setattr(db.shutil, "copyfile", read_only)
        with pytest.raises(WarehouseWriteError) as info:
            load_validated(settings=settings)
        assert "Read-only file system" in str(info.value) and "last good warehouse is unchanged" in str(info.value)
        assert _sha(settings.warehouse_path) == before
        assert load_id not in _loaded_ids(settings)  # readable, still the last good state
        monkeypatch.setenv("REGIONSTAT_DATA_DIR", str(settings.data_dir))
        monkeypatch.delenv("REGIONSTAT_API_URL", raising=False)
        assert cli(["load"]) == 1
        assert "Read-only file system" in capsys.readouterr().err.strip().splitlines()[0]
        if mnt is not None:
            assert cli(["extract", "--table", "population_tab5557", "--force"]) == 1
            first = capsys.readouterr().err.strip().splitlines()[0]
            assert first.startswith("error:") and "Read-only file system" in first
            assert cli(["status"]) == 0  # analysts can still read


def test_disk_full_clear_error_warehouse_intact_then_recovers(base: Path, tmp_path: Path, monkeypatch):
    with _tmpfs(tmp_path / "mnt", "12m") as mnt:
        settings = _copy(base, (mnt or tmp_path) / "data")
        load_id = _pending(settings)
        before = _sha(settings.warehouse_path)
        filler = (mnt or tmp_path) / "filler"
        if mnt is not None:  # leave less room than a work copy of the warehouse needs
            filler.write_bytes(b"\0" * max(0, _free_bytes(mnt) - settings.warehouse_path.stat().st_size // 3))
        else:
            import warehouse.db as db

            real = db.shutil.copyfile

            def full(src, dst, *a, **k):
                Path(dst).write_bytes(b"\0" * 1024)  # a partial copy, as a full disk leaves it
                raise OSError(errno.ENOSPC, "No space left on device", str(dst))

            monkeypatch.setattr(db.shutil, "copyfile", full)
        with pytest.raises(WarehouseWriteError) as info:
            load_validated(settings=settings)
        assert "No space left on device" in str(info.value)
        assert _sha(settings.warehouse_path) == before
        assert not (settings.state_dir / "warehouse.next.duckdb").exists()  # the partial copy is gone
        assert load_id not in _loaded_ids(settings)
        # room again: the next run finishes the job
        if mnt is not None:
            filler.unlink()
        else:
            monkeypatch.setattr(db.shutil, "copyfile", real)
        assert load_id in load_validated(settings=settings).loaded
        assert load_id in _loaded_ids(settings)


# ------------------------------------------------------------------------------------------------ schema drift
DRIFT_SOURCE, DRIFT_RAW, DRIFT_TABLE = "commuting_totals_tab5839", "commuting_totals", "TAB5839"


def _tables_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "tables"
    shutil.copytree(TABLES_DIR, dst)
    return dst


def _edit_metadata(tables: Path, table: str, fn) -> None:
    p = tables / table / "metadata.json"
    meta = json.loads(p.read_text(encoding="utf-8-sig"))
    fn(meta)
    p.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def _extract_from(tables: Path, settings: Settings, source: str = DRIFT_SOURCE):
    with SnapshotServer(tables) as server:
        client = PxWebClient(server.url, state_dir=False, retry=FAST_RETRY)
        return extract_source(source, settings=settings, client=client, base_url=server.url)


def test_drift_renamed_variable_fails_naming_table_and_variable(base: Path, tmp_path: Path):
    settings = _copy(base, tmp_path / "data")
    tables = _tables_copy(tmp_path)

    def rename(meta: dict) -> None:
        meta["id"] = ["Kön" if d == "Kon" else d for d in meta["id"]]
        meta["dimension"] = {("Kön" if k == "Kon" else k): v for k, v in meta["dimension"].items()}
        meta["updated"] = "2026-01-01T07:00:00Z"

    _edit_metadata(tables, DRIFT_TABLE, rename)
    facts = pq.read_table(tables / DRIFT_TABLE / "facts.parquet")
    pq.write_table(
        facts.rename_columns(["Kön" if c == "Kon" else c for c in facts.column_names]),
        tables / DRIFT_TABLE / "facts.parquet",
    )
    before = _landing_files(settings, DRIFT_RAW, DRIFT_SOURCE)
    with pytest.raises(PxWebError) as info:
        _extract_from(tables, settings)
    msg = str(info.value)
    assert DRIFT_TABLE in msg and "'Kon'" in msg and "Kön" in msg, msg
    assert _landing_files(settings, DRIFT_RAW, DRIFT_SOURCE) == before


def test_drift_new_value_code_is_landed_and_validated(base: Path, tmp_path: Path):
    settings = _copy(base, tmp_path / "data")
    tables = _tables_copy(tmp_path)
    previous = latest_batch(settings, DRIFT_RAW, DRIFT_SOURCE)

    def add_year(meta: dict) -> None:
        cat = meta["dimension"]["Tid"]["category"]
        cat["index"]["2022"] = len(cat["index"])
        cat["label"]["2022"] = "2022"
        meta["size"][meta["id"].index("Tid")] += 1
        meta["updated"] = "2026-01-01T07:00:00Z"

    _edit_metadata(tables, DRIFT_TABLE, add_year)
    facts = pq.read_table(tables / DRIFT_TABLE / "facts.parquet")
    rows = [r for r in facts.to_pylist() if r["Tid"] == "2021"]
    new = [{**r, "Tid": "2022", "value": r["value"] + 1} for r in rows]
    pq.write_table(
        pa.concat_tables([facts, pa.Table.from_pylist(new, schema=facts.schema)]),
        tables / DRIFT_TABLE / "facts.parquet",
    )
    res = _extract_from(tables, settings)
    assert res.status == "landed" and res.rows == previous.rows * 4 // 3
    outcome = validate_batch(res.manifest_path, settings=settings)
    assert outcome.success, outcome.failures
    assert res.manifest_path.name.removesuffix(".manifest.json") in load_validated(settings=settings).loaded
    con = connect_reader(settings)
    try:
        counted = con.execute(
            "select count(value) from raw.commuting_totals where Tid = '2022' and _source_name = ?", [DRIFT_SOURCE]
        ).fetchone()[0]
        assert counted == len(new)
    finally:
        con.close()


def test_drift_changed_updated_same_data_refetched_same_hash(base: Path, tmp_path: Path):
    settings = _copy(base, tmp_path / "data")
    tables = _tables_copy(tmp_path)
    previous = latest_batch(settings, DRIFT_RAW, DRIFT_SOURCE)
    raw_before = _raw_rows(settings, DRIFT_RAW, DRIFT_SOURCE)
    unchanged = _extract_from(tables, settings)
    assert unchanged.status == "skipped_fresh" and unchanged.requests == 0

    def touch(meta: dict) -> None:
        meta["updated"] = "2026-01-01T07:00:00Z"

    _edit_metadata(tables, DRIFT_TABLE, touch)
    res = _extract_from(tables, settings)
    assert res.status == "landed" and res.requests >= 1  # upstream says it changed: re-fetched
    current = latest_batch(settings, DRIFT_RAW, DRIFT_SOURCE)
    assert current.load_id != previous.load_id and current.content_sha256 == previous.content_sha256
    assert validate_batch(res.manifest_path, settings=settings).success
    assert current.load_id in load_validated(settings=settings).loaded
    assert _raw_rows(settings, DRIFT_RAW, DRIFT_SOURCE) == raw_before  # same data in the warehouse
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        vintages = con.execute(
            "select distinct _source_updated from raw.commuting_totals where _source_name = ?", [DRIFT_SOURCE]
        ).fetchall()
    assert vintages == [("2026-01-01T07:00:00Z",)]  # ...but it now cites the new upstream vintage
    assert len(batches(settings.landing_dir / DRIFT_RAW / DRIFT_SOURCE)) == 2
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        n = con.execute("select count(*) from raw.commuting_totals where _source_name = ?", [DRIFT_SOURCE]).fetchone()
    assert n == (len(raw_before),)  # replaced, not duplicated


# ------------------------------------------------------------------------------------------------ full disk, each stage
def _fill(mnt: Path, leave: int) -> Path:
    """Leave about ``leave`` bytes free on the tmpfs at ``mnt``."""
    filler = mnt / "filler"
    filler.write_bytes(b"\0" * max(0, _free_bytes(mnt) - leave))
    return filler


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), captured.err[-3000:]
    return err[0]


def test_disk_full_extract_and_validate_name_the_file(base: Path, tmp_path: Path, monkeypatch, capsys):
    with _tmpfs(tmp_path / "mnt", "64m") as mnt:
        if mnt is None:
            pytest.skip("needs a tmpfs (root)")
        settings = _copy(base, mnt / "data")
        monkeypatch.setenv("REGIONSTAT_DATA_DIR", str(settings.data_dir))
        monkeypatch.delenv("REGIONSTAT_API_URL", raising=False)
        for leave in (0, 8192):  # nothing left; room for the rate-limit state but not for the batch (~16 kB)
            filler = _fill(mnt, leave)
            assert cli(["extract", "--table", "employment_by_sector", "--force"]) == 1
            line = _one_line_error(capsys)
            assert "No space left on device" in line and str(settings.data_dir) in line, line
            filler.unlink()
        res = extract_source("population_tab5557", settings=settings, force=True)  # room again: lands
        assert res.status == "landed"
        filler = _fill(mnt, 0)
        assert cli(["validate"]) == 1
        line = _one_line_error(capsys)
        assert "No space left on device" in line and str(settings.data_dir) in line, line
        filler.unlink()


def test_disk_full_during_load_commit_or_checkpoint_is_one_line(base: Path, tmp_path: Path, monkeypatch, capsys):
    """Sweep the free space from 'the work copy fits' upwards: DuckDB then fails at insert, commit or checkpoint.

    Every outcome must be a load or one line naming the path (never the rollback error that used to mask a
    failed commit), and the live warehouse must be the old one or the new one, readable.
    """
    with _tmpfs(tmp_path / "mnt", "64m") as mnt:
        if mnt is None:
            pytest.skip("needs a tmpfs (root)")
        settings = _copy(base, mnt / "data")
        load_id = _pending(settings)
        before = _sha(settings.warehouse_path)
        size = settings.warehouse_path.stat().st_size
        monkeypatch.setenv("REGIONSTAT_DATA_DIR", str(settings.data_dir))
        errors: list[str] = []
        for extra in range(0, 2_000_000, 250_000):
            filler = _fill(mnt, size + extra)
            code = cli(["load"])
            filler.unlink()
            if code == 0:
                capsys.readouterr()
                break
            line = _one_line_error(capsys)
            errors.append(line)
            assert "No space left on device" in line and str(settings.data_dir) in line, line
            assert "no transaction is active" not in line
            assert _sha(settings.warehouse_path) == before
            assert not (settings.state_dir / "warehouse.next.duckdb").exists()
        assert errors, "the disk was never full enough to fail the load"
        assert load_id in load_validated(settings=settings).loaded or load_id in _loaded_ids(settings)


def test_disk_full_during_dbt_build_is_one_line(base: Path, tmp_path: Path, monkeypatch, capsys):
    with _tmpfs(tmp_path / "mnt", "64m") as mnt:
        if mnt is None:
            pytest.skip("needs a tmpfs (root)")
        settings = _copy(base, mnt / "data")
        before = _sha(settings.warehouse_path)
        monkeypatch.setenv("REGIONSTAT_DATA_DIR", str(settings.data_dir))
        filler = _fill(mnt, settings.warehouse_path.stat().st_size + 1_500_000)  # the copy fits, the marts do not
        assert cli(["build"]) == 1
        line = _one_line_error(capsys)  # also: no flood of logging tracebacks from dbt's file log
        assert "No space left on device" in line and str(settings.data_dir) in line, line
        assert "last good warehouse is unchanged" in line
        assert _sha(settings.warehouse_path) == before
        filler.unlink()
