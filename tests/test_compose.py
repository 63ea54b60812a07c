"""docker-compose.yml and Dockerfile, checked statically (no Docker engine here): every service, image/build,
command, volume, environment, health check and the pool init, against what the project needs."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
DOCKERIGNORE = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

AIRFLOW_COMMANDS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
AIRFLOW_SERVICES = [*AIRFLOW_COMMANDS, "airflow-init"]
TASK_RUNNERS = ["airflow-scheduler", "airflow-worker"]  # LocalExecutor runs tasks in the scheduler
DATA_DIR = "/opt/regionstat/data"
DAGS_DIR = "/opt/regionstat/dags"


def _env(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _dockerfile_env() -> dict[str, str]:
    text = DOCKERFILE.replace("\\\n", " ")
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for token in shlex.split(line[4:]):
                if "=" in token:
                    k, v = token.split("=", 1)
                    out[k] = v
    return out


def test_all_services_present():
    assert set(SERVICES) == {"postgres", "redis", *AIRFLOW_SERVICES}


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_airflow_services_build_the_project_image(service):
    spec = SERVICES[service]
    assert spec["build"]["context"] == "."
    assert (ROOT / spec["build"].get("dockerfile", "Dockerfile")).exists()
    assert spec["image"].startswith("${REGIONSTAT_IMAGE:-regionstat-airflow")


@pytest.mark.parametrize("service,command", AIRFLOW_COMMANDS.items())
def test_commands(service, command):
    cmd = SERVICES[service]["command"]
    assert (cmd if isinstance(cmd, str) else " ".join(cmd)) == command


def test_commands_are_airflow_subcommands():
    from airflow.cli import cli_parser

    parser = cli_parser.get_parser()
    for service, command in AIRFLOW_COMMANDS.items():  # `celery worker` too: the lock's deploy group has it
        args = parser.parse_args(command.split())
        assert callable(args.func), service


def test_image_entrypoint_is_airflow():
    assert re.search(r'^ENTRYPOINT \["tini", "--", "airflow"\]', DOCKERFILE, re.M)


@pytest.mark.parametrize("service", [*AIRFLOW_COMMANDS, "postgres", "redis"])
def test_long_running_services_have_healthchecks(service):
    hc = SERVICES[service]["healthcheck"]
    assert hc["test"][0] in ("CMD", "CMD-SHELL")
    for key in ("interval", "timeout", "retries"):
        assert key in hc, f"{service}: healthcheck without {key}"


def test_healthchecks_probe_the_right_things():
    api = " ".join(SERVICES["airflow-apiserver"]["healthcheck"]["test"])
    assert "http://localhost:8080/api/v2/monitor/health" in api
    sched = " ".join(SERVICES["airflow-scheduler"]["healthcheck"]["test"])
    assert ":8974/health" in sched
    assert _env("airflow-scheduler")["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "True"
    assert "DagProcessorJob" in " ".join(SERVICES["airflow-dag-processor"]["healthcheck"]["test"])
    assert "TriggererJob" in " ".join(SERVICES["airflow-triggerer"]["healthcheck"]["test"])
    assert "inspect ping" in " ".join(SERVICES["airflow-worker"]["healthcheck"]["test"])
    assert "pg_isready" in SERVICES["postgres"]["healthcheck"]["test"]
    assert "ping" in SERVICES["redis"]["healthcheck"]["test"]


def test_api_server_is_published_on_loopback_8080():
    assert SERVICES["airflow-apiserver"]["ports"] == ["127.0.0.1:8080:8080"]


@pytest.mark.parametrize("service", AIRFLOW_SERVICES)
def test_environment(service):
    env = _env(service)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == DAGS_DIR
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"]  # identical in every container (one anchor)
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert env["REGIONSTAT_DATA_DIR"] == DATA_DIR
    assert env["DO_NOT_TRACK"] == "1" and env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    assert env["AIRFLOW__COSMOS__ENABLE_TELEMETRY"] == "False"


def test_secrets_are_shared_by_all_airflow_containers():
    keys = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY")
    for key in keys:
        assert len({_env(s)[key] for s in AIRFLOW_SERVICES}) == 1, key


@pytest.mark.parametrize("service", [*TASK_RUNNERS, "airflow-init"])
def test_task_runners_share_the_data_volume(service):
    assert f"./data:{DATA_DIR}" in SERVICES[service]["volumes"]


def test_dags_and_data_paths_match_the_image():
    env = _dockerfile_env()
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == DAGS_DIR
    assert env["REGIONSTAT_DATA_DIR"] == DATA_DIR
    assert "COPY dags ./dags" in DOCKERFILE and "WORKDIR /opt/regionstat" in DOCKERFILE


def test_services_wait_for_init_and_postgres():
    for service in AIRFLOW_COMMANDS:
        deps = SERVICES[service]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", service
        assert deps["postgres"]["condition"] == "service_healthy", service
    assert SERVICES["airflow-init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert SERVICES["airflow-worker"]["depends_on"]["redis"] == {"condition": "service_healthy"}


@pytest.mark.parametrize("service", [s for s in AIRFLOW_COMMANDS if s != "airflow-apiserver"])
def test_task_side_components_wait_for_a_healthy_api_server(service):
    """The execution API must answer before a task can be queued or run (else httpx.ConnectError, a task log
    with nothing after "Pre Execute"); the api-server's health check probes its health endpoint."""
    deps = SERVICES[service]["depends_on"]
    assert deps["airflow-apiserver"] == {"condition": "service_healthy"}
    assert deps["airflow-init"]["condition"] == "service_completed_successfully"
    assert "airflow-apiserver" not in SERVICES["airflow-apiserver"]["depends_on"]
    assert int(_env(service)["AIRFLOW__WORKERS__EXECUTION_API_RETRIES"]) >= 10  # survives an api-server restart


