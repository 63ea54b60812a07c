"""Local Airflow for regionstat: a project-local AIRFLOW_HOME (``.airflow/``, SQLite), the ``duckdb_writer`` pool,
``airflow dags test`` runs, and a standalone Airflow on 127.0.0.1:8080 that starts the api-server first.

Used by ``make airflow`` (``python -m regionstat.cli.airflow_local standalone``), ``make demo`` and the end-to-end
test. Subcommands::

    python -m regionstat.cli.airflow_local setup          # migrate the DB, create the pool, serialise the DAGs
    python -m regionstat.cli.airflow_local standalone     # setup + api-server, once it answers the others; login
    python -m regionstat.cli.airflow_local test DAG_ID    # setup + airflow dags test DAG_ID
    python -m regionstat.cli.airflow_local env            # print the environment (eval-able)

Explicit environment wins: ``AIRFLOW_HOME``, ``REGIONSTAT_DATA_DIR`` and any ``AIRFLOW__*`` already set are kept.
The admin password file and ``airflow.cfg`` (Fernet key, JWT secret) in AIRFLOW_HOME are kept owner-only (0600).
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
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from regionstat.settings import PROJECT_ROOT

DAGS_FOLDER = PROJECT_ROOT / "dags"
VENV_BIN = Path(sys.executable).parent
POOL = "duckdb_writer"
POOL_SLOTS = 1
POOL_DESCRIPTION = "regionstat: the one DuckDB writer (raw loads, dbt, publish, report) - keep at 1 slot"
HOST = "127.0.0.1"
PORT = 8080
# Airflow's own defaults for the log servers (scheduler/worker, triggerer); a second checkout needs other ports
WORKER_LOG_PORT_VAR = "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"
TRIGGER_LOG_PORT_VAR = "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"
LOG_PORTS = {WORKER_LOG_PORT_VAR: 8793, TRIGGER_LOG_PORT_VAR: 8794}
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
    worker_log_port: int | None = None,
    trigger_log_port: int | None = None,
) -> dict[str, str]:
    """The environment for every ``airflow`` process of this project (values already in ``base`` win).

    The log-server ports default to Airflow's 8793/8794 unless ``base`` sets their ``AIRFLOW__LOGGING__*`` variables;
    ``worker_log_port``/``trigger_log_port`` override both, so two checkouts on one machine need not clash.
    """
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
        # a task supervisor retries the execution API for minutes, not Airflow's default ~30 s: on a busy
        # machine an api-server restart or slow start must not fail tasks before they run
        "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
        "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX": "60",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        **{var: str(default) for var, default in LOG_PORTS.items()},
        **QUIET_ENV,
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    for var, chosen in ((WORKER_LOG_PORT_VAR, worker_log_port), (TRIGGER_LOG_PORT_VAR, trigger_log_port)):
        if chosen is not None:
            env[var] = str(chosen)
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
        ["dags", "list-import-errors", "-o", "json"],  # last: its JSON is what follows the last step marker
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
    secure_credentials(env)
    errors = _import_errors_from(proc.stdout.rsplit("regionstat-setup:", 1)[-1], log)
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
    """Rows of a read-only query (``?`` placeholders) on the metadata DB; [] if it is missing or the query fails.

    For tests that inspect Airflow's state; this module itself reads run states through Airflow's CLI
    (:func:`airflow_json`) and REST API (:class:`AirflowRest`), not its tables."""
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


def _json_rows(stdout: str, what: str) -> list[dict[str, Any]]:
    """The JSON list an ``airflow ... -o json`` command printed (log lines before it are skipped)."""
    start = next((m.start() for m in re.finditer(r"^\[", stdout, re.M)), None)
    if start is None:
        raise AirflowSetupError(f"`{what}` printed no JSON list")
    try:
        rows, _end = json.JSONDecoder().raw_decode(stdout[start:])
    except json.JSONDecodeError as exc:
        raise AirflowSetupError(f"`{what}` printed malformed JSON: {exc}") from exc
    if not isinstance(rows, list):
        raise AirflowSetupError(f"`{what}` printed {type(rows).__name__}, not a JSON list")
    return rows


def airflow_json(env: Mapping[str, str], args: list[str], *, timeout: float | None = 300) -> list[dict[str, Any]]:
    """Rows of an Airflow CLI listing (``airflow ARGS -o json``): Airflow's own interface to its metadata."""
    proc = run_airflow([*args, "-o", "json"], env, timeout=timeout)
    return _json_rows(proc.stdout, f"airflow {' '.join(args)} -o json")


