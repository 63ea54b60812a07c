"""Shared pieces of the regionstat DAGs: catalogue-derived constants, assets, and the task-side helpers.

The DAG files stay thin: every task body calls one function from here, and every function here calls a stage
function from ``extract/``, ``expectations/`` or ``warehouse/`` (docs/CONTRACTS.md), which also run without
Airflow (``regionstat run``). Importing this module reads the catalogue YAML and nothing else; the heavy stage
modules (pyarrow, GX, dbt, DuckDB) are imported inside the functions, i.e. only when a task runs.

It lives in the package (not the dags folder), so DAG files import it like any module, no ``sys.path`` tricks.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, AssetAlias

from regionstat.batches import REASON_SUFFIX, is_validated
from regionstat.catalogue import Catalogue, load_catalogue

log = logging.getLogger("regionstat.airflow")


def _no_collection_at_exit() -> None:
    """Freeze the heap at interpreter exit, so the shutdown's full garbage collections skip it.

    A process that ran the transform tasks (``airflow dags test`` runs them all in one) holds dbt's parsed
    manifests and Airflow's models: several million objects, which the collections during shutdown walked for
    seconds only to free memory the OS reclaims anyway. Nothing is flushed or closed by those collections:
    DuckDB connections are closed by the stage functions that open them (``warehouse.build._close_dbt_duckdb``).

    DuckDB's module constants (``DuckDBPyType``s) are freed only by those collections, and its binding library
    (nanobind) reports every instance still alive at exit as a leak; clearing the DuckDB modules' namespaces drops
    them by reference count. Handlers registered before this one (Airflow's) run after it and use no DuckDB."""
    import gc
    import sys

    gc.freeze()
    for name in [m for m in sys.modules if m.split(".")[0] in ("duckdb", "_duckdb")]:
        module = sys.modules.get(name)
        if module is not None:
            vars(module).clear()


atexit.register(_no_collection_at_exit)

# ---------------------------------------------------------------------------------------------------------------
# Constants shared by all DAGs
# ---------------------------------------------------------------------------------------------------------------

POOL = "duckdb_writer"  # one slot: DuckDB allows one writing process per file (created by airflow_local setup)
POOL_DESCRIPTION = "regionstat: the one DuckDB writer (raw loads, dbt, publish, report) - keep at 1 slot"
START_DATE = datetime(2025, 1, 1, tzinfo=UTC)
OWNER = "regionstat"
DEFAULT_SCHEDULE = "@monthly"
INBOX_SCHEDULE = "*/5 * * * *"  # the inbox DAG is a no-op (short-circuit) when nothing new was dropped

RAW_URI = "regionstat://raw/{raw_table}"
MARTS_ASSET = Asset("regionstat://marts")
REPORT_ASSET = Asset("regionstat://report")
# Loads emit raw-table asset events through this alias, and only for raw tables whose content changed: a load
# that finds nothing new emits nothing, so the transform DAG is not triggered by no-op runs.
RAW_ALIAS = AssetAlias("regionstat_raw_changed")

# dbt model groups, one task each (all in the writer pool), in dependency order: group -> (selector, upstream
# groups). tests/test_dags.py checks that every model's ref() points into its own group or an upstream one,
# and that every model belongs to a group.
DBT_GROUPS: OrderedDict[str, tuple[str, tuple[str, ...]]] = OrderedDict(
    [
        ("seeds", ("resource_type:seed", ())),
        ("staging", ("staging", ("seeds",))),
        ("intermediate", ("intermediate", ("staging",))),
        ("marts_core", ("marts.core", ("intermediate",))),
        ("marts_population", ("marts.population", ("marts_core",))),
        ("marts_business", ("marts.business", ("marts_core",))),
        ("marts_commuting", ("marts.commuting", ("marts_core",))),
        ("marts_localities", ("marts.localities", ("marts_core", "marts_population", "marts_commuting"))),
        ("marts_key_figures", ("marts.key_figures", ("marts_population", "marts_business", "marts_commuting"))),
        (
            "marts_study_area",
            ("marts.study_area", ("marts_population", "marts_business", "marts_commuting", "marts_localities")),
        ),
    ]
)

CATALOGUE: Catalogue = load_catalogue()


def raw_asset(raw_table: str) -> Asset:
    """The asset that stands for ``raw.<raw_table>`` in ``warehouse.duckdb``."""
    return Asset(RAW_URI.format(raw_table=raw_table), group="regionstat-raw")


RAW_ASSETS: dict[str, Asset] = {t: raw_asset(t) for t in CATALOGUE.raw_tables}
FILE_RAW_TABLES: list[str] = list(dict.fromkeys(f.raw_table for f in CATALOGUE.files))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "custom"


def ingest_groups(catalogue: Catalogue = CATALOGUE) -> dict[str, tuple[str, list[str]]]:
    """dag_id -> (schedule, source names): one ingest DAG per distinct ``schedule`` in the catalogue.

    The catalogue's usual schedule gets ``regionstat_ingest``; a source with another schedule (say ``@weekly``)
    gets ``regionstat_ingest_weekly``. Today every source is ``@monthly``, so there is one ingest DAG.
    """
    by_schedule: dict[str, list[str]] = {}
    for s in catalogue.sources:
        by_schedule.setdefault(s.schedule or DEFAULT_SCHEDULE, []).append(s.name)
    main = DEFAULT_SCHEDULE if DEFAULT_SCHEDULE in by_schedule else max(by_schedule, key=lambda k: len(by_schedule[k]))
    out: dict[str, tuple[str, list[str]]] = {}
    for schedule, names in by_schedule.items():
        dag_id = "regionstat_ingest" if schedule == main else f"regionstat_ingest_{_slug(schedule)}"
        out[dag_id] = (schedule, names)
    return out


def default_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": 0,
        "on_failure_callback": log_task_failure,
    }
    args.update(overrides)
    return args