def test_init_migrates_and_creates_the_one_slot_writer_pool():
    script = "\n".join(SERVICES["airflow-init"]["command"])
    lines = [ln.strip() for ln in script.splitlines()]
    assert "airflow db migrate" in lines
    pool = next(ln for ln in lines if ln.startswith("airflow pools set"))
    assert shlex.split(pool)[3:5] == ["duckdb_writer", "1"]
    assert "airflow dags reserialize" in lines
    assert lines.index("airflow db migrate") < lines.index(pool)
    assert SERVICES["airflow-init"]["restart"] == "no"
    dags_pool = re.search(r'^POOL = "(\w+)"', (ROOT / "regionstat" / "dag_support.py").read_text(), re.M)
    assert dags_pool and dags_pool.group(1) == "duckdb_writer"  # the pool the DAG tasks ask for


def test_celery_profile():
    for service in ("redis", "airflow-worker"):
        assert SERVICES[service]["profiles"] == ["celery"]
    for service in AIRFLOW_COMMANDS:
        if service != "airflow-worker":
            assert "profiles" not in SERVICES[service], service
    assert (
        "AIRFLOW_EXECUTOR=CeleryExecutor docker compose --profile celery" in (ROOT / "docker-compose.yml").read_text()
    )


def test_postgres_has_a_persistent_volume():
    assert any(v.startswith("postgres-db:") for v in SERVICES["postgres"]["volumes"])
    assert "postgres-db" in COMPOSE["volumes"]


def test_dockerfile_installs_from_the_lock():
    assert re.search(r"^FROM python:\$\{PYTHON_VERSION\}-slim", DOCKERFILE, re.M)
    assert "ARG PYTHON_VERSION=3.11" in DOCKERFILE
    assert "COPY pyproject.toml uv.lock" in DOCKERFILE
    syncs = re.findall(r"uv sync ([^\n\\&]+)", DOCKERFILE)
    assert syncs and all("--frozen" in s and "--compile-bytecode" in s for s in syncs)
    # the deployment providers come from the lock's deploy group (nothing installed beside the lock)
    assert all("--no-default-groups --group deploy" in s for s in syncs), syncs
    deploy = {re.split(r"[<>=!~ ]", req, maxsplit=1)[0] for req in PYPROJECT["dependency-groups"]["deploy"]}
    assert {"apache-airflow-providers-postgres", "apache-airflow-providers-celery", "redis"} <= deploy
    assert "deploy" in PYPROJECT["tool"]["uv"]["default-groups"]  # `make install` has what the Celery test runs
    assert "uv pip install" not in DOCKERFILE and "DEPLOY_PACKAGES" not in DOCKERFILE


