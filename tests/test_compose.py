"""docker-compose.yml and Dockerfile, checked statically (no Docker engine here): every service, image/build,
command, volume, environment, health check and the pool init, against what the project needs."""

from __future__ import annotations

import re
import shlex
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
    for service, command in AIRFLOW_COMMANDS.items():
        if command.startswith("celery"):
            continue  # the celery provider is installed in the image only (Dockerfile DEPLOY_PACKAGES)
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
    assert "http://localhost:8080/api/v2/version" in api
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


def test_init_migrates_and_creates_the_one_slot_writer_pool():
    script = "\n".join(SERVICES["airflow-init"]["command"])
    lines = [ln.strip() for ln in script.splitlines()]
    assert "airflow db migrate" in lines
    pool = next(ln for ln in lines if ln.startswith("airflow pools set"))
    assert shlex.split(pool)[3:5] == ["duckdb_writer", "1"]
    assert "airflow dags reserialize" in lines
    assert lines.index("airflow db migrate") < lines.index(pool)
    assert SERVICES["airflow-init"]["restart"] == "no"
    dags_pool = re.search(r'^POOL = "(\w+)"', (ROOT / "dags" / "regionstat_airflow.py").read_text(), re.M)
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
    assert "--inexact" in syncs[-1]  # keep the deployment providers installed next to the lock
    # deployment extras are pinned and constrained by the lock
    deploy = re.search(r'ARG DEPLOY_PACKAGES="([^"]+)"', DOCKERFILE).group(1).split()
    assert deploy and all("==" in p for p in deploy)
    assert {p.split("==")[0] for p in deploy} == {
        "apache-airflow-providers-postgres",
        "apache-airflow-providers-celery",
    }
    assert "-c /tmp/constraints.txt" in DOCKERFILE


def test_dockerfile_copies_every_package_the_project_needs():
    packages = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    for pkg in [*packages, "dags", "dbt_project"]:
        assert f"COPY {pkg} ./{pkg}" in DOCKERFILE, pkg


def test_dockerignore_keeps_local_state_out():
    for entry in (".venv", "data", ".airflow", ".git"):
        assert entry in DOCKERIGNORE
    for needed in ("uv.lock", "pyproject.toml", "dags", "dbt_project"):
        assert needed not in DOCKERIGNORE