EXTRACT_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": 2.0,  # 20 s, 40 s, 80 s ...
    "max_retry_delay": timedelta(minutes=10),
}

# ---------------------------------------------------------------------------------------------------------------
# Settings and small helpers
# ---------------------------------------------------------------------------------------------------------------


def settings():
    """Runtime settings from the worker's environment (REGIONSTAT_DATA_DIR, REGIONSTAT_API_URL, ...) and the user
    configuration (REGIONSTAT_CONFIG, REGIONSTAT_COUNTIES, REGIONSTAT_PERIODS; regionstat.config)."""
    from regionstat.config import resolve
    from regionstat.settings import Settings

    return resolve().settings(Settings.from_env())


def first_line(obj: object, limit: int = 400) -> str:
    text = str(obj).strip().splitlines()
    line = text[0] if text else type(obj).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def log_task_failure(context: Mapping[str, Any]) -> None:
    """on_failure_callback: one line naming the task instance and the cause.

    Without an exception the callback runs outside the task (the DAG processor, for the scheduler). A task with no
    start date never ran: its supervisor could not start it, most often because the execution API did not
    answer, and the error is in the scheduler's (or worker's) output - its own log ends at "Pre Execute".
    """
    ti = context.get("ti") or context.get("task_instance")
    exc = context.get("exception")
    where = "?"
    if ti is not None:
        idx = getattr(ti, "map_index", -1)
        where = f"{ti.dag_id}.{ti.task_id}" + (f"[{idx}]" if idx is not None and idx >= 0 else "")
    if exc is not None:
        cause = first_line(exc)
    elif context.get("reason"):
        cause = str(context["reason"])
    elif ti is not None and getattr(ti, "start_date", None) is None:
        api = os.environ.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") or "the configured execution API"
        cause = (
            f"it never started: its supervisor could not start it (often: {api} did not answer); "
            "the error is in the scheduler's or worker's log"
        )
    else:
        cause = "see the task log"
    log.error("regionstat task failed: %s: %s", where, cause)


