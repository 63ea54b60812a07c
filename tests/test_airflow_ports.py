"""`make airflow PORT=… WORKER_LOG_PORT=… TRIGGER_LOG_PORT=…`: a second checkout's Airflow on the same machine.

Cheap checks of the plumbing (no Airflow is started): make's command line, the launcher's flags and environment,
and the one-line messages when a port is taken.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from regionstat.cli.airflow_local import (
    TRIGGER_LOG_PORT_VAR,
    WORKER_LOG_PORT_VAR,
    airflow_env,
    log_port_clashes,
)
from regionstat.settings import PROJECT_ROOT


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__LOGGING__") and k != "PORT"}


def _make_airflow(*assignments: str, env: dict[str, str] | None = None) -> str:
    """The standalone command `make airflow` would run (make -n prints, runs nothing)."""
    proc = subprocess.run(
        ["make", "-n", "--no-print-directory", "airflow", *assignments],
        cwd=PROJECT_ROOT,
        env=env or _clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    command = proc.stdout.replace("\\\n", " ")
    return next(line for line in command.splitlines() if "airflow_local standalone" in line)


def test_make_airflow_defaults_to_airflows_ports() -> None:
    assert _make_airflow().split()[-6:] == ["--port", "8080", "--worker-log-port", "8793", "--trigger-log-port", "8794"]


def test_make_airflow_takes_the_three_ports() -> None:
    line = _make_airflow("PORT=8081", "WORKER_LOG_PORT=8795", "TRIGGER_LOG_PORT=8796")
    assert line.split()[-6:] == ["--port", "8081", "--worker-log-port", "8795", "--trigger-log-port", "8796"]


def test_make_airflow_keeps_airflows_own_variables() -> None:
    env = {**_clean_env(), WORKER_LOG_PORT_VAR: "9793", TRIGGER_LOG_PORT_VAR: "9794"}
    assert _make_airflow(env=env).split()[-4:] == ["--worker-log-port", "9793", "--trigger-log-port", "9794"]


def test_airflow_env_log_ports() -> None:
    defaults = airflow_env(base={"PATH": "/usr/bin"})
    assert (defaults[WORKER_LOG_PORT_VAR], defaults[TRIGGER_LOG_PORT_VAR]) == ("8793", "8794")
    kept = airflow_env(base={"PATH": "/usr/bin", WORKER_LOG_PORT_VAR: "9793"})
    assert (kept[WORKER_LOG_PORT_VAR], kept[TRIGGER_LOG_PORT_VAR]) == ("9793", "8794")
    chosen = airflow_env(base={"PATH": "/usr/bin", WORKER_LOG_PORT_VAR: "9793"}, worker_log_port=8795, port=8081)
    assert chosen[WORKER_LOG_PORT_VAR] == "8795" and chosen["AIRFLOW__API__PORT"] == "8081"
    assert chosen["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8081/execution/"


@pytest.fixture
def listening() -> Iterator[int]:
    """A port on 127.0.0.1 that something listens on, as another checkout's Airflow would."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_log_port_is_named_with_the_variable_to_change(listening: int) -> None:
    env = airflow_env(base={"PATH": "/usr/bin"}, worker_log_port=listening, trigger_log_port=listening)
    worker, trigger = log_port_clashes(env)
    assert f"port {listening} " in worker and "worker log server" in worker and "WORKER_LOG_PORT=" in worker
    assert "triggerer log server" in trigger and "TRIGGER_LOG_PORT=" in trigger


def test_launcher_refuses_a_taken_ui_port_in_one_line(listening: int) -> None:
    """The flags `make airflow` passes parse, and a taken port stops it before any setup."""
    argv = ["standalone", "--port", str(listening), "--worker-log-port", "8795", "--trigger-log-port", "8796"]
    proc = subprocess.run(
        [sys.executable, "-m", "regionstat.cli.airflow_local", *argv],
        cwd=PROJECT_ROOT,
        env={**_clean_env(), "AIRFLOW_HOME": "/nonexistent/airflow-home"},
        capture_output=True,
        text=True,
    )
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(err) == 1, proc.stderr
    assert f"port {listening} on 127.0.0.1 is already in use" in err[0] and "make airflow PORT=" in err[0]
