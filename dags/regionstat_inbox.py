"""Inbox DAG: municipal files dropped into $REGIONSTAT_DATA_DIR/inbox/commuting/ trigger their own load."""

from __future__ import annotations

from typing import Any

from airflow.sdk import TriggerRule, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

import regionstat.dag_support as ra

_FILES = "\n".join(
    f"| `{f.pattern}` | `{f.name}` | `raw.{f.raw_table}` | {f.description} |" for f in ra.CATALOGUE.files
)

DOC = f"""
### regionstat_inbox: municipal files -> landing -> Great Expectations -> DuckDB `raw.*`

Drop a PX, CSV (also PxWeb "comma-separated with heading" exports) or XLSX file into
`$REGIONSTAT_DATA_DIR/inbox/commuting/`; offline, `make demo` (or `regionstat inbox --bundled`) drops the real files
bundled with the snapshot (`extract/bundled.py`). Every {ra.INBOX_SCHEDULE!r} (cron) the
**scan** task hashes the inbox; when no file is new (already landed or quarantined) it short-circuits and the run
is a cheap no-op (everything after it is *skipped*). Otherwise:

* **extract_inbox** lands each new file as a batch (declared column mapping, `value`/`status`),
* **validate** (mapped, one per file) runs the GX suite; a bad file is quarantined with a one-line reason and
  fails its own task instance only,
* **load** (pool `duckdb_writer`) loads the good batches and emits `regionstat://raw/<table>` for changed tables,
  which triggers `regionstat_transform`,
* **verdict** is green when every file passed and fails the run if any file was quarantined.

| file pattern | catalogue entry | raw table | description |
|---|---|---|---|
{_FILES}
"""


@dag(
    dag_id="regionstat_inbox",
    schedule=ra.INBOX_SCHEDULE,
    start_date=ra.START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=ra.default_args(),
    on_failure_callback=ra.log_dag_failure,
    doc_md=DOC,
    tags=["regionstat", "ingest", "inbox"],
)
def regionstat_inbox():
    @task.short_circuit
    def scan() -> bool:
        return ra.inbox_has_new_files()

    @task
    def extract_inbox() -> list[dict[str, Any]]:
        return ra.extract_inbox_files()

    @task(map_index_template="{{ file_name }}")
    def validate(result: dict[str, Any]) -> dict[str, Any]:
        get_current_context()["file_name"] = result.get("table_id") or result["source_name"]  # type: ignore[typeddict-unknown-key]
        outcome = ra.validate_one(result)
        if outcome is None:
            raise AirflowSkipException(f"{result.get('table_id')}: already processed, nothing to validate")
        return outcome

    @task(pool=ra.POOL, outlets=[ra.RAW_ALIAS], trigger_rule=TriggerRule.ALL_DONE)
    def load() -> dict[str, Any]:
        return ra.load_and_announce(get_current_context()["outlet_events"])

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def verdict() -> None:
        context = get_current_context()
        if not ra.failed_tasks(context, task_ids=["extract_inbox", "validate"]):
            ra.log.info("verdict: every new file was landed and validated")
            return
        dag_run = context["dag_run"]
        lines = ra.quarantined_since(getattr(dag_run, "start_date", None))
        detail = "; ".join(lines) if lines else "a task failed (see its log)"
        raise AirflowFailException(f"inbox load incomplete: {detail}; good files were loaded")

    files = extract_inbox()
    scan() >> files
    validate.expand(result=files) >> [load(), verdict()]


regionstat_inbox()
