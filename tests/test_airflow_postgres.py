"""The real scheduler on a real PostgreSQL metadata DB (the one docker-compose.yml uses), no Docker needed.

A throwaway PostgreSQL cluster on 127.0.0.1 (the server binaries on this machine, e.g. Debian's ``postgresql``; as
root the server runs as the ``postgres`` user), the project's own setup against it (``airflow_local.setup``:
migrate, pool ``duckdb_writer``, reserialize), then the components as ``make airflow`` starts them - ``airflow
api-server`` (the execution API the tasks talk to) first, ``airflow scheduler`` (LocalExecutor) and ``airflow
dag-processor`` once it answers its health endpoint - each in its own process group, all stopped at the end
whatever happens. ``regionstat_ingest`` is triggered with ``airflow dags trigger`` and must succeed and load
``raw.*`` in a throwaway data dir; its asset event must make the scheduler start ``regionstat_transform``, which
must publish marts. About 90 s on an idle machine (setup 3 s, ingest ~22 s, transform ~50 s); the waits fail only
when nothing moves for STALL_LIMIT (or past CEILING), so a loaded machine is slower, not red. Skipped only where
no PostgreSQL server binaries exist."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from regionstat.cli.airflow_local import Component

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("airflow")]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_TOOLS = ("initdb", "pg_ctl", "postgres")
RUN_ID = "regionstat_pg_scheduler_test"
# Waits fail on a stall, not on speed: a loaded 2-core machine makes the runs slower, it must not make them red.
STALL_LIMIT = 300.0  # seconds without any task state, try number or task log size changing
CEILING = 1200.0  # overall, per wait: only a run going round in circles gets here


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bindir() -> Path | None:
    """A directory holding initdb, pg_ctl and postgres: from PATH, else Debian's /usr/lib/postgresql/<major>/bin."""
    candidates = []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=lambda p: int(Path(p).parent.name), reverse=True)]
    for bindir in candidates:
        if all((bindir / tool).is_file() and os.access(bindir / tool, os.X_OK) for tool in PG_TOOLS):
            return bindir
    return None


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root: as root run it as `postgres` (Debian's package user) or `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.fail("running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


def _pg(bindir: Path, user: str | None, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    cmd = [str(bindir / args[0]), *args[1:]]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port> with an empty database `airflow`; its URL."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH or in /usr/lib/postgresql")
    import psycopg2

    user = _server_user()
    # not under pytest's tmp_path: that is 0700 root, and the server may run as another user
    base = Path(tempfile.mkdtemp(prefix="regionstat-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if user:
        entry = pwd.getpwnam(user)
        for path in (base, sock):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(base, 0o700)
    started = False
    try:
        init = _pg(bindir, user, "initdb", "-D", str(data), "-U", "airflow", "-A", "trust", "-E", "UTF8")
        assert init.returncode == 0, f"initdb failed: {init.stderr[-2000:]}"
        for _attempt in range(3):  # the free port may be taken between the probe and the server's bind
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c max_connections=200 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            start = _pg(bindir, user, "pg_ctl", "-D", str(data), "-l", str(base / "server.log"), "-o", options,
                        "-w", "-t", "60", "start")  # fmt: skip
            started = True
            if start.returncode == 0:
                break
            _pg(bindir, user, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
            started = False
        else:
            log = (base / "server.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"PostgreSQL did not start: {start.stderr.strip()}\n{log}")
        con = psycopg2.connect(host="127.0.0.1", port=port, user="airflow", dbname="postgres", connect_timeout=10)
        try:
            con.autocommit = True
            con.cursor().execute("create database airflow")
        finally:
            con.close()
        yield f"postgresql+psycopg2://airflow@127.0.0.1:{port}/airflow"
    finally:
        if started:
            stop = _pg(bindir, user, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop")
            if stop.returncode != 0:  # last resort: the postmaster's pid (first line of postmaster.pid)
                with contextlib.suppress(OSError, ValueError, IndexError):
                    os.kill(int((data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


def _report(procs: list[Component], home: Path) -> str:
    parts = [f"--- {c.name} (exit {c.exited()}) ---\n{c.tail(30)}" for c in procs]
    task_logs = sorted((home / "logs").rglob("attempt=*.log"), key=lambda p: p.stat().st_mtime)[-2:]
    parts += [f"--- task log {p.relative_to(home)} ---\n{_tail(p)}" for p in task_logs]
    return "\n".join(parts)


def _tail(path: Path, n: int = 30) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _group_gone(proc: subprocess.Popen) -> bool:
    proc.poll()  # reap the leader so the group can vanish
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return True
    return False


def _check_alive(procs: list[Component], home: Path) -> None:
    dead = [c.name for c in procs if c.exited() is not None]
    assert not dead, f"{', '.join(dead)} exited early\n{_report(procs, home)}"


class Progress:
    """Fails a wait only when nothing moves: no task state, try number or task log size changed for
    ``STALL_LIMIT`` seconds (a running dbt group writes its log as it goes), or past the overall ``CEILING``.
    A loaded machine makes the run slower, not red."""

    def __init__(self, env: dict[str, str], procs: list[Component], home: Path) -> None:
        self.env, self.procs, self.home = env, procs, home
        self.started = time.monotonic()
        self.last_change = self.started
        self.signature: object = None

    def snapshot(self, dag_id: str, run_id: str | None) -> tuple:
        from regionstat.cli.airflow_local import metadata_query

        tis = metadata_query(
            self.env,
            "select task_id, map_index, state, try_number from task_instance where dag_id = ? and run_id = ?",
            (dag_id, run_id),
        )
        log_sizes = sum(p.stat().st_size for p in (self.home / "logs").rglob("attempt=*.log"))
        return tuple(sorted(tis, key=lambda t: (t[0], t[1]))), log_sizes

    def check(self, what: str, signature: object) -> None:
        """Record the current state; fail if it has not changed for STALL_LIMIT or we are past CEILING."""
        _check_alive(self.procs, self.home)
        now = time.monotonic()
        if signature != self.signature:
            self.signature, self.last_change = signature, now
        stalled = now - self.last_change
        assert stalled < STALL_LIMIT, (
            f"{what}: no progress for {stalled:.0f} s (states: {self.signature})\n{_report(self.procs, self.home)}"
        )
        assert now - self.started < CEILING, (
            f"{what}: still going after {CEILING:.0f} s\n{_report(self.procs, self.home)}"
        )


def _wait_for_run(progress: Progress, dag_id: str, run_id: str) -> tuple[str | None, list[tuple]]:
    """Poll the metadata DB until the run is success/failed, as long as it makes progress: its state and TIs."""
    from regionstat.cli.airflow_local import metadata_query

    while True:
        rows = metadata_query(
            progress.env, "select state from dag_run where dag_id = ? and run_id = ?", (dag_id, run_id)
        )
        state = rows[0][0] if rows else None
        if state in ("success", "failed"):
            break
        progress.check(f"{dag_id} run {run_id} ({state})", (state, progress.snapshot(dag_id, run_id)))
        time.sleep(2)
    tis = metadata_query(
        progress.env,
        "select task_id, map_index, state from task_instance where dag_id = ? and run_id = ?",
        (dag_id, run_id),
    )
    return state, sorted(tis, key=lambda t: (t[0], t[1]))


def test_scheduler_runs_ingest_then_transform_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    from regionstat.catalogue import load_catalogue
    from regionstat.cli.airflow_local import (
        POOL,
        POOL_SLOTS,
        airflow_env,
        metadata_query,
        pools,
        setup,
        start_component,
        stop_components,
        wait_for_api,
    )

    catalogue = load_catalogue()
    t0 = time.monotonic()
    home, data, logs = tmp_path / "airflow-home", tmp_path / "data", tmp_path / "component-logs"
    logs.mkdir()
    port = _free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REGIONSTAT_"))}
    base.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres_url,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # the CLI steps below unpause what this test runs (not regionstat_inbox)
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # every component signs / checks the task JWTs with the same secret (as in compose)
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__API__WORKERS": "1",
        }
    )
    env = airflow_env(home=home, data_dir=data, base=base, port=port)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == postgres_url
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://127.0.0.1:{port}/execution/"
    setup(env, echo=None)
    setup_s = time.monotonic() - t0

    # the project's setup went to PostgreSQL: the one-slot writer pool is there
    (version,) = metadata_query(env, "select version()")[0]
    assert version.startswith("PostgreSQL"), version
    assert pools(env).get(POOL) == POOL_SLOTS, pools(env)
    assert not (home / "airflow.db").exists()
    (next_run,) = metadata_query(env, "select next_dagrun from dag where dag_id = ?", ("regionstat_ingest",))[0]
    assert next_run is not None

    procs: list[Component] = []
    try:
        # as `make airflow` does: the api-server first; the rest once it answers its health endpoint
        procs.append(start_component("api-server", env, logs, echo=None))
        wait_for_api(procs[0], port, ceiling=CEILING)
        procs.append(start_component("scheduler", env, logs, echo=None))
        procs.append(start_component("dag-processor", env, logs, echo=None))

        # The manual run takes the logical date of the scheduler's next @monthly run (the latest month, as
        # catchup=False has it): one run per logical date, so unpausing does not also start a scheduled run.
        cli = [str(BIN / "python"), "-c", _CLI_SCRIPT, RUN_ID, next_run.isoformat()]
        steps = subprocess.run(cli, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert steps.returncode == 0, f"airflow CLI failed: {steps.stderr[-3000:]}"

        start = time.monotonic()
        state, tis = _wait_for_run(Progress(env, procs, home), "regionstat_ingest", RUN_ID)
        ingest_s = time.monotonic() - start
        assert state == "success", f"ingest run {state} after {ingest_s:.0f} s: {tis}\n{_report(procs, home)}"
        done = [t for t in tis if t[2] == "success"]
        assert len(done) >= 2 * len(catalogue.sources) + 1, tis  # extract + validate per source, load
        assert {t[2] for t in tis} <= {"success", "skipped"}, tis  # verdict skips when nothing failed

        # the load's asset event made the scheduler start the transform DAG, which runs through
        start = time.monotonic()
        progress = Progress(env, procs, home)
        transform: list[tuple] = []
        while not transform:
            progress.check("waiting for the asset-triggered regionstat_transform run", transform)
            transform = metadata_query(
                env, "select run_id, run_type from dag_run where dag_id = ?", ("regionstat_transform",)
            )
            time.sleep(1)
        assert [t[1] for t in transform] == ["asset_triggered"], f"{transform}\n{_report(procs, home)}"
        state, tis = _wait_for_run(progress, "regionstat_transform", transform[0][0])
        transform_s = time.monotonic() - start
        assert state == "success", f"transform run {state} after {transform_s:.0f} s: {tis}\n{_report(procs, home)}"

        # one ingest run: unpausing did not add a scheduled one
        runs = metadata_query(env, "select run_id from dag_run where dag_id = ?", ("regionstat_ingest",))
        assert runs == [(RUN_ID,)], runs
    finally:
        stop_components([c for c in procs if c.name != "api-server"])
        stop_components([c for c in procs if c.name == "api-server"])
    stray = [c.name for c in procs if not _group_gone(c.proc)]
    assert not stray, f"process groups left running: {stray}"

    import duckdb

    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        linkoping = con.execute("select value from raw.population where Region = '0580' and Tid = '2024'").fetchall()
        tables = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            ).fetchall()
        }
    finally:
        con.close()
    assert linkoping == [(168035.0,)]
    assert tables >= {s.raw_table for s in catalogue.sources}
    assert json.loads((data / "marts" / "_index.json").read_text()), "no marts published"
    print(
        f"scheduler on PostgreSQL: setup {setup_s:.0f} s, ingest {ingest_s:.0f} s, transform {transform_s:.0f} s, "
        f"total {time.monotonic() - t0:.0f} s"
    )


# One Python process for the three CLI steps (each `airflow` process costs seconds to start): the transform DAG
# unpaused so the asset event can trigger it, a manual ingest run, then ingest unpaused so the scheduler runs it.
_CLI_SCRIPT = """
import sys
from airflow.cli import cli_parser
parser = cli_parser.get_parser()
for argv in (
    ["dags", "unpause", "regionstat_transform"],
    ["dags", "trigger", "regionstat_ingest", "--run-id", sys.argv[1], "--logical-date", sys.argv[2]],
    ["dags", "unpause", "regionstat_ingest"],
):
    args = parser.parse_args(argv)
    args.func(args)
"""