def log_dag_failure(context: Mapping[str, Any]) -> None:
    """DAG-level on_failure_callback: one line naming the run, the reason and (when known) the failed tasks."""
    dag_run = context.get("dag_run")
    run = f"{getattr(dag_run, 'dag_id', '?')} run {getattr(dag_run, 'run_id', '?')}"
    failed = ""
    try:  # the scheduler-side DagRun can list its task instances; elsewhere this is best effort
        tis = dag_run.get_task_instances(state=["failed"])  # type: ignore[union-attr]
        names = sorted(t.task_id + (f"[{t.map_index}]" if t.map_index >= 0 else "") for t in tis)
        failed = f" (failed: {', '.join(names)})" if names else ""
    except Exception:
        pass
    log.error("regionstat DAG run failed: %s: %s%s", run, first_line(context.get("reason") or "a task failed"), failed)


# ---------------------------------------------------------------------------------------------------------------
# Task-side functions
# ---------------------------------------------------------------------------------------------------------------


def describe_extract(result: Mapping[str, Any]) -> str:
    """One log line saying what an extract did: rows, cells, requests vs the lower bound, or unchanged."""
    name, table = result.get("source_name"), result.get("table_id")
    status = result.get("status", "")
    if status == "landed":
        requests, bound = int(result.get("requests") or 0), int(result.get("lower_bound") or 0)
        ratio = f"{requests / bound:.2f}x" if bound else "n/a"
        return (
            f"{name}: fetched {table}: {int(result.get('rows') or 0):,} rows, {int(result.get('cells') or 0):,} "
            f"cells in {requests} data request(s) (lower bound {bound}, {ratio}) -> {result.get('manifest_path')}"
        )
    if status == "skipped_fresh":
        message = str(result.get("message") or "")
        since = message if message.startswith("unchanged upstream") else "unchanged upstream"
        return f"{name}: {table} {since}, 0 data requests"
    if status == "skipped_seen":
        return f"{name}: {table} already processed, 0 data requests"
    if status == "quarantined":
        return f"{name}: {table} quarantined at extract: {first_line(result.get('message') or 'unreadable')}"
    return f"{name}: {table}: {status} {result.get('message') or ''}".rstrip()


def extract_one(source_name: str, *, force: bool = False) -> dict[str, Any]:
    """Extract one catalogue source (or skip it as unchanged); returns the JSON-able ExtractResult."""
    from extract.pipeline import api_base_url, extract_source, retry_policy
    from extract.pxweb import PxWebClient

    s = settings()
    # the catalogue this module read at import: parsing the YAML again in every mapped task costs ~0.5 s each
    if s.api_url:  # SCB (or a given API): the rate-limit window is shared with every other task and process
        result = extract_source(source_name, settings=s, force=force, catalogue=CATALOGUE)
    else:
        # The offline default starts a snapshot server of this task's own, which enforces its limits itself: a
        # window shared with the other tasks' servers would only make the 10th or so task sleep for seconds
        # (each task's client also asks /config, so 11 tasks make 33 calls where one `regionstat run` makes 23).
        with api_base_url(s) as url, PxWebClient(url, state_dir=False, retry=retry_policy(s, CATALOGUE)) as client:
            result = extract_source(
                source_name, settings=s, client=client, base_url=url, force=force, catalogue=CATALOGUE
            )
    out = result.as_dict()
    log.info(describe_extract(out))
    return out


def extract_inbox_files() -> list[dict[str, Any]]:
    """Land every new municipal file from the inbox; returns one result per file (landed or already seen)."""
    from extract.pipeline import extract_inbox

    results = [r.as_dict() for r in extract_inbox(settings=settings())]
    for r in results:
        log.info(describe_extract(r))
    if not results:
        log.info("inbox: no files")
    return results


def needs_validation(result: Mapping[str, Any]) -> bool:
    """A freshly landed batch, or an earlier batch left unvalidated (e.g. a run that died after extract)."""
    path = result.get("manifest_path")
    if not path:
        return False
    manifest = Path(str(path))
    if result.get("status") == "landed":
        return True
    return manifest.exists() and not is_validated(manifest)


class Quarantined(Exception):
    """A batch failed a fail-severity expectation and was moved to quarantine."""


