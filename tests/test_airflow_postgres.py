"""The real scheduler with compose's ``celery`` profile on a real PostgreSQL metadata DB, no Docker needed.

What a team that outgrows one machine runs (README "Scaling out: Celery"), with docker-compose.yml's settings
(executor ``CeleryExecutor``, broker ``redis://…/0``, result backend ``db+postgresql://`` on the metadata DB,
workers ``airflow celery worker``), all on loopback: a throwaway PostgreSQL cluster (the server binaries on this
machine, Debian's ``postgresql``; as root the server runs as the ``postgres`` user) and a throwaway Redis (Debian's
``redis-server``); ``make test`` installs both as root where missing, otherwise the test is skipped and says why.
The project's own setup runs against PostgreSQL (``airflow_local.setup``: migrate, pool ``duckdb_writer``,
reserialize), then the components as ``make airflow`` starts them - ``airflow api-server`` (the execution API the
tasks talk to) first, the scheduler and dag-processor once it answers its health endpoint - plus two Celery
workers with distinct names (``celery-a@…``, ``celery-b@…``) sharing one data dir, as workers sharing one
``./data`` volume do; each in its own process group, all stopped at the end whatever happens.

``regionstat_ingest`` is triggered with ``airflow dags trigger`` and must succeed and load ``raw.*``; its asset
event must make the scheduler start ``regionstat_transform``, which must publish marts; each worker's own log must
show it executed tasks of the runs (the work really was spread), and together they ran every task that ran. The
one-slot pool ``duckdb_writer`` still serialises the DuckDB writers: the scheduler hands out its slot, whichever
worker runs the task. The waits fail only when nothing moves for STALL_LIMIT (or past CEILING), so a loaded machine
is slower, not red.

One scheduler test, not two: the LocalExecutor (``make airflow``, compose's default profile) runs end to end in
tests/test_airflow_standalone.py, so a second PostgreSQL run with LocalExecutor would add minutes and little."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import re
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
RUN_ID = "regionstat_celery_scheduler_test"
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


WORKERS = ("celery-a", "celery-b")
WORKER_CONCURRENCY = 2  # 2 x 2 slots for 9 parallel extracts: both workers must take some
REDIS_START_CEILING = 60.0  # seconds for redis-server to answer PING; it usually takes well under one
# what the Celery provider logs when a worker starts a task (airflow.providers.celery ... execute_workload)
EXECUTING = re.compile(r"Executing workload in Celery: .*?task_id='([^']+)'.*?dag_id='([^']+)'.*?run_id='([^']+)'")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A throwaway Redis on 127.0.0.1:<free port> (no persistence, no other clients); its broker URL."""
    server = shutil.which("redis-server", path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/bin")
    if server is None:
        pytest.skip("no redis-server: `make test` installs Debian's redis-server when run as root")
    import redis

    base = Path(tempfile.mkdtemp(prefix="regionstat-redis-"))
    proc: subprocess.Popen | None = None
    try:
        for _attempt in range(3):  # the free port may be taken between the probe and the server's bind
            port = _free_port()
            argv = [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                    "--dir", str(base), "--logfile", str(base / "redis.log"), "--daemonize", "no"]  # fmt: skip
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
            client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=2)
            deadline = time.monotonic() + REDIS_START_CEILING
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    if client.ping():
                        break
                except redis.exceptions.ConnectionError:
                    time.sleep(0.2)
            client.close()
            if proc.poll() is None:
                break
        else:
            log = (base / "redis.log").read_text(errors="replace")[-2000:] if (base / "redis.log").exists() else ""
            pytest.fail(f"redis-server did not start on 127.0.0.1: {log}")
        assert proc.poll() is None, "redis-server exited"
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


def celery_env(env: dict[str, str], *, broker_url: str, metadata_url: str) -> dict[str, str]:
    """Compose's Celery settings (docker-compose.yml x-airflow-env) on top of the project's Airflow env."""
    assert metadata_url.startswith("postgresql+psycopg2://"), metadata_url
    return {
        **env,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+postgresql" + metadata_url.removeprefix("postgresql+psycopg2"),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
    }


def executed_by_worker(workers: list[Component], run_ids: set[str]) -> dict[str, set[tuple[str, str]]]:
    """(dag_id, task_id) of the tasks of ``run_ids`` each worker's log says it executed."""
    out: dict[str, set[tuple[str, str]]] = {}
    for worker in workers:
        text = worker.log_path.read_text(encoding="utf-8", errors="replace")
        out[worker.name] = {(m[2], m[1]) for m in EXECUTING.finditer(text) if m[3] in run_ids}
    return out


def test_scheduler_with_two_celery_workers_runs_ingest_then_transform_on_postgresql(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
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
            # the CLI steps below unpause what this test runs (not regionstat_inbox)
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # every component signs / checks the task JWTs with the same secret (as in compose)
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__API__WORKERS": "1",
        }
    )
    env = celery_env(
        airflow_env(home=home, data_dir=data, base=base, port=port), broker_url=redis_url, metadata_url=postgres_url
    )
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
    workers: list[Component] = []
    try:
        # as `make airflow` does: the api-server first; the rest once it answers its health endpoint
        procs.append(start_component("api-server", env, logs, echo=None))
        wait_for_api(procs[0], port, ceiling=CEILING)
        procs.append(start_component("scheduler", env, logs, echo=None))
        procs.append(start_component("dag-processor", env, logs, echo=None))
        for name in WORKERS:
            # each worker serves its task logs on its own port (in compose, each container has its own 8793)
            worker_env = {**env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port())}
            worker = start_component(f"celery worker --celery-hostname {name}@%h", worker_env, logs / name, echo=None)
            workers.append(worker)
            procs.append(worker)

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
        transform_run = transform[0][0]
        state, transform_tis = _wait_for_run(progress, "regionstat_transform", transform_run)
        transform_s = time.monotonic() - start
        assert state == "success", (
            f"transform run {state} after {transform_s:.0f} s: {transform_tis}\n{_report(procs, home)}"
        )

        # one ingest run: unpausing did not add a scheduled one
        runs = metadata_query(env, "select run_id from dag_run where dag_id = ?", ("regionstat_ingest",))
        assert runs == [(RUN_ID,)], runs
    finally:
        stop_components([c for c in procs if c.name != "api-server"])
        stop_components([c for c in procs if c.name == "api-server"])
    stray = [c.name for c in procs if not _group_gone(c.proc)]
    assert not stray, f"process groups left running: {stray}"

    # both workers ran tasks, and together they ran every task that ran (none ran anywhere else)
    by_worker = executed_by_worker(workers, {RUN_ID, transform_run})
    counts = {w.split()[-1]: len(t) for w, t in by_worker.items()}
    assert all(counts.values()), f"a worker ran no task: {counts}"
    ran = {("regionstat_ingest", t[0]) for t in tis if t[2] == "success"}
    ran |= {("regionstat_transform", t[0]) for t in transform_tis if t[2] == "success"}
    assert set().union(*by_worker.values()) >= ran, ran - set().union(*by_worker.values())

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
        f"CeleryExecutor on PostgreSQL, tasks per worker {counts}: setup {setup_s:.0f} s, ingest {ingest_s:.0f} s, "
        f"transform {transform_s:.0f} s, total {time.monotonic() - t0:.0f} s"
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
