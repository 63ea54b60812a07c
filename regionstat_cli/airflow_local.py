"""Local Airflow for regionstat: a project-local AIRFLOW_HOME (``.airflow/``, SQLite), the ``duckdb_writer`` pool,
``airflow dags test`` runs, and ``airflow standalone`` on 127.0.0.1:8080.

Used by ``make airflow`` (``python -m regionstat_cli.airflow_local standalone``), ``make demo`` and the end-to-end
test. Subcommands::

    python -m regionstat_cli.airflow_local setup          # migrate the DB, create the pool, serialise the DAGs
    python -m regionstat_cli.airflow_local standalone     # setup + airflow standalone, prints the login
    python -m regionstat_cli.airflow_local test DAG_ID    # setup + airflow dags test DAG_ID
    python -m regionstat_cli.airflow_local env            # print the environment (eval-able)

Explicit environment wins: ``AIRFLOW_HOME``, ``REGIONSTAT_DATA_DIR`` and any ``AIRFLOW__*`` already set are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = PROJECT_ROOT / "dags"
VENV_BIN = Path(sys.executable).parent
POOL = "duckdb_writer"
POOL_SLOTS = 1
POOL_DESCRIPTION = "regionstat: the one DuckDB writer (raw loads, dbt, publish, report) - keep at 1 slot"
HOST = "127.0.0.1"
PORT = 8080
PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"

QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "GX_ANALYTICS_ENABLED": "False",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    "SCARF_ANALYTICS": "false",
}


class AirflowSetupError(RuntimeError):
    """A local Airflow step failed; the message is one line naming the step."""


def airflow_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("AIRFLOW_HOME") or PROJECT_ROOT / ".airflow").resolve()


def airflow_env(
    *,
    home: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    base: Mapping[str, str] | None = None,
    port: int = PORT,
) -> dict[str, str]:
    """The environment for every ``airflow`` process of this project (values already in ``base`` win)."""
    env = dict(os.environ if base is None else base)
    home_path = Path(home).resolve() if home else airflow_home(env)
    env["AIRFLOW_HOME"] = str(home_path)
    if data_dir is not None:
        env["REGIONSTAT_DATA_DIR"] = str(Path(data_dir).resolve())
    else:  # tasks run with another cwd: make the data dir absolute
        env["REGIONSTAT_DATA_DIR"] = str(Path(env.get("REGIONSTAT_DATA_DIR") or PROJECT_ROOT / "data").resolve())
    defaults = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home_path / 'airflow.db'}",
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{port}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        **QUIET_ENV,
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    path = env.get("PATH", "")
    if str(VENV_BIN) not in path.split(os.pathsep):
        env["PATH"] = os.pathsep.join([str(VENV_BIN), path]) if path else str(VENV_BIN)
    return env


def airflow_exe() -> str:
    exe = VENV_BIN / "airflow"
    return str(exe) if exe.exists() else "airflow"


def run_airflow(
    args: Iterable[str],
    env: Mapping[str, str],
    *,
    capture: bool = True,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    cmd = [airflow_exe(), *args]
    proc = subprocess.run(cmd, env=dict(env), capture_output=capture, text=True, timeout=timeout, cwd=PROJECT_ROOT)
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] if capture else []
        raise AirflowSetupError(
            f"`airflow {' '.join(args)}` exited {proc.returncode}" + (f": {tail[0]}" if tail else "")
        )
    return proc


# One process for the three setup commands: each `airflow` process costs seconds to start.
_SETUP_SCRIPT = r"""
import json, sys
from airflow.cli import cli_parser
parser = cli_parser.get_parser()
for argv in json.loads(sys.argv[1]):
    print("regionstat-setup: airflow " + " ".join(argv), flush=True)
    args = parser.parse_args(argv)
    args.func(args)
