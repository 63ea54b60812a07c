"""``make airflow`` (``python -m regionstat.cli.airflow_local standalone``): credentials owner-only, the api-server
up before anything can queue a task, and a task that fails before it starts says why in its own log.

The two end-to-end tests run the real components (SQLite metadata DB, LocalExecutor) on a free port in a throwaway
AIRFLOW_HOME; they wait on progress (output lines, DB states), with generous ceilings for a busy machine."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CEILING = 900.0  # seconds; only a hung component gets near it


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secure_credentials_makes_the_password_file_and_config_owner_only(tmp_path: Path) -> None:
    from regionstat.cli.airflow_local import PASSWORD_FILE, admin_password, airflow_env, secure_credentials

    env = airflow_env(home=tmp_path / "home", data_dir=tmp_path / "data", base={"PATH": os.environ["PATH"]})
    home = Path(env["AIRFLOW_HOME"])
    secured = secure_credentials(env)  # a fresh home: an empty password file, created 0600
    password_file = home / PASSWORD_FILE
    assert secured == [password_file]
    assert password_file.read_text() == "" and _mode(password_file) == 0o600
    assert admin_password(env) is None

    # files an older version (or Airflow itself) left world-readable are tightened, their content kept
    password_file.write_text('{"admin": "s3cret"}\n')
    password_file.chmod(0o644)
    config = home / "airflow.cfg"
    config.write_text("[core]\nfernet_key = x\n")
    config.chmod(0o644)
    assert secure_credentials(env) == [password_file, config]
    assert _mode(password_file) == 0o600 and _mode(config) == 0o600
    assert admin_password(env) == "s3cret"


def _standalone_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    from regionstat.cli.airflow_local import airflow_env

    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REGIONSTAT_"))}
    base["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "True"  # the test unpauses only the inbox DAG
    base.update(extra)
    return airflow_env(home=tmp_path / "home", data_dir=tmp_path / "data", base=base, port=port)


@contextlib.contextmanager
def _running_standalone(env: dict[str, str], port: int, out: Path) -> Iterator[subprocess.Popen]:
    """`make airflow`'s code path in its own session; SIGTERM (as a service manager would) at the end."""
    with out.open("w", encoding="utf-8") as fh:
        proc = subprocess.Popen(
            [str(BIN / "python"), "-m", "regionstat.cli.airflow_local", "standalone", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=120)  # it stops its components (SIGINT, SIGTERM, SIGKILL with grace) first
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_until(what: str, ready: Callable[[], object], proc: subprocess.Popen, out: Path) -> object:
    """Poll until ``ready()`` is truthy; fail at once if standalone exited, else only at the generous ceiling."""
    deadline = time.monotonic() + CEILING
    while True:
        value = ready()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"standalone exited {proc.returncode} while waiting for {what}:\n{_tail(out)}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {CEILING:.0f} s:\n{_tail(out)}")
        time.sleep(1)


def _tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])


