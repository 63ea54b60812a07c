"""The real scheduler on a real PostgreSQL metadata DB (the one docker-compose.yml uses), no Docker needed.

A throwaway PostgreSQL cluster on 127.0.0.1 (the server binaries on this machine, e.g. Debian's ``postgresql``; as
root the server runs as the ``postgres`` user), the project's own setup against it (``airflow_local.setup``:
migrate, pool ``duckdb_writer``, reserialize), then the components as compose runs them - ``airflow api-server``
(the execution API the tasks talk to), ``airflow scheduler`` (LocalExecutor) and ``airflow dag-processor`` - each
in its own process group, all stopped at the end whatever happens. ``regionstat_ingest`` is triggered with
``airflow dags trigger`` and must succeed and load ``raw.*`` in a throwaway data dir; its asset event must make
the scheduler start ``regionstat_transform``, which must publish marts. About 90 s on its own (setup 3 s, ingest
~22 s, transform ~50 s); skipped only where no PostgreSQL server binaries exist."""

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

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("airflow")]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_TOOLS = ("initdb", "pg_ctl", "postgres")
RUN_ID = "regionstat_pg_scheduler_test"
RUN_TIMEOUT = 150.0


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


def _start(name: str, args: list[str], env: dict[str, str], logs: Path) -> tuple[str, subprocess.Popen, Path]:
    from regionstat_cli.airflow_local import airflow_exe

    log = logs / f"{name}.log"
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.Popen(
            [airflow_exe(), *args],
            env=env,
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: executor workers and task processes go with it
        )
    return name, proc, log


def _stop_all(procs: list[tuple[str, subprocess.Popen, Path]]) -> None:
    """SIGTERM every component's process group, then SIGKILL whatever is left after a grace period."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        alive = []
        for _name, proc, _log in procs:
            try:
                os.killpg(proc.pid, sig)
                alive.append(proc)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if not _group_gone(p)]
            time.sleep(0.2)
        if not alive:
            break
    for _name, proc, _log in procs:
        proc.poll()


def _group_gone(proc: subprocess.Popen) -> bool:
    proc.poll()  # reap the leader so the group can vanish
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return True
    return False


def _tail(path: Path, n: int = 30) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _report(procs: list[tuple[str, subprocess.Popen, Path]], home: Path) -> str:
    parts = [f"--- {name} (exit {proc.poll()}) ---\n{_tail(log)}" for name, proc, log in procs]
    task_logs = sorted((home / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)[-2:]
    parts += [f"--- task log {p.relative_to(home)} ---\n{_tail(p)}" for p in task_logs]
    return "\n".join(parts)


def _check_alive(procs: list[tuple[str, subprocess.Popen, Path]], home: Path) -> None:
    dead = [name for name, proc, _log in procs if proc.poll() is not None]
    assert not dead, f"{', '.join(dead)} exited early\n{_report(procs, home)}"


def _wait_for_run(
    env: dict[str, str], procs: list[tuple[str, subprocess.Popen, Path]], home: Path, dag_id: str, run_id: str
) -> tuple[str | None, list[tuple]]:
    """Poll the metadata DB until the run is success/failed (or RUN_TIMEOUT): its state and task instances."""
    from regionstat_cli.airflow_local import metadata_query

    deadline = time.monotonic() + RUN_TIMEOUT
    state = None
    while time.monotonic() < deadline:
        _check_alive(procs, home)
        rows = metadata_query(env, "select state from dag_run where dag_id = ? and run_id = ?", (dag_id, run_id))
        state = rows[0][0] if rows else None
        if state in ("success", "failed"):
            break
        time.sleep(2)
    tis = metadata_query(
        env, "select task_id, map_index, state from task_instance where dag_id = ? and run_id = ?", (dag_id, run_id)
    )
    return state, sorted(tis, key=lambda t: (t[0], t[1]))


def test_scheduler_runs_ingest_then_transform_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    from extract.catalogue import load_catalogue
    from regionstat_cli.airflow_local import POOL, POOL_SLOTS, airflow_env, api_ready, metadata_query, pools, setup

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

    procs: list[tuple[str, subprocess.Popen, Path]] = []
    try:
        procs.append(_start("api-server", ["api-server"], env, logs))
        procs.append(_start("scheduler", ["scheduler"], env, logs))
        procs.append(_start("dag-processor", ["dag-processor"], env, logs))

        deadline = time.monotonic() + 90
        while not api_ready(port):
            _check_alive(procs, home)
            assert time.monotonic() < deadline, f"api-server not up on {port}\n{_report(procs, home)}"
            time.sleep(1)

        # The manual run takes the logical date of the scheduler's next @monthly run (the latest month, as
        # catchup=False has it): one run per logical date, so unpausing does not also start a scheduled run.
        cli = [str(BIN / "python"), "-c", _CLI_SCRIPT, RUN_ID, next_run.isoformat()]
        steps = subprocess.run(cli, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert steps.returncode == 0, f"airflow CLI failed: {steps.stderr[-3000:]}"

        start = time.monotonic()
        state, tis = _wait_for_run(env, procs, home, "regionstat_ingest", RUN_ID)
        ingest_s = time.monotonic() - start
        assert state == "success", f"ingest run {state} after {ingest_s:.0f} s: {tis}\n{_report(procs, home)}"
        done = [t for t in tis if t[2] == "success"]
        assert len(done) >= 2 * len(catalogue.sources) + 1, tis  # extract + validate per source, load
        assert {t[2] for t in tis} <= {"success", "skipped"}, tis  # verdict skips when nothing failed

        # the load's asset event made the scheduler start the transform DAG, which runs through
        start = time.monotonic()
        transform: list[tuple] = []
        while not transform and time.monotonic() - start < 30:
            transform = metadata_query(
                env, "select run_id, run_type from dag_run where dag_id = ?", ("regionstat_transform",)
            )
            time.sleep(1)
        assert [t[1] for t in transform] == ["asset_triggered"], f"{transform}\n{_report(procs, home)}"
        state, tis = _wait_for_run(env, procs, home, "regionstat_transform", transform[0][0])
        transform_s = time.monotonic() - start
        assert state == "success", f"transform run {state} after {transform_s:.0f} s: {tis}\n{_report(procs, home)}"

        # one ingest run: unpausing did not add a scheduled one
        runs = metadata_query(env, "select run_id from dag_run where dag_id = ?", ("regionstat_ingest",))
        assert runs == [(RUN_ID,)], runs
    finally:
        _stop_all(procs)
    stray = [name for name, proc, _log in procs if not _group_gone(proc)]
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