def validate_one(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """Validate the batch an extract produced. None = nothing to validate; raises Quarantined on failure."""
    from expectations.validate import validate_batch

    if result.get("status") == "quarantined":
        message = (
            f"{result.get('source_name')} {result.get('table_id')} quarantined: "
            f"{first_line(result.get('message') or 'could not be read')} (kept in {result.get('manifest_path')}; "
            "the warehouse and marts are unchanged)"
        )
        log.error(message)
        raise Quarantined(message)
    if not needs_validation(result):
        log.info("%s: nothing new to validate (%s)", result.get("source_name"), result.get("status"))
        return None
    outcome = validate_batch(Path(str(result["manifest_path"])), settings=settings())
    summary: dict[str, Any] = {
        "source_name": outcome.source_name,
        "load_id": outcome.load_id,
        "success": bool(outcome.success),
        "failures": [first_line(f) for f in outcome.failures],
        "warnings": [first_line(w) for w in outcome.warnings],
        "quarantined_to": str(outcome.quarantined_to) if outcome.quarantined_to else None,
    }
    for w in summary["warnings"]:
        log.warning("%s %s: warning: %s", outcome.source_name, outcome.load_id, w)
    if not outcome.success:
        reason = summary["failures"][0] if summary["failures"] else "failed validation"
        message = (
            f"{outcome.source_name} batch {outcome.load_id} quarantined: {reason} "
            f"(kept in {summary['quarantined_to']}; the warehouse and marts are unchanged)"
        )
        log.error(message)
        raise Quarantined(message)
    log.info("%s %s: validation passed (%d warning(s))", outcome.source_name, outcome.load_id, len(summary["warnings"]))
    return summary


def load_and_announce(outlet_events: Any) -> dict[str, Any]:
    """Load every validated batch not yet live; emit one asset event per raw table whose content changed."""
    from warehouse.load import load_validated

    summary = load_validated(settings=settings())
    log.info("load: %s", summary.line())
    changed = summary.changed
    for raw_table, extra in sorted(changed.items()):
        asset = RAW_ASSETS.get(raw_table) or raw_asset(raw_table)
        outlet_events[RAW_ALIAS].add(asset, extra=extra)
        log.info(
            "raw.%s changed (%s rows from %s): asset event %s",
            raw_table,
            f"{extra['rows']:,}",
            ", ".join(extra["sources"]),
            asset.uri,
        )
    if not changed:
        log.info("no raw table changed: no asset events, downstream transform not triggered")
    return {
        "loaded": summary.loaded,
        "unchanged": summary.unchanged,
        "quarantined": summary.quarantined,
        "rows": summary.rows,
        "changed_raw_tables": sorted(changed),
    }


def failed_tasks(context: Mapping[str, Any], *, task_ids: list[str] | None = None, group: str | None = None) -> int:
    """How many task instances of this DAG run (these tasks, or this task group) failed or could not run because
    an upstream failed: the verdict's question, asked through the execution API (works in ``dags test`` too)."""
    ti, dag_run = context["ti"], context["dag_run"]
    return int(
        ti.get_ti_count(
            dag_id=dag_run.dag_id,
            task_ids=task_ids,
            task_group_id=group,
            run_ids=[dag_run.run_id],
            states=["failed", "upstream_failed"],
        )
    )


def quarantined_since(since: datetime | None) -> list[str]:
    """One line per batch quarantined at or after ``since`` (reason file mtime), for the run's verdict."""
    qdir = settings().quarantine_dir
    if not qdir.exists():
        return []
    cutoff = since.timestamp() - 1 if since else 0
    lines = []
    for reason in sorted(qdir.rglob(f"*{REASON_SUFFIX}")):
        if reason.stat().st_mtime >= cutoff:
            text = reason.read_text(encoding="utf-8").strip().splitlines()
            lines.append(
                f"{reason.parent.name} {reason.name.removesuffix(REASON_SUFFIX)}: "
                f"{text[0] if text else 'no reason recorded'}"
            )
    return lines


def inbox_has_new_files() -> bool:
    """True if the inbox holds a file not landed or quarantined yet (a file matching no catalogue pattern counts:
    ``extract_inbox`` quarantines it with its reason, and the run says so)."""
    from extract.files import file_sha256, scan_inbox
    from extract.pipeline import processed_file_hashes

    s = settings()
    if not s.inbox_dir.exists():
        log.info("inbox %s does not exist: nothing to do", s.inbox_dir)
        return False
    new = []
    for path, hit in scan_inbox(s.inbox_dir, list(CATALOGUE.files)):
        if isinstance(hit, Exception):
            raw_table = source_name = "_unmatched"
            what = f"{path.name} (matches no catalogue pattern: will be quarantined)"
        else:
            raw_table, source_name = hit.raw_table, hit.name
            what = f"{path.name} ({hit.name} -> raw.{hit.raw_table})"
        if file_sha256(path) not in processed_file_hashes(s, raw_table, source_name):
            new.append(what)
    if new:
        log.info("inbox: %d new file(s): %s", len(new), "; ".join(new))
    else:
        log.info("inbox %s: nothing new", s.inbox_dir)
    return bool(new)


def plan_transform() -> dict[str, Any] | None:
    """What this transform run has to do (warehouse.changes), or None when nothing changed since the last one.

    Otherwise parses the dbt project once (the tasks after it reuse the saved parse) and returns the dbt selection
    (None = everything), the marts to publish (None = all), whether to render the report, and the inputs to
    record when each stage has succeeded."""
    from dataclasses import asdict

    from warehouse import changes
    from warehouse.build import parse_project

    s = settings()
    inputs = changes.current_inputs(s)
    plans = changes.plans(s, inputs)
    if all(p.nothing for p in plans.values()):
        log.info("0 loaded, transform skipped: nothing changed since the last build (dbt, publish, report)")
        return None
    for p in plans.values():
        log.info("plan: %s", p.line())
    parse_project(settings=s)
    select = changes.dbt_selection(s, plans["build"])
    only = changes.marts_to_publish(s, plans["publish"])
    return {
        "build": not plans["build"].nothing and select != "",
        "select": select,
        "publish": not plans["publish"].nothing,
        "publish_only": sorted(only) if only is not None else None,
        "report": not plans["report"].nothing,
        "inputs": asdict(inputs),
    }


def _group_selector(selector: str, select: str | None) -> str:
    """The group's selector, narrowed to ``select`` (dbt: space = union, comma = intersection)."""
    if select is None:
        return selector
    return " ".join(f"{selector},{part}" for part in select.split())


def dbt_group(group: str, plan: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``dbt build --select <group selector>`` under the writer lock; raises DbtError naming the first failure.

    Tests are selected *buildably* (a test runs with the group once all its parents are built by this or an
    earlier group), so a group never runs a test against a model a later group builds; the tests that span
    groups run in ``dbt_tests`` at the end (see :func:`dbt_test_all`). With a ``plan`` (from
    :func:`plan_transform`) only the group's part downstream of the changed raw tables is built.
    """
    from regionstat.config import resolve
    from warehouse.build import run_dbt

    selector = DBT_GROUPS[group][0]
    if plan is not None and not plan["build"]:
        log.info("dbt %s: nothing to build (no changed raw table feeds it)", group)
        return {"group": group, "select": None, "passed": 0, "failed": 0, "skipped": 0}
    selector = _group_selector(selector, plan["select"] if plan else None)
    run_settings = settings()
    resolve().prepare(run_settings)  # the user's override CSVs where the dbt vars point
    # with a plan, its `dbt parse` wrote target/manifest.json (what dbt_tests, publish and the report read:
    # nodes, tests, descriptions, lineage); each group rewriting it (~0.5 s a group) would add nothing they read
    result = run_dbt(
        settings=run_settings, select=selector, indirect_selection="buildable", write_artifacts=plan is None
    )
    log.info("%s (--select %s)", result.line(), selector)
    return {
        "group": group,
        "select": selector,
        "passed": result.passed,
        "failed": result.failed,
        "skipped": result.skipped,
        "tests_run": result.tests_run,  # dbt_tests does not run these again
    }


def _tests_left(settings: Any, tested: set[str]) -> int | None:
    """How many of the project's data and unit tests are not in ``tested`` (per the manifest the dbt groups of this
    run just wrote); None when that manifest cannot be read (then nothing is assumed)."""
    import json

    path = settings.state_dir / "dbt" / "target" / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    tests = {uid for uid, node in manifest.get("nodes", {}).items() if node.get("resource_type") == "test"}
    return len((tests | set(manifest.get("unit_tests", {}))) - tested)


def dbt_test_all(plan: Mapping[str, Any] | None = None, groups: Any = None) -> dict[str, Any]:
    """``dbt test`` over the whole project (or what the plan rebuilt): catches the tests whose parents live in
    different groups. Records the build as done (warehouse.changes) when a plan is given.

    ``groups`` are the dbt group tasks' results (:func:`dbt_group`): when they already ran every test of the
    project against this build (the usual full build), running all of them again would only repeat the same
    verdicts, so dbt is not started; otherwise ``dbt test`` runs as always."""
    from warehouse import changes
    from warehouse.build import run_dbt

    s = settings()
    tested = {t for g in groups or () if isinstance(g, Mapping) for t in g.get("tests_run") or ()}
    left = _tests_left(s, tested) if tested else None
    if plan is not None and not plan["build"]:
        log.info("dbt test: nothing was built")
        result = None
    elif left == 0:
        log.info("dbt test: all %d tests already ran in the dbt group tasks of this run; none left to run", len(tested))
        result = None
    else:
        result = run_dbt(settings=s, command="test", select=plan["select"] if plan else None)
        log.info(result.line())
    if plan is not None:
        changes.record(s, "build", changes.Inputs(**plan["inputs"]))
    if result is None:
        return {"passed": 0, "failed": 0, "skipped": 0, "already_run": len(tested) if left == 0 else 0}
    return {"passed": result.passed, "failed": result.failed, "skipped": result.skipped}


def _read_index(path: Path) -> dict[str, str]:
    from warehouse.publish import read_index_checksums

    return read_index_checksums(path)


def publish(outlet_events: Any, plan: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Publish every mart as Parquet (with a plan: only the marts fed by changed raw tables); the marts asset
    event says which marts changed."""
    from warehouse import changes
    from warehouse.publish import publish_marts

    s = settings()
    before = _read_index(s.marts_dir / "_index.json")
    if plan is not None and not plan["publish"]:
        log.info("publish: skipped, nothing changed since the last publish")
        outlet_events[MARTS_ASSET].extra = {"marts": len(before), "changed": []}
        return {"marts_dir": str(s.marts_dir), "marts": len(before), "changed": []}
    only = set(plan["publish_only"]) if plan is not None and plan["publish_only"] is not None else None
    checksums = publish_marts(settings=s, only=only)
    if plan is not None:
        changes.record(s, "publish", changes.Inputs(**plan["inputs"]))
    changed = sorted(k for k, v in checksums.items() if before.get(k) != v)
    log.info(
        "published %d mart(s) to %s; %d changed: %s",
        len(checksums),
        s.marts_dir,
        len(changed),
        ", ".join(changed) or "none",
    )
    outlet_events[MARTS_ASSET].extra = {"marts": len(checksums), "changed": changed}
    return {"marts_dir": str(s.marts_dir), "marts": len(checksums), "changed": changed}


def report(plan: Mapping[str, Any] | None = None) -> str:
    """Render the HTML report (with a plan: only when its inputs changed) and record it as done."""
    from warehouse import changes
    from warehouse.report import write_report

    s = settings()
    if plan is not None and not plan["report"]:
        log.info("report: skipped, nothing changed since the last report")
        return str(s.reports_dir / "index.html")
    path = write_report(settings=s)
    if plan is not None:
        changes.record(s, "report", changes.Inputs(**plan["inputs"]))
    log.info("report written to %s", path)
    return str(path)


def docs() -> dict[str, str]:
    """GX Data Docs (validation results) and dbt docs, both static HTML under <data_dir>/docs."""
    from expectations.validate import build_data_docs
    from warehouse.build import generate_docs

    s = settings()
    out = {"gx": str(build_data_docs(s)), "dbt": str(generate_docs(settings=s))}
    log.info("GX Data Docs: %s; dbt docs: %s", out["gx"], out["dbt"])
    return out