def _pids(out: Path) -> dict[str, int]:
    line = next(ln for ln in out.read_text().splitlines() if ln.startswith("pids:"))
    return {name: int(pid) for name, pid in (p.strip().rsplit(" ", 1) for p in line.split(":", 1)[1].split(","))}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _unpause_inbox(env: dict[str, str]) -> None:
    cli = subprocess.run(
        [str(BIN / "airflow"), "dags", "unpause", "regionstat_inbox"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]


def _finished_inbox_runs(env: dict[str, str]) -> list[tuple]:
    from regionstat.cli.airflow_local import metadata_query

    return metadata_query(
        env, "select run_id, state from dag_run where dag_id = 'regionstat_inbox' and state in ('success', 'failed')"
    )


@pytest.mark.slow
@pytest.mark.xdist_group("airflow")
def test_standalone_starts_the_api_server_first_and_tasks_reach_it(tmp_path: Path) -> None:
    from regionstat.cli.airflow_local import HEALTH_PATH, PASSWORD_FILE, api_health, metadata_query

    port = _free_port()
    env = _standalone_env(tmp_path, port)
    home = Path(env["AIRFLOW_HOME"])
    out = tmp_path / "standalone.out"
    with _running_standalone(env, port, out) as proc:
        _wait_until("banner", lambda: "regionstat Airflow UI:" in out.read_text(), proc, out)
        lines = out.read_text().splitlines()
        ready = next(i for i, ln in enumerate(lines) if ln.startswith(f"api-server answers {HEALTH_PATH}"))
        banner = next(i for i, ln in enumerate(lines) if ln.startswith("regionstat Airflow UI:"))
        assert ready < banner
        # a quiet start: the components' output is in their logs, not on the console, so the banner with URL
        # and login is not scrolled away; the scheduler and the rest start only after the api-server answered
        assert lines[ready].endswith("starting scheduler, dag-processor, triggerer")
        assert not [ln for ln in lines if re.match(r"(api-server|scheduler|dag-processor|triggerer) +\|", ln)]
        assert len(lines) < 30, lines

        # the generated admin password went into an owner-only file; airflow.cfg (Fernet key, JWT secret) too
        password_file = home / PASSWORD_FILE
        assert json.loads(password_file.read_text())["admin"]
        assert _mode(password_file) == 0o600
        assert _mode(home / "airflow.cfg") == 0o600
        components = home / "logs" / "components"  # the api-server prints the password it generates
        assert _mode(components) == 0o700 and _mode(components / "api-server.log") == 0o600
        login = next(ln for ln in lines if ln.startswith("login:"))
        assert json.loads(password_file.read_text())["admin"] in login

        health = _wait_until(
            "healthy scheduler",
            lambda: (h := api_health(port)) and h.get("scheduler", {}).get("status") == "healthy" and h,
            proc,
            out,
        )
        assert health["metadatabase"]["status"] == "healthy"

        # a real task run through the execution API: the inbox DAG (nothing dropped: scan succeeds, rest skip)
        _unpause_inbox(env)
        runs = _wait_until("a finished regionstat_inbox run", lambda: _finished_inbox_runs(env), proc, out)
        tis = metadata_query(env, "select task_id, state from task_instance where dag_id = 'regionstat_inbox'")
        assert {state for _run, state in runs} == {"success"}, f"{runs} {tis}\n{_tail(out)}"
        assert ("scan", "success") in tis and "failed" not in {s for _t, s in tis}, tis
        pids = _pids(out)
    assert proc.returncode == 0, _tail(out)
    assert "stopping airflow" in out.read_text()
    scheduler_log = (home / "logs" / "components" / "scheduler.log").read_text()
    assert "ConnectError" not in scheduler_log and "Workload execution failed" not in scheduler_log
    assert not [name for name, pid in pids.items() if _alive(pid)], pids  # every component stopped


@pytest.mark.slow
@pytest.mark.xdist_group("airflow")
def test_a_task_that_cannot_reach_the_execution_api_says_so_in_its_log(tmp_path: Path) -> None:
    """The supervisor gets no answer from the execution API (here: a wrong URL) and kills the task before it
    starts; without help its log holds only "::group::Pre Execute". It must name the cause."""
    port, dead_port = _free_port(), _free_port()
    env = _standalone_env(
        tmp_path,
        port,
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{dead_port}/execution/",
        AIRFLOW__WORKERS__EXECUTION_API_RETRIES="2",  # fail in seconds, not minutes
    )
    home = Path(env["AIRFLOW_HOME"])
    out = tmp_path / "standalone.out"
    with _running_standalone(env, port, out) as proc:
        _wait_until("banner", lambda: "regionstat Airflow UI:" in out.read_text(), proc, out)
        _unpause_inbox(env)
        _wait_until("the failed-before-start line", lambda: "failed before it started" in out.read_text(), proc, out)
        runs = _wait_until("a finished regionstat_inbox run", lambda: _finished_inbox_runs(env), proc, out)
        # the DAG's failure callback (run by the DAG processor) says the task never started, not "see the task log"
        callback = _wait_until(
            "the failure callback's line",
            lambda: next(
                (
                    ln
                    for f in (home / "logs" / "dag_processor").rglob("regionstat_inbox.py.log")
                    for ln in f.read_text().splitlines()
                    if "regionstat task failed: regionstat_inbox.scan:" in ln
                ),
                None,
            ),
            proc,
            out,
        )
    assert "it never started" in callback and f"127.0.0.1:{dead_port}/execution/ did not answer" in callback
    assert "failed" in {state for _run, state in runs}
    console = next(ln for ln in out.read_text().splitlines() if "failed before it started" in ln)
    assert console.startswith("regionstat: regionstat_inbox.scan (try 1) failed before it started: ")
    assert "ConnectError" in console, console
    task_logs = sorted((home / "logs" / "dag_id=regionstat_inbox").rglob("task_id=scan/attempt=1.log"))
    assert task_logs, "no task log for scan"
    records = [json.loads(ln) for ln in task_logs[0].read_text().splitlines() if ln.strip()]
    events = [r["event"] for r in records]
    assert "::group::Pre Execute" in events  # how far the task got
    explained = [r for r in records if r.get("logger") == "regionstat"]
    assert len(explained) == 1 and explained[0]["level"] == "error", records
    assert "failed before it started" in explained[0]["event"] and "ConnectError" in explained[0]["event"]
    assert f"127.0.0.1:{dead_port}/execution/ does not answer now" in explained[0]["event"]
