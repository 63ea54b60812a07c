# regionstat: one image for every Airflow 3 component (api-server, scheduler, dag-processor, triggerer, celery
# worker) and for the `regionstat` CLI. Python deps come from the committed uv.lock, exactly as `make install`.
#
#   docker compose build && docker compose up -d                  # LocalExecutor on PostgreSQL
#   AIRFLOW_EXECUTOR=CeleryExecutor docker compose --profile celery up -d   # + Redis and a Celery worker
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim-bookworm

ARG UV_VERSION=0.13.8
# The deployment providers (PostgreSQL metadata DB, CeleryExecutor + Redis client) are the lock's `deploy` group,
# the same versions tests/test_airflow_postgres.py runs with.
ARG AIRFLOW_UID=50000

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/regionstat/.venv \
    PATH=/opt/regionstat/.venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/regionstat/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    REGIONSTAT_DATA_DIR=/opt/regionstat/data \
    DO_NOT_TRACK=1 \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    GX_ANALYTICS_ENABLED=False \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False

RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir "uv==${UV_VERSION}" \
    && useradd --uid "${AIRFLOW_UID}" --gid 0 --home-dir /opt/airflow --create-home regionstat

WORKDIR /opt/regionstat

# 1. dependencies only (cached until uv.lock / pyproject.toml change)
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --compile-bytecode --no-default-groups --group deploy --no-install-project

# 2. the project itself
COPY extract ./extract
COPY expectations ./expectations
COPY warehouse ./warehouse
COPY regionstat ./regionstat
COPY dbt_project ./dbt_project
COPY dags ./dags
COPY reference ./reference
COPY tools ./tools
RUN uv sync --frozen --compile-bytecode --no-default-groups --group deploy \
    && mkdir -p /opt/regionstat/data /opt/airflow/logs \
    && chown -R "${AIRFLOW_UID}:0" /opt/regionstat/data /opt/airflow /opt/regionstat/dbt_project \
    && chmod -R g+rwX /opt/regionstat/data /opt/airflow /opt/regionstat/dbt_project

USER ${AIRFLOW_UID}
EXPOSE 8080
ENTRYPOINT ["tini", "--", "airflow"]
CMD ["version"]