def test_celery_profile_has_the_settings_the_celery_test_runs():
    """tests/test_airflow_postgres.py runs compose's Celery settings on loopback: same executor, broker, result
    backend (the metadata DB through Celery's database backend) and worker command."""
    from test_airflow_postgres import celery_env

    env = _env("airflow-worker")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert "AIRFLOW_EXECUTOR=CeleryExecutor docker compose --profile celery" in COMPOSE_TEXT
    ran = celery_env(
        {}, broker_url=env["AIRFLOW__CELERY__BROKER_URL"], metadata_url=env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )
    assert ran["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert ran["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert ran["AIRFLOW__CELERY__RESULT_BACKEND"] == env["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert SERVICES["airflow-worker"]["command"] == "celery worker"
    assert SERVICES["redis"]["image"].startswith("redis:7")


def test_dockerfile_copies_every_package_the_project_needs():
    packages = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    for pkg in [*packages, "dags", "dbt_project"]:
        assert f"COPY {pkg} ./{pkg}" in DOCKERFILE, pkg


def test_dockerignore_keeps_local_state_out():
    for entry in (".venv", "data", ".airflow", ".git"):
        assert entry in DOCKERIGNORE
    for needed in ("uv.lock", "pyproject.toml", "dags", "dbt_project"):
        assert needed not in DOCKERIGNORE


# ---------------------------------------------------------------------------------------------------------------
# Secrets: no defaults anywhere, compose refuses to start without them, documented generation works
# ---------------------------------------------------------------------------------------------------------------

SECRET_VARS = {
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "REGIONSTAT_ADMIN_PASSWORD",
}
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
# a compose interpolation ${NAME<modifier>}; `$${...}` is an escaped `$` (a shell variable inside a command)
INTERPOLATION = re.compile(r"(?<!\$)\$\{(\w+)([^}]*)\}")


def _secret_references() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in INTERPOLATION.finditer(COMPOSE_TEXT) if m.group(1) in SECRET_VARS]


def test_every_secret_is_required_with_no_default():
    refs = _secret_references()
    assert {name for name, _ in refs} == SECRET_VARS
    for name, modifier in refs:
        # `${VAR:?message}`: compose stops with the message when VAR is unset or empty
        assert re.fullmatch(r":\?\S.*", modifier), f"${{{name}{modifier}}} must be ${{{name}:?message}}"
        assert ".env.example" in modifier, f"{name}: the error should say where the secrets are described"
    # and no shell-level fallback inside a command either
    for name in SECRET_VARS:
        assert f"$${{{name}:-" not in COMPOSE_TEXT and f"$${{{name}-" not in COMPOSE_TEXT, name


@pytest.mark.parametrize(
    "service,key,var",
    [
        *[(s, "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW_FERNET_KEY") for s in AIRFLOW_SERVICES],
        *[(s, "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW_JWT_SECRET") for s in AIRFLOW_SERVICES],
        *[(s, "AIRFLOW__API__SECRET_KEY", "AIRFLOW_API_SECRET_KEY") for s in AIRFLOW_SERVICES],
        ("postgres", "POSTGRES_PASSWORD", "POSTGRES_PASSWORD"),
        ("airflow-init", "REGIONSTAT_ADMIN_PASSWORD", "REGIONSTAT_ADMIN_PASSWORD"),
    ],
)
def test_secret_settings_come_only_from_the_required_variable(service, key, var):
    value = _env(service)[key]
    assert re.fullmatch(rf"\$\{{{var}:\?[^}}]+\}}", value), f"{service}: {key}={value}"


def test_database_urls_use_the_required_postgres_password():
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
        value = _env("airflow-scheduler")[key]
        assert re.search(r"://airflow:\$\{POSTGRES_PASSWORD:\?[^}]+\}@postgres:5432/airflow$", value), value


def test_env_example_names_every_secret_without_a_value():
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    settings = dict(ln.split("=", 1) for ln in lines if ln and not ln.startswith("#"))
    assert set(settings) == SECRET_VARS
    assert all(v == "" for v in settings.values()), settings  # nothing usable as-is


def test_env_stays_out_of_git_and_the_image():
    assert ".env" in DOCKERIGNORE
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


def _readme_secrets_script() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- deployment-secrets -->\n```sh\n(.*?)\n```", readme, re.S)
    assert block, "README.md: the deployment-secrets snippet is missing"
    return block.group(1)


def test_readme_snippet_generates_every_secret_into_a_private_env(tmp_path):
    from cryptography.fernet import Fernet

    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    script = _readme_secrets_script()
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""  # the secrets went to .env, not to the terminal
    env_file = tmp_path / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dict(ln.split("=", 1) for ln in env_file.read_text(encoding="utf-8").splitlines())
    assert set(values) == SECRET_VARS
    assert len(set(values.values())) == len(values)
    Fernet(values["AIRFLOW_FERNET_KEY"].encode())  # a valid Fernet key (raises otherwise)
    for name in SECRET_VARS - {"AIRFLOW_FERNET_KEY"}:
        assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", values[name]), name  # URL-safe: the password is in a URL
    # run again: the existing .env (and its Fernet key) is kept
    before = env_file.read_bytes()
    again = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "cannot overwrite" in again.stderr
    assert again.stdout == "" and env_file.read_bytes() == before


def test_init_writes_the_admin_password_file_0600_from_the_secret(tmp_path):
    script = "\n".join(SERVICES["airflow-init"]["command"])
    assert "chmod 0600 /opt/airflow/auth/passwords.json" in script
    (writer,) = [ln.strip() for ln in script.splitlines() if "passwords.json" in ln and ln.strip().startswith("python")]
    target = tmp_path / "passwords.json"
    env = {"PATH": os.environ["PATH"], "REGIONSTAT_ADMIN_PASSWORD": 'p"w'}
    cmd = writer.replace("/opt/airflow/auth/passwords.json", str(target)).replace("python -c", f"{sys.executable} -c")
    run = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(target.read_text(encoding="utf-8")) == {"admin": 'p"w'}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    # no password, no file: the init container fails instead of falling back to a known one
    target.unlink()
    run = subprocess.run(["bash", "-c", cmd], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True)
    assert run.returncode != 0 and "REGIONSTAT_ADMIN_PASSWORD" in run.stderr
    assert not target.exists()


def _docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=60)
    return probe.returncode == 0


@pytest.mark.skipif(not _docker_compose_available(), reason="no `docker compose` here (static checks above apply)")
def test_docker_compose_config_refuses_without_secrets(tmp_path):
    """`docker compose config` interpolates without an engine: it must fail without secrets, pass with them."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    cmd = ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "--env-file", os.devnull, "config", "-q"]
    refused = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert any(name in refused.stderr for name in SECRET_VARS), refused.stderr
    env.update({name: f"test-{name.lower()}" for name in SECRET_VARS})
    accepted = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert accepted.returncode == 0, accepted.stderr