def _import_errors_from(stdout: str, log: Path) -> dict[str, str]:
    return {
        str(row.get("filepath", "?")): str(row.get("error", ""))
        for row in _json_rows(stdout, f"airflow dags list-import-errors -o json (log: {log})")
    }


def import_errors(env: Mapping[str, str]) -> dict[str, str]:
    """DAG import errors recorded by the last parse (``airflow dags list-import-errors``)."""
    return {
        str(row.get("filepath", "?")): str(row.get("error", ""))
        for row in airflow_json(env, ["dags", "list-import-errors"])
    }


def pools(env: Mapping[str, str]) -> dict[str, int]:
    """Pool name -> slots (``airflow pools list``)."""
    return {str(row["pool"]): int(row["slots"]) for row in airflow_json(env, ["pools", "list"])}


def dag_ids(env: Mapping[str, str]) -> list[str]:
    """The serialised, non-stale DAGs (``airflow dags list``)."""
    return sorted(str(row["dag_id"]) for row in airflow_json(env, ["dags", "list"]) if not row.get("is_stale"))


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
    """(run_id, state, task state counts, failed task ids) of a DAG's latest run, through Airflow's CLI
    (``dags list-runs`` and ``tasks states-for-dag-run``, ``-o json``); state "unknown" if there is no run."""
    try:
        runs = airflow_json(env, ["dags", "list-runs", dag_id])  # newest first (by run_after)
    except AirflowSetupError:
        return None, "unknown", {}, []
    if not runs:
        return None, "unknown", {}, []
    run_id, state = str(runs[0]["run_id"]), str(runs[0]["state"])
    counts: dict[str, int] = {}
    failed = []
    for ti in airflow_json(env, ["tasks", "states-for-dag-run", dag_id, run_id]):
        ti_state = ti.get("state") or "none"
        counts[ti_state] = counts.get(ti_state, 0) + 1
        if ti_state == "failed":
            map_index = ti.get("map_index") or ""
            failed.append(str(ti["task_id"]) + (f"[{map_index}]" if map_index else ""))
    return run_id, state, counts, sorted(failed)


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
    if run_id is not None:
        split_task_logs(env, dag_id, run_id, log_path)
    return DagRunSummary(dag_id, run_id, state, seconds, returncode, log_path, counts, failed)


_DAG_TEST_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+) map_index=(-?\d+)")
# structlog's console line, as `dags test` prints it: "<timestamp> [<level>   ] <event>   [<logger>] key=value ..."
_CONSOLE_LINE = re.compile(
    r"^(?P<timestamp>\d{4}-\d\d-\d\dT\d\d:\d\d:[\d.]+(?:Z|[+-]\d\d:?\d\d)?) \[(?P<level>[a-z]+)\s*\] "
)
_LOGGER = re.compile(r"\s+\[(?P<logger>[\w.]+)\](?=\s+\w+=|\s*$)")  # [dotted.name] before key=value fields
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def task_log_records(lines: Iterable[str]) -> list[dict[str, str]]:
    """``dags test`` console lines as Airflow's own task-log records (JSON lines: timestamp, level, event, logger).

    Copied as text, every line would be one level-less event in the UI (no INFO/WARNING/ERROR, no level or source
    filter). A line that does not start a record (a traceback, a message over several lines) continues the one
    before it; nothing is dropped. The key=value fields stay at the end of the event, as the console shows them.
    """
    records: list[dict[str, str]] = []
    for raw in lines:
        line = _ANSI.sub("", raw.rstrip("\n"))
        start = _CONSOLE_LINE.match(line)
        if start is None:
            if records:
                records[-1]["event"] += "\n" + line
            else:
                records.append({"event": line})
            continue
        rest = line[start.end() :]
        record = {"timestamp": start["timestamp"], "level": start["level"], "event": rest.rstrip()}
        loggers = list(_LOGGER.finditer(rest))  # the last one: an event may hold [brackets] of its own
        if loggers:
            fields = rest[loggers[-1].end() :].strip()
            record["event"] = rest[: loggers[-1].start()].rstrip() + (f" {fields}" if fields else "")
            record["logger"] = loggers[-1]["logger"]
        records.append(record)
    return records


