"""``make demo``: the whole pipeline through Airflow, offline, against the bundled SCB snapshot.

1. set up a project-local Airflow (``.airflow/``: SQLite, pool ``duckdb_writer``, DAGs serialised),
2. ``airflow dags test regionstat_ingest`` (extract -> validate -> load, one mapped task per catalogue source),
   then the real files bundled with the offline snapshot (``extract.bundled``: Linköping's FO05/PE12, SCB's county
   RAMS 2018 exports, a Norrbotten OD matrix) are dropped into the inbox (once: bytes already processed are not
   dropped again) and ``regionstat_inbox`` loads them, then ``airflow dags test regionstat_transform``
   (dbt per model group -> Parquet marts -> HTML report -> docs),
3. a summary: DAG run states, where the warehouse, marts, report and docs are, and example queries.

Data goes to ``$REGIONSTAT_DATA_DIR`` (default ``./data``). Run it again: the second ingest costs no data requests.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from regionstat.cli.airflow_local import (
    AirflowSetupError,
    DagRunSummary,
    airflow_env,
    dag_ids,
    dags_test,
    setup,
)

INGEST = "regionstat_ingest"
INBOX = "regionstat_inbox"
TRANSFORM = "regionstat_transform"

# Lines of `airflow dags test` output worth showing live (the rest goes to the log file).
_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+) map_index=(-?\d+)")
_INTERESTING = re.compile(
    r"(fetched \S+: .* data request|unchanged upstream|already processed|validation passed|quarantined:|"
    r"load: loaded|raw\.\S+ changed|no raw table changed|dbt (build|test): \d+ ok|published \d+ mart|"
    r"report written|GX Data Docs:|regionstat task failed|regionstat DAG run failed|plan: |transform skipped|"
    r"skipped, nothing changed|nothing to build)"
)

EXAMPLE_QUERIES = [
    (
        "mart_population_growth",
        "select area_name, population_end, round(growth_pct, 1) as growth_pct from marts.mart_population_growth "
        "where area_type = 'municipality' and horizon_label = '2014-2024' order by growth_pct desc",
    ),
    (
        "mart_commuting_balance",
        "select municipality_name, year, jobs, employed_residents, net_commuting, "
        "round(job_ratio, 2) as job_ratio from marts.mart_commuting_balance "
        "where year = (select max(year) from marts.mart_commuting_balance) order by net_commuting desc",
    ),
    (
        "mart_sector_location_quotients",
        "select sni_group_code, employed, round(lq_vs_reference, 2) as lq_vs_sweden "
        "from marts.mart_sector_location_quotients where region_code = '0580' and basis = 'day' "
        "and year = (select max(year) from marts.mart_sector_location_quotients) order by lq_vs_sweden desc limit 5",
    ),
    ("dim_municipalities", "select * from marts.dim_municipalities where is_in_region_set"),
]


def _short(line: str) -> str:
    """The message of a structured log line (drops timestamp, level, logger and location)."""
    m = re.search(r"\[(?:info|warning|error)\s*\]\s+(.*?)\s+\[[\w.]+\](?:\s+\S+=\S+)*\s*$", line)
    text = m.group(1) if m else line
    return text.strip()[:160]


_LOADED = re.compile(r"load: loaded (\d+) batch")


def _progress(prefix: str = "    ", loaded: list[int] | None = None):
    seen: set[str] = set()

    def on_line(line: str) -> None:
        if loaded is not None and "[regionstat.airflow]" in line and (n := _LOADED.search(line)):
            loaded.append(int(n.group(1)))
        m = _TASK_START.search(line)
        if m:
            task, idx = m.group(1), int(m.group(2))
            label = task + (f"[{idx}]" if idx >= 0 else "")
            if label not in seen:
                seen.add(label)
                print(f"{prefix}> {label}", flush=True)
            return
        if "[regionstat.airflow]" in line and _INTERESTING.search(line):
            print(f"{prefix}    {_short(line)}", flush=True)

    return on_line


def _run(dag_id: str, env: dict[str, str], loaded: list[int] | None = None) -> DagRunSummary:
    print(f"\n$ airflow dags test {dag_id}", flush=True)
    summary = dags_test(dag_id, env, on_line=_progress(loaded=loaded))
    mark = "ok" if summary.ok else "FAILED"
    print(f"  [{mark}] {summary.line()}", flush=True)
    if not summary.ok:
        print(f"  full log: {summary.log_path}", flush=True)
    return summary


def _drop_bundled(data_dir: Path) -> None:
    from extract.bundled import drop_bundled
    from regionstat.settings import Settings

    settings = Settings(data_dir=data_dir)
    dropped = drop_bundled(settings)
    new = [d.name for d in dropped if d.outcome == "dropped"]
    print(f"\nbundled real files -> {settings.inbox_dir}: ", end="", flush=True)
    print(f"dropped {', '.join(new)}" if new else f"all {len(dropped)} already dropped or loaded", flush=True)


def _inbox_has_files(data_dir: Path) -> bool:
    inbox = data_dir / "inbox" / "commuting"
    return inbox.is_dir() and any(p.is_file() and not p.name.startswith(".") for p in inbox.iterdir())


def _works(data_dir: Path, sql: str) -> bool:
    import duckdb

    try:
        con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    except duckdb.Error:
        return False
    try:
        con.execute(sql).fetchmany(1)
        return True
    except duckdb.Error:
        return False
    finally:
        con.close()


def _queries(data_dir: Path) -> list[str]:
    """Three example queries that run against this warehouse (curated ones first, else any marts)."""
    available = {p.stem for p in (data_dir / "marts").glob("*.parquet")}
    picked = [sql for name, sql in EXAMPLE_QUERIES if name in available and _works(data_dir, sql)][:3]
    for name in sorted(available):
        if len(picked) >= 3:
            break
        if not any(f"marts.{name} " in q or q.endswith(f"marts.{name}") for q in picked):
            picked.append(f"select * from marts.{name} limit 10")
    return picked


def _status_line(path: Path, what: str = "") -> str:
    return f"{path}{' ' + what if what else ''}" if path.exists() else f"{path} (not written)"


def _validation_summary(data_dir: Path) -> str:
    """One line from the ledger: how many sources are live, passed validation, were quarantined, warned."""
    from regionstat.settings import Settings
    from warehouse.status import status_rows

    try:
        rows = status_rows(Settings(data_dir=data_dir))
    except Exception as exc:  # the summary must not hide the run's own outcome
        return f"ledger not readable ({exc})"
    loaded = [r for r in rows if r["status"] == "loaded"]
    passed = [r for r in loaded if str(r["validation"]).startswith("passed")]
    warned = sum(1 for r in loaded if "warning" in str(r["validation"]))
    quarantined = [r["source_name"] for r in rows if r["status"] == "quarantined"]
    line = f"{len(loaded)} in the warehouse, {len(passed)} passed validation, {warned} with warnings"
    line += f", {len(quarantined)} quarantined" + (f" ({', '.join(quarantined)})" if quarantined else "")
    return line + "  [details: regionstat status, regionstat quarantine list]"


def _nothing_changed(data_dir: Path) -> bool:
    """True when the last build, publish and report already reflect the live loads and the code (the transform
    DAG's own ``plan`` task would short-circuit): the demo then does not start it at all."""
    from regionstat.settings import Settings
    from warehouse import changes

    return changes.nothing_changed(Settings(data_dir=data_dir))


def summary(env: dict[str, str], runs: list[DagRunSummary], outcome: str = "") -> None:
    data_dir = Path(env["REGIONSTAT_DATA_DIR"])
    marts_dir = data_dir / "marts"
    marts = sorted(marts_dir.glob("*.parquet"))
    gx = data_dir / "docs" / "gx" / "index.html"
    dbt_docs = data_dir / "docs" / "dbt" / "static_index.html"
    rel = os.path.relpath(data_dir)
    data_arg = "" if Path(rel) == Path("data") else f"REGIONSTAT_DATA_DIR={data_dir} "
    print("\n" + "=" * 78)
    print("regionstat demo: orchestrated by Airflow (airflow dags test), offline against the bundled snapshot")
    print("=" * 78)
    print("DAG runs:")
    for r in runs:
        print(f"  {'ok    ' if r.ok else 'FAILED'} {r.line()}")
    if outcome:
        print(f"This run: {outcome}")
    print(f"\nSources live (validated by Great Expectations before loading): {_validation_summary(data_dir)}")
    print("\nWhere things are:")
    print(f"  DuckDB warehouse   {_status_line(data_dir / 'warehouse.duckdb', '(raw.*, staging, marts.*, ops.*)')}")
    print(f"  Parquet marts      {marts_dir}/ ({len(marts)} files, checksums in _index.json)")
    print(f"  HTML report        {_status_line(data_dir / 'reports' / 'index.html')}")
    print(f"  GX Data Docs       {_status_line(gx)}")
    print(f"  dbt docs           {_status_line(dbt_docs)}")
    print(f"  Airflow logs       {Path(env['AIRFLOW_HOME']) / 'dags-test'}/*.log  (AIRFLOW_HOME={env['AIRFLOW_HOME']})")
    print("                     per task also in the Airflow UI (make airflow): each run's grid shows its task logs")
    print("\nTry:")
    for sql in _queries(data_dir):
        print(f'  {data_arg}.venv/bin/regionstat sql "{sql}"')
    print(f"  {data_arg}.venv/bin/regionstat status          # ledger: loads, validation, freshness")
    print("  make airflow                             # the Airflow UI on http://127.0.0.1:8080 (same DAGs)")
    print("  make demo                                # again: the ingest makes zero data requests")


def main(argv: list[str] | None = None) -> int:
    start = time.perf_counter()
    env = airflow_env()
    data_dir = Path(env["REGIONSTAT_DATA_DIR"])
    print(f"regionstat demo: data in {data_dir}, Airflow home {env['AIRFLOW_HOME']}", flush=True)
    try:
        env = setup(env)
    except AirflowSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # one ingest DAG per catalogue schedule (today just regionstat_ingest), as serialised by setup
    ingest_ids = sorted({d for d in dag_ids(env) if d.startswith("regionstat_ingest")} | {INGEST})
    loaded: list[int] = []
    runs = [_run(dag_id, env, loaded) for dag_id in ingest_ids]
    if not env.get("REGIONSTAT_API_URL"):  # offline: the bundled real files arrive as a municipality's drop would
        _drop_bundled(data_dir)
    if _inbox_has_files(data_dir):
        runs.append(_run(INBOX, env, loaded))
    outcome = f"{sum(loaded)} loaded"
    if not (data_dir / "warehouse.duckdb").exists():
        outcome += f", {TRANSFORM} skipped: nothing was loaded into {data_dir / 'warehouse.duckdb'}"
    elif _nothing_changed(data_dir):
        outcome += ", transform skipped: nothing changed"
    else:
        runs.append(_run(TRANSFORM, env))
        outcome += f", {TRANSFORM} {'ran' if runs[-1].ok else 'FAILED'}"
    print(f"\n{outcome}", flush=True)
    summary(env, runs, outcome)
    print(f"\n(total {time.perf_counter() - start:.0f} s)")
    failed = [r for r in runs if not r.ok]
    if failed:
        print(f"error: {failed[0].dag_id} run {failed[0].state}; see {failed[0].log_path}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