"""


def setup(env: Mapping[str, str] | None = None, *, echo: Callable[[str], None] | None = print) -> dict[str, str]:
    """``airflow db migrate``, ``airflow pools set duckdb_writer 1``, ``airflow dags reserialize`` (idempotent)."""
    env = airflow_env() if env is None else dict(env)
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    Path(env["REGIONSTAT_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    commands = [
        ["db", "migrate"],
        ["pools", "set", POOL, str(POOL_SLOTS), POOL_DESCRIPTION],
        ["dags", "reserialize"],
    ]
    start = time.perf_counter()
    proc = subprocess.run(
        [str(VENV_BIN / "python"), "-c", _SETUP_SCRIPT, json.dumps(commands)],
        env=env,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    log = home / "setup.log"
    log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        steps = [ln for ln in proc.stdout.splitlines() if ln.startswith("regionstat-setup:")]
        last = steps[-1].split(": ", 1)[1] if steps else "airflow setup"
        err = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        raise AirflowSetupError(f"`{last}` failed: {err[-1] if err else 'see ' + str(log)} (log: {log})")
    errors = import_errors(env)
    if errors:
        first = next(iter(errors.items()))
        raise AirflowSetupError(f"DAG import error in {first[0]}: {first[1].strip().splitlines()[-1]}")
    if echo:
        echo(
            f"airflow: AIRFLOW_HOME={home}, DB migrated, pool {POOL}={POOL_SLOTS}, DAGs serialised "
            f"({time.perf_counter() - start:.1f} s; log {log})"
        )
    return env


def _db_path(env: Mapping[str, str]) -> Path | None:
    conn = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if not conn.startswith("sqlite:///"):
        return None
    return Path(conn.removeprefix("sqlite:///"))


def metadata_query(env: Mapping[str, str], sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of a read-only query (``?`` placeholders) on the metadata DB; [] if it is missing or the query fails."""
    path = _db_path(env)
    if path is None:
        return _sqlalchemy_query(env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", ""), sql, params)
    if not path.exists():
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    except sqlite3.Error:
        return []
    finally:
        con.close()


def _sqlalchemy_query(url: str, sql: str, params: tuple) -> list[tuple]:
    """The same on another metadata DB (PostgreSQL, as in docker-compose.yml), through SQLAlchemy."""
    if not url:
        return []
    import sqlalchemy as sa

    names = iter(range(len(params)))
    stmt = sa.text(re.sub(r"\?", lambda _: f":p{next(names)}", sql))
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    except (sa.exc.SQLAlchemyError, ImportError):
        return []
    try:
        with engine.connect() as con:
            return [tuple(row) for row in con.execute(stmt, {f"p{i}": v for i, v in enumerate(params)})]
    except sa.exc.SQLAlchemyError:
        return []
    finally:
        engine.dispose()


def import_errors(env: Mapping[str, str]) -> dict[str, str]:
    """DAG import errors recorded by the last parse."""
    return {str(f): str(e) for f, e in metadata_query(env, "select filename, stacktrace from import_error")}


def pools(env: Mapping[str, str]) -> dict[str, int]:
    return {str(p): int(s) for p, s in metadata_query(env, "select pool, slots from slot_pool")}


@dataclass
class DagRunSummary:
    dag_id: str
    run_id: str | None
    state: str
    seconds: float
    returncode: int
    log_path: Path | None = None
    task_states: dict[str, int] = field(default_factory=dict)
    failed_tasks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.state == "success"

    def line(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.task_states.items()))
        failed = f"; failed: {', '.join(self.failed_tasks)}" if self.failed_tasks else ""
        return f"{self.dag_id}: {self.state} in {self.seconds:.0f} s ({counts}){failed}"


def latest_run(env: Mapping[str, str], dag_id: str) -> tuple[str | None, str, dict[str, int], list[str]]:
    """(run_id, state, task state counts, failed task ids) of a DAG's latest run, from the metadata DB."""
    rows = metadata_query(env, "select run_id, state from dag_run where dag_id = ? order by id desc limit 1", (dag_id,))
    if not rows:
        return None, "unknown", {}, []
    run_id, state = rows[0]
    tis = metadata_query(
        env,
        "select task_id, map_index, coalesce(state, 'none') from task_instance where dag_id = ? and run_id = ?",
        (dag_id, run_id),
    )
    counts: dict[str, int] = {}
    failed = []
    for task_id, map_index, ti_state in tis:
        counts[ti_state] = counts.get(ti_state, 0) + 1
        if ti_state == "failed":
            failed.append(task_id + (f"[{map_index}]" if map_index is not None and map_index >= 0 else ""))
    return run_id, str(state), counts, sorted(failed)


