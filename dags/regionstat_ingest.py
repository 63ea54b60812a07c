"""Ingest DAG(s), generated from regionstat/catalogue.yaml: extract -> validate per source, then one load.

One DAG per distinct ``schedule`` in the catalogue (today: one, ``regionstat_ingest``, ``@monthly``). Why not one
DAG per raw table: the per-source split already lives inside the run (a mapped task group, one map index per
source, so a failing source is its own red square and does not hold the others back); the load is serialised by
the DuckDB writer anyway; and one run ending in one load gives the transform DAG one consistent trigger.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

import regionstat.dag_support as ra


def _doc(dag_id: str, schedule: str, names: list[str]) -> str:
    rows = "\n".join(
        f"| `{s.name}` | `{s.table}` | `raw.{s.raw_table}` | {s.description} |"
        for s in ra.CATALOGUE.sources
        if s.name in names
    )
    tables = sorted({ra.CATALOGUE.source(n).raw_table for n in names})
    return f"""
### {dag_id}: SCB PxWeb v2 -> landing Parquet -> Great Expectations -> DuckDB `raw.*`

Generated from `regionstat/catalogue.yaml` (schedule `{schedule}`). Per source (mapped task group `source`, one map
index per catalogue entry):

* **extract** - asks `/tables/{{id}}/metadata` for `updated` (the same call gives the selection); unchanged
  upstream costs no data request (the log says *"unchanged upstream, 0 data requests"*); otherwise fetches in
  chunks within `maxDataCells` and logs rows, cells and requests against the lower bound
  `ceil(cells / maxDataCells)`. Retries 3x with exponential backoff.
* **validate** - runs the table's GX suite. A failing batch is **quarantined** (kept, with a reason file): the
  task fails with a one-line reason, the other sources go on, and the warehouse keeps the last good batch.
  Skipped when nothing new was landed.

Then **load** (pool `duckdb_writer`, runs whatever the validations did) loads every validated batch into
`raw.*` in one transaction each, and emits an asset event `regionstat://raw/<table>` (via the alias
`{ra.RAW_ALIAS.name}`) only for raw tables whose content changed - that is what triggers `regionstat_transform`.
**verdict** runs after every source: green when all were extracted and validated (or unchanged), else it fails
the run naming the quarantined batches.

Trigger with `{{"force": true}}` to refetch even unchanged tables.

| source | SCB table | raw table | description |
|---|---|---|---|
{rows}

Raw tables written: {", ".join(f"`{t}`" for t in tables)}. Data: `$REGIONSTAT_DATA_DIR` (ledger: `regionstat status`).
"""


def build_ingest_dag(dag_id: str, schedule: str, source_names: list[str]):
    @dag(
        dag_id=dag_id,
        schedule=schedule,
        start_date=ra.START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=ra.default_args(),
        on_failure_callback=ra.log_dag_failure,
        doc_md=_doc(dag_id, schedule, source_names),
        tags=["regionstat", "ingest", "scb"],
        params={"force": Param(False, type="boolean", description="refetch even if upstream is unchanged")},
    )
    def ingest():
        @task_group(group_id="source")
        def per_source(source_name: str):
            @task(map_index_template="{{ source_name }}", **ra.EXTRACT_RETRIES)
            def extract(source_name: str) -> dict[str, Any]:
                context = get_current_context()
                context["source_name"] = source_name  # type: ignore[typeddict-unknown-key]
                return ra.extract_one(source_name, force=bool(context["params"].get("force", False)))

            @task(map_index_template="{{ source_name }}")
            def validate(result: dict[str, Any]) -> dict[str, Any]:
                get_current_context()["source_name"] = result["source_name"]  # type: ignore[typeddict-unknown-key]
                outcome = ra.validate_one(result)
                if outcome is None:
                    raise AirflowSkipException(f"{result['source_name']}: nothing new to validate")
                return outcome

            return validate(extract(source_name))

        @task(pool=ra.POOL, outlets=[ra.RAW_ALIAS], trigger_rule=TriggerRule.ALL_DONE)
        def load() -> dict[str, Any]:
            return ra.load_and_announce(get_current_context()["outlet_events"])

        @task(trigger_rule=TriggerRule.ALL_DONE)
        def verdict() -> None:
            context = get_current_context()
            if not ra.failed_tasks(context, group="source"):
                ra.log.info("verdict: every source was extracted and validated (or unchanged)")
                return
            dag_run = context["dag_run"]
            lines = ra.quarantined_since(getattr(dag_run, "start_date", None))
            detail = "; ".join(lines) if lines else "an extract or validate task failed (see its log)"
            raise AirflowFailException(f"ingest incomplete: {detail}; good batches were loaded")

        sources = per_source.expand(source_name=source_names)
        sources >> [load(), verdict()]

    return ingest()


for _dag_id, (_schedule, _names) in ra.ingest_groups().items():
    globals()[_dag_id] = build_ingest_dag(_dag_id, _schedule, _names)