def split_task_logs(env: Mapping[str, str], dag_id: str, run_id: str, log_path: Path) -> list[Path]:
    """Copy each task attempt's part of a ``dags test`` output to where the UI reads task logs.

    ``airflow dags test`` runs the tasks one after another in its own process and logs to its stdout only, so the
    UI would show empty task logs for demo runs. Each task's part starts at its ``[DAG TEST] starting`` line; the
    n-th start of the same task instance is attempt n (a retry). Written as Airflow's JSON records
    (``task_log_records``), so the UI shows each line's level. Returns the files written."""
    written: list[Path] = []
    attempts: dict[tuple[str, int], int] = {}
    current: list[str] | None = None
    target: Path | None = None

    def flush() -> None:
        if current is not None and target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            records = task_log_records(current)
            target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
            written.append(target)

    with log_path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = _DAG_TEST_START.search(line)
            if m:
                flush()
                key = (m.group(1), int(m.group(2)))
                attempts[key] = attempts.get(key, 0) + 1
                target = task_log_path(env, dag_id, run_id, key[0], key[1], attempts[key])
                current = []
            if current is not None:
                current.append(line)
    flush()
    return written


# ---------------------------------------------------------------------------------------------------------------
# standalone: the api-server first, the rest once it answers
# ---------------------------------------------------------------------------------------------------------------

HEALTH_PATH = "/api/v2/monitor/health"
AFTER_API = ("scheduler", "dag-processor", "triggerer")
API_START_CEILING = 600.0  # seconds: only a hung api-server gets here; it usually answers within 10-40 s
FAILED_BEFORE_START = "state mismatch"  # Airflow's audit-log event for "executor failed it while still queued"
_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception|Refused|Timeout)\w*: .+")


def credential_files(env: Mapping[str, str]) -> list[Path]:
    """The local files holding secrets: the admin password file and ``airflow.cfg`` (Fernet key, JWT secret)."""
    home = Path(env["AIRFLOW_HOME"])
    password = env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE") or home / PASSWORD_FILE
    config = env.get("AIRFLOW_CONFIG") or home / "airflow.cfg"
    return [Path(password), Path(config)]


def secure_credentials(env: Mapping[str, str]) -> list[Path]:
    """Make the credential files owner-only (0600): the password file is created empty, so Airflow writes the
    generated admin password into a file nobody else can read (Airflow would create it 0644)."""
    password_file, config = credential_files(env)
    password_file.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    secured = []
    for path in (password_file, config):
        if path.exists():
            path.chmod(0o600)
            secured.append(path)
    return secured


def admin_password(env: Mapping[str, str]) -> str | None:
    """The simple auth manager's generated admin password (``PASSWORD_FILE`` in AIRFLOW_HOME)."""
    try:
        return json.loads(credential_files(env)[0].read_text(encoding="utf-8")).get("admin")
    except (OSError, ValueError, AttributeError):
        return None


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def log_port_clashes(env: Mapping[str, str]) -> list[str]:
    """One warning line per log-server port something already listens on (most likely another checkout's Airflow).

    Not fatal, as in Airflow itself: tasks still run and their finished logs are read from files, but the UI would ask
    the other Airflow's log server for a running task's log.
    """
    clashes = []
    for var, what, make_var in (
        (WORKER_LOG_PORT_VAR, "worker log server", "WORKER_LOG_PORT"),
        (TRIGGER_LOG_PORT_VAR, "triggerer log server", "TRIGGER_LOG_PORT"),
    ):
        number = int(env[var])
        if port_in_use(number):
            clashes.append(
                f"warning: port {number} on {HOST} ({what}) is already in use (another Airflow?); live task logs "
                f"may not show in the UI: choose another with make airflow {make_var}=... (or {var})"
            )
    return clashes


def api_health(port: int = PORT, timeout: float = 2.0) -> dict[str, Any] | None:
    """The api-server's health document (``GET /api/v2/monitor/health``) once it answers 200, else None."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{HEALTH_PATH}", timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}") if resp.status == 200 else None
    except (OSError, ValueError):
        return None


def api_ready(port: int = PORT, timeout: float = 2.0) -> bool:
    return api_health(port, timeout) is not None


def execution_api_answers(url: str, timeout: float = 2.0) -> bool:
    """Whether the execution API the task supervisors use (``<url>health``) answers 200."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