def dags_test(
    dag_id: str,
    env: Mapping[str, str],
    *,
    log_path: Path | None = None,
    on_line: Callable[[str], None] | None = None,
    conf: dict | None = None,
) -> DagRunSummary:
    """``airflow dags test DAG_ID``: one DagRun in this machine's processes, output to ``log_path``."""
    args = [airflow_exe(), "dags", "test", dag_id]
    if conf:
        args += ["--conf", json.dumps(conf)]
    log_path = log_path or Path(env["AIRFLOW_HOME"]) / "dags-test" / f"{dag_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log_fh:
        proc = subprocess.Popen(
            args,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=PROJECT_ROOT,
            bufsize=1,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log_fh.write(line)
            if on_line:
                on_line(line.rstrip("\n"))
        returncode = proc.wait()
    seconds = time.perf_counter() - start
    run_id, state, counts, failed = latest_run(env, dag_id)
    if state == "unknown":
        state = "success" if returncode == 0 else "failed"
    return DagRunSummary(dag_id, run_id, state, seconds, returncode, log_path, counts, failed)


# ---------------------------------------------------------------------------------------------------------------
# standalone
# ---------------------------------------------------------------------------------------------------------------


def admin_password(env: Mapping[str, str]) -> str | None:
    """The simple auth manager's generated admin password (``PASSWORD_FILE`` in AIRFLOW_HOME)."""
    path = Path(
        env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE") or Path(env["AIRFLOW_HOME"]) / PASSWORD_FILE
    )
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("admin")
    except (OSError, ValueError, AttributeError):
        return None


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def api_ready(port: int = PORT, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/api/v2/version", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def _announce_when_ready(env: Mapping[str, str], port: int, proc: subprocess.Popen, stop: threading.Event) -> None:
    while not stop.is_set() and proc.poll() is None:
        if api_ready(port):
            password = admin_password(env)
            banner = [
                "",
                "=" * 72,
                f"regionstat Airflow UI:  http://{HOST}:{port}",
                f"login:                  admin / {password or '(see ' + PASSWORD_FILE + ' in AIRFLOW_HOME)'}",
                f"AIRFLOW_HOME:           {env['AIRFLOW_HOME']}",
                f"data dir:               {env['REGIONSTAT_DATA_DIR']}",
                "DAGs:                   regionstat_ingest -> regionstat_transform (assets), regionstat_inbox",
                "stop with Ctrl-C",
                "=" * 72,
                "",
            ]
            print("\n".join(banner), flush=True)
            return
        stop.wait(2)


def standalone(env: Mapping[str, str] | None = None, *, port: int = PORT) -> int:
    """setup, then ``airflow standalone`` (api-server on 127.0.0.1:PORT, scheduler, dag-processor, triggerer)."""
    env = airflow_env(port=port) if env is None else dict(env)
    if port_in_use(port):
        raise AirflowSetupError(f"port {port} on {HOST} is already in use (another Airflow?); stop it or pass --port")
    setup(env)
    print(f"starting airflow standalone on http://{HOST}:{port} (AIRFLOW_HOME={env['AIRFLOW_HOME']}) ...", flush=True)
    # Own process group, SIGINT at its default even if we were started in the background: stopping sends
    # SIGINT to the whole group (what Ctrl-C does), so every component shuts down cleanly.
    proc = subprocess.Popen(
        [airflow_exe(), "standalone"],
        env=env,
        cwd=PROJECT_ROOT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    stop = threading.Event()
    watcher = threading.Thread(target=_announce_when_ready, args=(env, port, proc, stop), daemon=True)
    watcher.start()

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        print("stopping airflow standalone ...", flush=True)
        return _stop_group(proc)
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop.set()


def _stop_group(proc: subprocess.Popen) -> int:
    """SIGINT the standalone process group, then SIGTERM, then SIGKILL, waiting in between."""
    for sig, grace in ((signal.SIGINT, 20), (signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
            # the group may outlive its leader for a moment: give the components the same grace
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                os.killpg(proc.pid, 0)
                time.sleep(0.5)
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
    return proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m regionstat_cli.airflow_local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="migrate the metadata DB, create the duckdb_writer pool, serialise the DAGs")
    p = sub.add_parser("standalone", help="setup + airflow standalone on 127.0.0.1 (prints the login)")
    p.add_argument("--port", type=int, default=PORT)
    p = sub.add_parser("test", help="setup + airflow dags test DAG_ID")
    p.add_argument("dag_id")
    p.add_argument("--conf", help="JSON conf for the run, e.g. '{\"force\": true}'")
    sub.add_parser("env", help="print the environment used for airflow commands (shell syntax)")
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            setup()
        elif args.command == "standalone":
            return standalone(airflow_env(port=args.port), port=args.port)
        elif args.command == "test":
            env = setup()
            summary = dags_test(args.dag_id, env, on_line=print, conf=json.loads(args.conf) if args.conf else None)
            print(summary.line())
            return 0 if summary.ok else 1
        elif args.command == "env":
            env = airflow_env()
            for key in sorted(k for k in env if k.startswith(("AIRFLOW", "REGIONSTAT")) or k in QUIET_ENV):
                print(f"export {key}={shlex.quote(env[key])}")
    except AirflowSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
