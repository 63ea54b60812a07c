"""Transform DAG: dbt (one task per model group) -> Parquet marts -> HTML report, whenever a raw table changed."""

from __future__ import annotations

from typing import Any

from airflow.sdk import AssetAny, dag, get_current_context, task

import regionstat.dag_support as ra

_GROUPS = "\n".join(
    f"| `dbt_{g}` | `dbt build --select {sel}` | {', '.join(f'`dbt_{u}`' for u in ups) or '-'} |"
    for g, (sel, ups) in ra.DBT_GROUPS.items()
)

DOC = f"""
### regionstat_transform: DuckDB `raw.*` -> dbt -> Parquet marts -> HTML report

Scheduled on the raw-table assets ({len(ra.RAW_ASSETS)}: any of
{", ".join(f"`{a.uri}`" for a in ra.RAW_ASSETS.values())}); the ingest and inbox DAGs emit an event only for raw
tables whose content changed, so a no-op ingest does not rebuild anything. One run at a time.

**plan** first compares the live loads and the code with what the last build, publish and report completed with
(`warehouse/changes.py`, recorded in `.state/last_run.json`): nothing changed -> it short-circuits and every other
task shows *skipped*; otherwise it parses the dbt project once (the later tasks reuse that parse) and every dbt
task builds only its part downstream of the changed raw tables (`source:<table>+`), publish rewrites only the
marts fed by them.

dbt runs as one task per model group (seeds, tests included: `dbt build`), so the grid shows which part failed; a
failing group stops its downstream groups, and nothing is published: `data/marts/*.parquet` stay as they were.
All DuckDB work is in the one-slot pool `duckdb_writer`.

| task | command | after |
|---|---|---|
{_GROUPS}

**dbt_tests** then runs `dbt test` over everything (tests whose parents span groups, e.g. relationships to
the dimensions), unless the groups already ran every test of the project in this run (it then says so and
starts no dbt). Then **publish_marts** writes `data/marts/<model>.parquet` atomically (+ `_index.json`
checksums) and emits
`{ra.MARTS_ASSET.uri}` (extra: which marts changed); **build_docs** writes GX Data Docs (`data/docs/gx/`) and dbt
docs (`data/docs/dbt/`); **write_report** writes `data/reports/index.html` (`{ra.REPORT_ASSET.uri}`), linking both.
"""


@dag(
    dag_id="regionstat_transform",
    schedule=AssetAny(*ra.RAW_ASSETS.values()),
    start_date=ra.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=ra.default_args(),
    on_failure_callback=ra.log_dag_failure,
    doc_md=DOC,
    tags=["regionstat", "transform", "dbt"],
)
def regionstat_transform():
    @task.short_circuit
    def plan() -> dict[str, Any] | None:
        return ra.plan_transform()

    @task(pool=ra.POOL)
    def dbt_build(group: str, plan: dict[str, Any]) -> dict[str, Any]:
        return ra.dbt_group(group, plan)

    the_plan = plan()
    groups: dict[str, Any] = {}
    for group, (selector, upstream) in ra.DBT_GROUPS.items():
        t = dbt_build.override(task_id=f"dbt_{group}", doc_md=f"`dbt build --select {selector}`")(group, the_plan)
        for up in upstream:
            groups[up] >> t
        groups[group] = t
    used_upstream = {u for _, ups in ra.DBT_GROUPS.values() for u in ups}
    last_groups = [t for g, t in groups.items() if g not in used_upstream]

    @task(pool=ra.POOL)
    def dbt_tests(plan: dict[str, Any]) -> dict[str, Any]:
        groups = get_current_context()["ti"].xcom_pull(task_ids=[f"dbt_{g}" for g in ra.DBT_GROUPS])
        return ra.dbt_test_all(plan, groups)

    @task(pool=ra.POOL, outlets=[ra.MARTS_ASSET])
    def publish_marts(plan: dict[str, Any]) -> dict[str, Any]:
        return ra.publish(get_current_context()["outlet_events"], plan)

    @task(pool=ra.POOL, outlets=[ra.REPORT_ASSET])
    def write_report(plan: dict[str, Any]) -> str:
        return ra.report(plan)

    @task(pool=ra.POOL)
    def build_docs() -> dict[str, str]:
        return ra.docs()

    published = publish_marts(the_plan)
    last_groups >> dbt_tests(the_plan) >> published
    published >> build_docs() >> write_report(the_plan)


regionstat_transform()