@dataclass
class Component:
    """One Airflow component in its own process group; its output goes to ``log_path`` (and the console)."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    last_error: str = ""  # the last exception line it printed (e.g. ``httpx.ConnectError: ...``)
    reader: threading.Thread | None = None

    def exited(self) -> int | None:
        return self.proc.poll()

    def tail(self, n: int = 15) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


def start_component(
    name: str, env: Mapping[str, str], log_dir: Path, *, echo: Callable[[str], None] | None = print
) -> Component:
    """``airflow <name>`` in its own session (a terminal's Ctrl-C reaches only us: we stop it in order).

    Its log is owner-only: the api-server prints the admin password it generates on first start.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_dir.chmod(0o700)
    proc = subprocess.Popen(
        [airflow_exe(), *name.split()],
        env=dict(env),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
    )
    component = Component(name, proc, log_dir / f"{name}.log")
    component.reader = threading.Thread(target=_pump, args=(component, echo), daemon=True)
    component.reader.start()
    return component


def _pump(component: Component, echo: Callable[[str], None] | None) -> None:
    assert component.proc.stdout is not None
    fd = os.open(component.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with open(fd, "w", encoding="utf-8") as log_fh:
        for line in component.proc.stdout:
            log_fh.write(line)
            log_fh.flush()
            text = line.rstrip("\n")
            if _EXCEPTION_LINE.match(text):
                component.last_error = text
            if echo:
                echo(f"{component.name:13} | {text}")


def wait_for_api(api: Component, port: int, *, ceiling: float = API_START_CEILING) -> dict[str, Any]:
    """Poll the health endpoint until it answers 200; fail at once if the api-server exits."""
    deadline = time.monotonic() + ceiling
    while True:
        health = api_health(port)
        if health is not None:
            return health
        code = api.exited()
        if code is not None:
            raise AirflowSetupError(
                f"api-server exited {code} before answering {HEALTH_PATH}: "
                f"{api.last_error or api.tail(1) or 'no output'} (log: {api.log_path})"
            )
        if time.monotonic() > deadline:
            raise AirflowSetupError(
                f"api-server on {HOST}:{port} did not answer {HEALTH_PATH} within {ceiling:.0f} s (log: {api.log_path})"
            )
        time.sleep(1)


def task_log_path(
    env: Mapping[str, str], dag_id: str, run_id: str, task_id: str, map_index: int | None, attempt: int
) -> Path:
    """Where Airflow writes a task attempt's log (the default ``log_filename_template``)."""
    base = Path(env.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER") or Path(env["AIRFLOW_HOME"]) / "logs")
    path = base / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    if map_index is not None and map_index >= 0:
        path = path / f"map_index={map_index}"
    return path / f"attempt={attempt}.log"


class AirflowRest:
    """Airflow's public REST API (``/api/v2``) as the simple auth manager's admin: a token from ``/auth/token``,
    renewed once when the API answers 401."""

    def __init__(self, env: Mapping[str, str], port: int = PORT, timeout: float = 10.0) -> None:
        self.env, self.base, self.timeout = env, f"http://{HOST}:{port}", timeout
        self._token: str | None = None

    def _login(self) -> str:
        body = json.dumps({"username": "admin", "password": admin_password(self.env) or ""}).encode()
        req = urllib.request.Request(
            f"{self.base}/auth/token", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return str(json.loads(resp.read())["access_token"])

    def get(self, path: str, **params: str | int) -> dict[str, Any]:
        """GET ``/api/v2/<path>`` with query ``params``; raises OSError (URLError, HTTPError) when it fails."""
        url = f"{self.base}/api/v2/{path}?{urllib.parse.urlencode(params)}"
        for attempt in (1, 2):
            self._token = self._token or self._login()
            req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._token}"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return dict(json.loads(resp.read()))
            except urllib.error.HTTPError as exc:
                if exc.code != 401 or attempt == 2:
                    raise
                self._token = None
        raise AssertionError("unreachable")


class FailedBeforeStartWatcher:
    """Explains, in the task's own log, a task that failed before its code ran.

    When the task supervisor cannot reach the execution API (api-server down or not up yet), it kills the task
    process before the task starts and the exception goes to the scheduler's output only: the task log shows
    nothing after ``::group::Pre Execute``. Airflow records such a task as a "state mismatch" audit-log event,
    read here through the REST API (``/api/v2/eventLogs``); for each new one this appends the likely cause (the
    scheduler's last exception line, whether the execution API answers now, where the scheduler log is) to the
    task log, as a JSON line like Airflow's own.
    """

    def __init__(
        self, env: Mapping[str, str], scheduler: Component, echo: Callable[[str], None] | None, api: AirflowRest
    ) -> None:
        self.env, self.scheduler, self.echo, self.api = env, scheduler, echo, api
        newest = self._events(limit=1, order_by="-id")
        self.last_id = int(newest[0]["event_log_id"]) if newest else 0

    def _events(self, **params: str | int) -> list[dict[str, Any]]:
        try:
            return list(self.api.get("eventLogs", **params).get("event_logs") or [])
        except (OSError, ValueError, KeyError):  # api-server busy or restarting: the next poll catches up
            return []

    def poll(self) -> list[Path]:
        events = self._events(event=FAILED_BEFORE_START, order_by="-id", limit=100)
        written = []
        for ev in sorted((e for e in events if int(e["event_log_id"]) > self.last_id), key=lambda e: e["event_log_id"]):
            self.last_id = max(self.last_id, int(ev["event_log_id"]))
            if not re.search(r"state attribute is (queued|scheduled)\b", str(ev.get("extra") or "")):
                continue  # it had started (e.g. killed while running): its own log says how far it got
            written.append(self._explain(ev))
        return written

    def _explain(self, ev: dict[str, Any]) -> Path:
        dag_id, task_id = str(ev["dag_id"]), str(ev["task_id"])
        map_index = None if ev.get("map_index") is None else int(ev["map_index"])
        try_number = int(ev.get("try_number") or 1)
        path = task_log_path(self.env, dag_id, str(ev["run_id"]), task_id, map_index, try_number)
        cause = self.scheduler.last_error or "no exception in the scheduler output"
        url = self.env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "")
        api = "answers now" if url and execution_api_answers(url) else "does not answer now"
        message = (
            f"regionstat: this task failed before it started: its supervisor could not start it; "
            f"scheduler's last error: {cause}; the execution API {url or '(not configured)'} {api} "
            f"(scheduler log: {self.scheduler.log_path})"
        )
        record = {
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "level": "error",
            "event": message,
            "logger": "regionstat",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        where = f"{dag_id}.{task_id}" + (f"[{map_index}]" if map_index is not None and map_index >= 0 else "")
        if self.echo:
            self.echo(f"regionstat: {where} (try {try_number}) failed before it started: {cause} (log: {path})")
        return path


def standalone(
    env: Mapping[str, str] | None = None,
    *,
    port: int = PORT,
    echo: Callable[[str], None] | None = print,
    api_ceiling: float = API_START_CEILING,
    stream: bool = False,
) -> int:
    """setup, then the api-server; once it answers its health endpoint, scheduler, dag-processor and triggerer.

    Quiet by default: the components' output goes to their log files only (``stream`` echoes it too, prefixed
    with the component's name), so the URL and login are the last lines on the console.

    ``airflow standalone`` starts all four at once: on a busy machine the scheduler queues tasks before the
    api-server listens, and their supervisors fail with ``httpx.ConnectError``. Runs until Ctrl-C / SIGTERM
    or until a component exits (then stops the others and returns non-zero).
    """
    env = airflow_env(port=port) if env is None else dict(env)
    if port_in_use(port):
        raise AirflowSetupError(
            f"port {port} on {HOST} is already in use (another Airflow?); stop it or choose another: "
            "make airflow PORT=... (or --port)"
        )
    say = echo or (lambda _line: None)
    for clash in log_port_clashes(env):
        say(clash)
    setup(env)
    log_dir = Path(env["AIRFLOW_HOME"]) / "logs" / "components"
    components: list[Component] = []

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    # started in the background SIGINT may be ignored, and children inherit that: a handler resets to SIG_DFL
    # in them at exec, so stopping them with SIGINT (what Ctrl-C does) works
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        say(f"starting the api-server on http://{HOST}:{port} (AIRFLOW_HOME={env['AIRFLOW_HOME']}) ...")
        say(f"component output goes to {log_dir}/*.log (--verbose echoes it here)")
        start = time.monotonic()
        component_echo = echo if stream else None
        api = start_component("api-server", env, log_dir, echo=component_echo)
        components.append(api)
        wait_for_api(api, port, ceiling=api_ceiling)
        secure_credentials(env)  # the api-server wrote the admin password (and airflow.cfg) by now
        say(f"api-server answers {HEALTH_PATH} after {time.monotonic() - start:.0f} s; starting {', '.join(AFTER_API)}")
        for name in AFTER_API:
            components.append(start_component(name, env, log_dir, echo=component_echo))
        say(_banner(env, port, components))
        watcher = FailedBeforeStartWatcher(env, components[1], echo, AirflowRest(env, port))
        while True:
            dead = [c for c in components if c.exited() is not None]
            if dead:
                c = dead[0]
                raise AirflowSetupError(
                    f"{c.name} exited {c.exited()}: {c.last_error or c.tail(1) or 'no output'} (log: {c.log_path})"
                )
            watcher.poll()
            time.sleep(2)
    except KeyboardInterrupt:
        say("stopping airflow ...")
        return 0
    finally:
        # a second Ctrl-C / SIGTERM must not cut the shutdown short and orphan components (it ends in SIGKILL)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stop_components([c for c in components if c.name != "api-server"])  # the api-server last: tasks
            stop_components([c for c in components if c.name == "api-server"])  # report to it while stopping
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)


def _banner(env: Mapping[str, str], port: int, components: list[Component]) -> str:
    password = admin_password(env)
    pids = ", ".join(f"{c.name} {c.proc.pid}" for c in components)
    return "\n".join(
        [
            "",
            "=" * 72,
            f"regionstat Airflow UI:  http://{HOST}:{port}",
            f"login:                  admin / {password or '(see ' + PASSWORD_FILE + ' in AIRFLOW_HOME)'}",
            f"log servers:            worker {env[WORKER_LOG_PORT_VAR]}, triggerer {env[TRIGGER_LOG_PORT_VAR]}",
            f"AIRFLOW_HOME:           {env['AIRFLOW_HOME']}",
            f"data dir:               {env['REGIONSTAT_DATA_DIR']}",
            f"component logs:         {Path(env['AIRFLOW_HOME']) / 'logs' / 'components'}",
            f"pids:                   {pids}",
            "DAGs:                   regionstat_ingest -> regionstat_transform (assets), regionstat_inbox",
            "stop with Ctrl-C",
            "=" * 72,
            "",
        ]
    )


def _group_gone(proc: subprocess.Popen) -> bool:
    proc.poll()  # reap the leader so its group can vanish
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def stop_components(components: list[Component]) -> None:
    """SIGINT each component's process group (what Ctrl-C does), then SIGTERM, then SIGKILL, waiting between."""
    for sig, grace in ((signal.SIGINT, 20.0), (signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        alive = []
        for c in components:
            try:
                os.killpg(c.proc.pid, sig)
                alive.append(c)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            alive = [c for c in alive if not _group_gone(c.proc)]
            time.sleep(0.3)
        if not alive:
            break
    for c in components:
        c.proc.poll()
        if c.reader is not None:
            c.reader.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m regionstat.cli.airflow_local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="migrate the metadata DB, create the duckdb_writer pool, serialise the DAGs")
    p = sub.add_parser(
        "standalone",
        help="setup, the api-server, then (once it answers) scheduler, dag-processor, triggerer; prints the login",
    )
    p.add_argument("--port", type=int, default=PORT, help=f"api-server and UI port (default {PORT})")
    p.add_argument(
        "--worker-log-port",
        type=int,
        help=f"the scheduler's task-log server (default: ${WORKER_LOG_PORT_VAR} or {LOG_PORTS[WORKER_LOG_PORT_VAR]})",
    )
    p.add_argument(
        "--trigger-log-port",
        type=int,
        help=f"the triggerer's log server (default: ${TRIGGER_LOG_PORT_VAR} or {LOG_PORTS[TRIGGER_LOG_PORT_VAR]})",
    )
    p.add_argument("--verbose", action="store_true", help="echo every component's output (it is always in its log)")
    p = sub.add_parser("test", help="setup + airflow dags test DAG_ID")
    p.add_argument("dag_id")
    p.add_argument("--conf", help="JSON conf for the run, e.g. '{\"force\": true}'")
    sub.add_parser("env", help="print the environment used for airflow commands (shell syntax)")
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            setup()
        elif args.command == "standalone":
            env = airflow_env(
                port=args.port, worker_log_port=args.worker_log_port, trigger_log_port=args.trigger_log_port
            )
            return standalone(env, port=args.port, stream=args.verbose)
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
