"""The ``regionstat`` command line: run the pipeline without a scheduler, inspect it, query it.

Every command exits non-zero on failure and prints the reason as its first line on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Literal

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regionstat.batches import atomic_path
from regionstat.config import RunConfig, resolve
from regionstat.errors import RegionstatError
from regionstat.settings import Settings

if TYPE_CHECKING:
    import duckdb


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away (``regionstat sql ... | head``): stop quietly with 0, as for plain writes."""
        _silence_stdout()
        raise SystemExit(0)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush into a closed pipe says nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


console = _Console(stderr=False, highlight=False, soft_wrap=True)
if not console.is_terminal and "COLUMNS" not in os.environ:
    console.width = 160  # piped or captured output: wide tables instead of 80-column wrapping
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

EPILOG = """\
environment:
  REGIONSTAT_DATA_DIR    where landing/, warehouse.duckdb, marts/, reports/ live (default ./data)
  REGIONSTAT_API_URL     PxWeb v2 base URL; unset = the bundled offline snapshot (default), 'live' = SCB
  REGIONSTAT_REGION_SET  ostergotland (default), sweden (all 290 municipalities) or counties:06,18
  REGIONSTAT_CONFIG      a regionstat.toml to use (default: ./regionstat.toml if present; see `config show`)
  REGIONSTAT_COUNTIES, REGIONSTAT_PERIODS
                         counties (06,18) and growth periods (2003:2022,2014:2024), as --counties / --period
  REGIONSTAT_CATALOGUE   another catalogue file instead of the bundled regionstat/catalogue.yaml
  REGIONSTAT_REQUEST_DEADLINE_SECONDS, REGIONSTAT_MAX_ATTEMPTS, REGIONSTAT_TABLE_RETRY_BUDGET
                         override the catalogue's HTTP limits (http: in regionstat/catalogue.yaml)

exit codes: 0 ok; 1 a source failed or was quarantined (summary on stderr), or a stage failed; 2 bad SQL/arguments

quick start:
  regionstat run                      whole pipeline offline against the bundled snapshot
  regionstat run --live --counties 06,18 --period 2003:2022
                                      your counties and growth period (or put them in ./regionstat.toml)
  regionstat config show              the resolved configuration and where each value comes from
  regionstat status                   what was loaded when, validation outcome, freshness
  regionstat sql "select * from marts.mart_commuting_balance limit 5"
"""


def _run_config(args: argparse.Namespace) -> RunConfig:
    """The user's configuration: these flags over the environment over the config file (regionstat.config)."""
    return resolve(
        config=getattr(args, "config", None),
        counties=getattr(args, "counties", None),
        region_set=getattr(args, "regions", None),
        periods=getattr(args, "period", None) or (),
        dbt_vars=getattr(args, "var", None) or (),
        seeds=getattr(args, "seed", None) or (),
        tables=getattr(args, "table", None) or (),
    )


def _settings(args: argparse.Namespace, config: RunConfig | None = None) -> Settings:
    """Settings from the environment; for the commands with configuration flags (run, extract, build, report,
    config show) also the user configuration, so a broken regionstat.toml never stops ``sql`` or ``status``."""
    base = Settings.from_env(live=getattr(args, "live", False), api_url=getattr(args, "api_url", None))
    if config is None and not hasattr(args, "config"):
        return base
    return (config or _run_config(args)).settings(base)


def _print_extract(results: list) -> None:
    landed = [r for r in results if r.status == "landed"]
    skipped = [r for r in results if r.status.startswith("skipped")]
    failed = [r for r in results if r.status == "failed"]
    requests = sum(r.requests for r in results)
    bound = sum(r.lower_bound for r in landed)
    rows = sum(r.rows for r in landed)
    console.print(
        f"extract: {len(results)} source(s), {len(landed)} landed ({rows:,} rows), "
        f"{requests} data request(s) (lower bound {bound}), {len(skipped)} skipped as unchanged"
        + (f", {len(failed)} failed" if failed else "")
    )


def _extract_progress() -> Callable:
    def report(result) -> None:
        if result.status == "failed":
            console.print(f"  [red]failed[/]    {result.source_name:<28} {escape(result.message)}")
            return
        mark = "[green]landed[/]" if result.status == "landed" else "[dim]unchanged[/]"
        console.print(
            f"  {mark} {result.source_name:<28} {result.table_id:<18} {result.rows:>9,} rows {result.requests:>3} req"
        )

    return report


@dataclass
class Problem:
    """A table that did not reach the warehouse in this run: fetch failed, file unreadable, validation failed."""

    kind: Literal["failed", "quarantined"]
    source_name: str
    what: str  # SCB table id or file name (and load id for quarantined batches)
    reason: str


def _extract_problems(results: list) -> list[Problem]:
    return [
        Problem(r.status, r.source_name, r.table_id, r.message)
        for r in results
        if r.status in ("failed", "quarantined")
    ]


def _validation_problems(outcomes: list) -> list[Problem]:
    return [
        Problem("quarantined", o.source_name, o.load_id, o.failures[0] if o.failures else "failed validation")
        for o in outcomes
        if not o.success
    ]


def _report_problems(problems: list[Problem], total: int) -> int:
    """The keep-going summary: one line naming every table that did not load, then one line per table; exit 1."""
    if not problems:
        return 0
    names = ", ".join(f"{p.source_name} ({p.kind})" for p in problems)
    err_console.print(f"error: {len(problems)} of {total} source(s) not loaded: {names}", markup=False)
    for p in problems:
        err_console.print(f"  {p.kind:<12} {p.source_name} {p.what}: {p.reason}", markup=False)
    return 1


def cmd_extract(args: argparse.Namespace) -> int:
    from extract.pipeline import extract_all, extract_inbox

    config = _run_config(args)
    settings = _settings(args, config)
    names, inbox = config.sources()
    where = settings.api_url or "the bundled offline snapshot"
    console.print(f"extracting from {where} (region set {settings.region_set}) into {settings.landing_dir}")
    results = extract_all(names, settings=settings, force=args.force, progress=_extract_progress())
    if inbox:
        results += extract_inbox(settings=settings)
    _print_extract(results)
    return _report_problems(_extract_problems(results), len(results))


def cmd_validate(args: argparse.Namespace) -> int:
    from expectations.validate import validate_pending

    settings = _settings(args)
    sources = None
    if args.table:
        from regionstat.catalogue import load_catalogue

        sources = [load_catalogue().source(t).name for t in args.table]
    outcomes = validate_pending(settings, sources=sources)
    _print_validation(outcomes)
    console.print(f"data docs: {settings.docs_dir / 'gx' / 'index.html'}")
    return 1 if any(not o.success for o in outcomes) and args.strict else 0


def _print_validation(outcomes: list) -> None:
    ok = [o for o in outcomes if o.success]
    bad = [o for o in outcomes if not o.success]
    warns = sum(len(o.warnings) for o in outcomes)
    console.print(f"validate: {len(outcomes)} batch(es), {len(ok)} passed, {len(bad)} quarantined, {warns} warning(s)")
    for o in bad:
        reason = escape(o.failures[0] if o.failures else "")
        console.print(f"  [red]quarantined[/] {o.source_name} {o.load_id}: {reason}")


def cmd_load(args: argparse.Namespace) -> int:
    from warehouse.load import load_validated

    summary = load_validated(settings=_settings(args))
    console.print(f"load: {summary.line()}")
    failed = [Problem("failed", name, load_id, reason) for name, load_id, reason in summary.failed]
    return _report_problems(failed, len(summary.loaded) + len(failed))


def cmd_build(args: argparse.Namespace) -> int:
    from warehouse import changes
    from warehouse.available import build_available
    from warehouse.build import run_dbt

    config = _run_config(args)
    settings = _settings(args, config)
    config.prepare(settings)
    inputs = changes.current_inputs(settings) if not args.select else None
    if args.select:
        result, notes = run_dbt(settings=settings, select=args.select, require_match=True), list[str]()
    else:
        result, notes = build_available(settings=settings)
    if inputs is not None:  # a full build: the next `regionstat run` need not build again for these inputs
        changes.record(settings, "build", inputs)
    console.print(result.line())
    for note in notes:
        console.print(f"  {note}", markup=False)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from warehouse.publish import publish_marts

    settings = _settings(args)
    marts = publish_marts(settings=settings)
    console.print(f"publish: {len(marts)} marts -> {settings.marts_dir}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from warehouse.report import write_report

    path = write_report(settings=_settings(args))
    console.print(f"report: {path}")
    return 0


@dataclass
class RunSummary:
    timings: dict[str, float] = field(default_factory=dict)
    sources: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0


def _seconds(t: float) -> str:
    """Elapsed time in words: ``0.8 s``, ``14 s``, ``2 min 5 s``."""
    if t < 10:
        return f"{t:.1f} s"
    if t < 60:
        return f"{t:.0f} s"
    minutes, sec = divmod(round(t), 60)
    return f"{minutes} min {sec} s"


def _validate_pending(settings: Settings, docs: bool, sources: list[str] | None) -> list:
    from expectations.validate import validate_pending

    return validate_pending(settings, build_docs=docs, sources=sources)


def run_pipeline(
    settings: Settings, *, force: bool = False, docs: bool = True, config: RunConfig | None = None
) -> RunSummary:
    """extract -> validate -> load -> build -> publish -> report, printing one line per stage.

    Tables are independent: one that fails to fetch or is quarantined keeps its last good data in the warehouse,
    the others are loaded, built and published; ``summary.problems`` names each one (the CLI exits 1).
    ``config.tables`` limits extraction to those sources; the build then skips, with one note each, the marts
    whose raw inputs hold no rows (``warehouse.available``).
    """
    from extract.pipeline import extract_all, extract_inbox
    from regionstat.batches import pending
    from warehouse import changes
    from warehouse.available import build_available
    from warehouse.load import load_validated
    from warehouse.publish import INDEX_NAME, publish_marts, read_index_checksums
    from warehouse.report import write_report

    summary = RunSummary()
    timings = summary.timings

    def stage(name: str, fn: Callable):
        start = time.perf_counter()
        with console.status(f"{name} ..."):
            out = fn()
        timings[name] = round(time.perf_counter() - start, 2)
        return out

    config = config or RunConfig()
    names, inbox = config.sources()
    config.prepare(settings)
    where = settings.api_url or "the bundled offline snapshot"
    console.print(f"regionstat run: {where}, region set {settings.region_set}, data in {settings.data_dir}")
    if names is not None:
        console.print(f"tables: {', '.join(names)}" + (" and the inbox's files" if inbox else ""))
    results = stage(
        "extract",
        lambda: (
            extract_all(names, settings=settings, force=force, progress=_extract_progress())
            + (extract_inbox(settings=settings) if inbox else [])
        ),
    )
    _print_extract(results)
    summary.sources = len(results)
    summary.problems += _extract_problems(results)
    # GX takes about a second to import: only when a batch waits for validation (not in a run that landed nothing)
    outcomes = stage(
        "validate", lambda: _validate_pending(settings, docs, config.batch_sources()) if pending(settings) else []
    )
    _print_validation(outcomes)
    summary.problems += _validation_problems(outcomes)
    loaded = stage("load", lambda: load_validated(settings=settings))
    console.print(f"load: {loaded.line()}")
    summary.problems += [Problem("failed", name, load_id, reason) for name, load_id, reason in loaded.failed]
    inputs = changes.current_inputs(settings)
    plans = changes.plans(settings, inputs)
    build, publish, render = plans["build"], plans["publish"], plans["report"]
    if build.nothing and publish.nothing and render.nothing:
        console.print(
            f"{len(loaded.loaded)} loaded, build, publish and report skipped: nothing changed since the last run"
        )
    else:
        select = changes.dbt_selection(settings, build)
        if build.nothing or select == "":
            console.print(build.line() if build.nothing else "build: skipped, no dbt source reads the changed tables")
        else:
            if select:
                console.print(build.line())
            result, notes = stage("build", lambda: build_available(settings=settings, select=select))
            console.print(result.line())
            for note in notes:
                console.print(f"  {note}", markup=False)
        changes.record(settings, "build", inputs)
        if publish.nothing:
            console.print(publish.line())
        else:
            only = changes.marts_to_publish(settings, publish)
            marts = stage("publish", lambda: publish_marts(settings=settings, only=only))
            changes.record(settings, "publish", inputs)
            rewritten = len(marts) if only is None else len(only & set(marts))
            console.print(f"publish: {len(marts)} marts ({rewritten} rewritten)")
        if render.nothing:
            console.print(render.line())
        else:
            stage("report", lambda: write_report(settings=settings))
            changes.record(settings, "report", inputs)
    marts = read_index_checksums(settings.marts_dir / INDEX_NAME)
    report = settings.reports_dir / "index.html"
    console.print("")
    console.print(f"[bold]DuckDB warehouse[/]  {settings.warehouse_path}")
    console.print(f"[bold]Parquet marts[/]     {settings.marts_dir}/ ({len(marts)} files)")
    console.print(f"[bold]report[/]            {report}")
    console.print(f"[bold]data docs (GX)[/]    {settings.docs_dir / 'gx' / 'index.html'}")
    console.print("took " + ", ".join(f"{name} {_seconds(t)}" for name, t in timings.items()))
    return summary


def cmd_run(args: argparse.Namespace) -> int:
    config = _run_config(args)
    summary = run_pipeline(_settings(args, config), force=args.force, docs=not args.no_docs, config=config)
    return _report_problems(summary.problems, summary.sources)


# status columns: (header, row -> text, shown in a narrow terminal); --wide shows all
_STATUS_COLUMNS: list[tuple[str, Callable[[dict], str], bool]] = [
    ("source", lambda r: r["source_name"], True),
    ("raw table", lambda r: r["raw_table"], False),
    ("status", lambda r: r["status"], True),
    ("rows", lambda r: f"{r['rows'] or 0:,}", True),
    ("loaded at", lambda r: f"{r['loaded_at']:%Y-%m-%d %H:%M}" if r["loaded_at"] else "", True),
    ("validation", lambda r: r["validation"], True),
    ("upstream updated", lambda r: r["vintage"], False),
    ("age (d)", lambda r: "" if r["age_days"] is None else f"{r['age_days']:.0f}", False),
    (
        "freshness",
        lambda r: r["freshness"] + (f" ({r['freshness_threshold']})" if r.get("freshness_threshold") else ""),
        True,
    ),
]


def _natural_width(table: Table) -> int:
    """The width ``table`` takes without wrapping any cell (rich measures within the console width otherwise)."""
    return console.measure(table, options=console.options.update(max_width=100_000)).maximum


def _status_table(settings: Settings, rows: list[dict], *, wide: bool) -> tuple[Table, bool]:
    """The status table, all columns if ``wide`` or if they fit the console, else the essential ones; the bool
    says whether columns were left out. Source names never wrap; other cells wrap within their column."""

    def build(columns: list[tuple[str, Callable[[dict], str], bool]]) -> Table:
        table = Table(
            title=f"regionstat status ({settings.data_dir})", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False
        )
        for header, _, _ in columns:
            # short or single-word columns never wrap; dates, validation and freshness wrap between words
            table.add_column(
                header,
                no_wrap=header in ("source", "raw table", "status", "rows"),
                min_width=10 if header in ("loaded at", "upstream updated") else None,
                overflow="fold",
                justify="right" if header == "rows" else "left",
            )
        for r in rows:
            table.add_row(*[escape(get(r)) for _, get, _ in columns])
        return table

    full = build(_STATUS_COLUMNS)
    if wide or _natural_width(full) <= console.width:
        return full, False
    return build([c for c in _STATUS_COLUMNS if c[2]]), True


def cmd_status(args: argparse.Namespace) -> int:
    from warehouse.status import status_rows

    settings = _settings(args)
    if not settings.warehouse_path.exists():
        landed = settings.landing_dir.is_dir() and any(settings.landing_dir.rglob("*.manifest.json"))
        raise RegionstatError(
            f"no warehouse at {settings.warehouse_path}: "
            + ("batches are landed but none loaded yet (regionstat load)" if landed else "nothing was run there")
            + "; set REGIONSTAT_DATA_DIR to the data directory of a run, or run `regionstat run`"
        )
    rows = status_rows(settings)
    if args.format == "json":
        console.print_json(json.dumps(rows, default=str))
        return 0
    table, narrowed = _status_table(settings, rows, wide=args.wide)
    width = console.width
    try:
        if args.wide:  # as wide as the table needs (a terminal wraps or scrolls the lines)
            console.width = max(width, _natural_width(table))
        console.print(table)
    finally:
        console.width = width
    if narrowed:
        console.print("(raw table, upstream updated and age left out to fit the terminal: --wide shows them)")
    return 0


def _cell(v: object) -> str:
    """A value as duckdb's and dbt's CLIs print it: integers (and years) as they are, floats to 4 decimals at most.

    No thousands separators: ``select 2024`` prints ``2024`` and copied figures paste back as numbers.
    """
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return str(v)
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return repr(round(v, 4)) if abs(v) >= 1e-3 else f"{v:.4g}"
    return str(v)


def duckdb_one_line(exc: BaseException) -> str:
    """DuckDB's message and hint on one line; the caret drawing under the query becomes a column number."""
    lines = [line.rstrip() for line in str(exc).splitlines() if line.strip()]
    parts: list[str] = []
    where = ""
    for i, line in enumerate(lines):
        if line.startswith("LINE "):
            prefix = line[: line.index(":") + 2] if ":" in line else ""
            caret = lines[i + 1] if i + 1 < len(lines) else ""
            if prefix and caret.strip().startswith("^"):
                column = len(caret) - len(caret.lstrip()) - len(prefix) + 1
                where = f" (at {prefix.split(':')[0].lower()}, column {column})"
            else:
                where = f" (at {line})"
            break
        parts.append(line)
    return " ".join(parts) + where


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def _json_records(columns: list[str], rows: list[tuple], *, lines: bool = False, pretty: bool = False) -> str:
    """Full precision (pandas' to_json rounds floats to 10 significant digits); dates as ISO strings.

    ``lines``: JSON Lines, one object per row (for streaming tools); ``pretty``: indented, for a terminal.
    """
    import orjson

    option = orjson.OPT_NON_STR_KEYS
    records = [dict(zip(columns, row, strict=True)) for row in rows]
    if lines:
        return "".join(orjson.dumps(r, default=_json_default, option=option).decode("utf-8") + "\n" for r in records)
    if pretty:
        option |= orjson.OPT_INDENT_2
    return orjson.dumps(records, default=_json_default, option=option).decode("utf-8") + "\n"


def _write_csv(rel: duckdb.DuckDBPyRelation, path: Path) -> int:
    """DuckDB's own CSV writer (header; lists as ``[1, 2]``, NULL empty, ``''`` as ``""``), so ``read_csv`` and
    spreadsheets read back what was queried; returns the row count.

    The analyst connection may not write files, so the rows stream as Arrow into a private in-memory connection
    that writes only ``path``, which the caller chose.
    """
    import duckdb

    with duckdb.connect(":memory:") as writer:
        writer.register("result", rel.to_arrow_reader())
        target = str(path).replace("'", "''")
        written = writer.execute(f"copy result to '{target}' (format csv, header)").fetchone()
    return int(written[0]) if written else 0


def _print_csv(rel: duckdb.DuckDBPyRelation) -> None:
    """CSV on stdout, byte for byte what ``--output`` would write (via a temporary file, streamed)."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="regionstat-sql-") as tmp:
        path = Path(tmp) / "result.csv"
        _write_csv(rel, path)
        with path.open(encoding="utf-8", newline="") as csv_file:
            shutil.copyfileobj(csv_file, sys.stdout)


def _output_path(settings: Settings, output: str) -> Path:
    """``--output`` may not overwrite what the pipeline owns (the warehouse, landing, marts, reports, ...)."""
    path = Path(output).resolve()
    if path == settings.data_dir or settings.data_dir in path.parents:
        raise RegionstatError(
            f"--output {output}: inside the data directory {settings.data_dir}, which only the pipeline writes; "
            "choose a path outside it"
        )
    return path


def _write_output(path: Path, write: Callable[[Path], object]) -> None:
    """Write via a temporary file beside ``path`` and rename, so a failed write leaves no half file."""
    with atomic_path(path) as tmp:
        write(tmp)


def cmd_sql(args: argparse.Namespace) -> int:
    """Query through the analyst connection (no writes, no files, no settings); files are written here."""
    import duckdb

    from warehouse.db import connect_analyst

    settings = _settings(args)
    output = _output_path(settings, args.output) if args.output else None
    if args.format == "parquet" and output is None:
        raise RegionstatError("--format parquet needs --output FILE")
    con = connect_analyst(settings)
    try:
        rel = con.sql(args.query)
        if rel is None:
            raise RegionstatError("the statement returned no rows (regionstat sql is read-only)")
        if args.format == "table":
            cols = rel.columns
            rows = rel.limit(args.limit + 1).fetchall()
            table = Table(*[escape(c) for c in cols])
            for row in rows[: args.limit]:
                table.add_row(*[escape(_cell(v)) for v in row])  # data, not rich markup
            console.print(table)
            if len(rows) > args.limit:
                console.print(f"(first {args.limit} rows; use --limit or --format csv for all)")
            return 0
        if args.format == "parquet":
            import pyarrow.parquet as pq

            data = rel.to_arrow_table()
            assert output is not None
            _write_output(output, lambda tmp: pq.write_table(data, tmp))
            console.print(f"wrote {output} ({data.num_rows:,} rows)")
            return 0
        if args.format == "csv":
            if output is None:
                _print_csv(rel)
                return 0
            with atomic_path(output) as tmp:
                written = _write_csv(rel, tmp)
            console.print(f"wrote {output} ({written:,} rows)")
            return 0
        records = rel.fetchall()
        pretty = output is None and sys.stdout.isatty()
        text = _json_records(rel.columns, records, lines=args.format == "jsonl", pretty=pretty)
        count = len(records)
        if output is None:
            sys.stdout.write(text)
        else:
            _write_output(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
            console.print(f"wrote {output} ({count:,} rows)")
    except duckdb.Error as exc:  # the analyst's SQL: one line, exit 2 (usage), not a traceback
        err_console.print(f"error: {duckdb_one_line(exc)}", markup=False)
        return 2
    finally:
        con.close()
    return 0


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    from expectations.validate import list_quarantine

    entries = list_quarantine(_settings(args))
    if not entries:
        console.print("quarantine is empty")
        return 0
    console.print(f"{len(entries)} quarantined batch(es), newest first:")
    for e in entries:
        console.print(
            f"{e.source_name}  {e.load_id}  ({e.raw_table}, {e.rows if e.rows is not None else '?'} rows)", markup=False
        )
        console.print(f"    {e.reason}", markup=False)
        console.print(f"    details: {e.reason_path}", markup=False)
    return 0


def cmd_inbox(args: argparse.Namespace) -> int:
    """List the inbox: each file, the catalogue entry it matches and whether it is new; --bundled drops the real
    files bundled with the offline snapshot first (``regionstat run`` then loads them)."""
    from extract.files import file_sha256, scan_inbox
    from extract.pipeline import processed_file_hashes
    from regionstat.catalogue import load_catalogue

    settings = _settings(args)
    if args.bundled:
        from extract.bundled import drop_bundled

        for d in drop_bundled(settings):
            console.print(f"{d.outcome:<9} {d.name}", markup=False)
    found = scan_inbox(settings.inbox_dir, list(load_catalogue().files))
    console.print(f"inbox {settings.inbox_dir}: {len(found)} file(s)", markup=False)
    for path, hit in found:
        if isinstance(hit, Exception):
            console.print(f"  unmatched {path.name}: {hit}", markup=False)
            continue
        seen = file_sha256(path) in processed_file_hashes(settings, hit.raw_table, hit.name)
        console.print(
            f"  {'processed' if seen else 'new':<9} {path.name} -> {hit.name} (raw.{hit.raw_table})", markup=False
        )
    return 0


def cmd_snapshot_serve(args: argparse.Namespace) -> int:
    from extract.pipeline import snapshot_server_module

    return snapshot_server_module().main(args.server_args) or 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Write (or with --check, only compare) the dbt files that follow from the catalogue."""
    from regionstat import generate

    out_dir = Path(args.out).resolve() if args.out else generate.PROJECT_ROOT
    rendered = generate.render()
    if args.check:
        stale = generate.stale(out_dir, rendered)
        for path in stale:
            err_console.print(f"stale: {path} (run `regionstat generate`)", markup=False)
        if not stale:
            console.print(f"generate --check: {len(rendered)} generated file(s) up to date")
        return 1 if stale else 0
    written = generate.write(out_dir, rendered)
    for path in written:
        console.print(f"wrote {path}", markup=False)
    console.print(f"generate: {len(written)} of {len(rendered)} file(s) rewritten under {out_dir}", markup=False)
    return 0


def cmd_check_catalogue(args: argparse.Namespace) -> int:
    """Check every catalogue selection against the API's metadata (no data requests); exit 1 on any mismatch."""
    from extract.catalogue_check import check_catalogue, discover_tables, elimination_notes
    from extract.pipeline import api_base_url, make_client
    from regionstat.catalogue import load_catalogue

    settings = _settings(args)
    catalogue = load_catalogue()
    region_set = catalogue.region_set(settings.region_set)
    with api_base_url(settings) as url:
        where = settings.api_url or "the bundled offline snapshot"
        console.print(f"checking {len(catalogue.sources)} catalogue source(s) against {where} (metadata only)")
        client = make_client(url, settings, catalogue)
        mismatches = check_catalogue(client, catalogue, region_set)
        notes = elimination_notes(client, catalogue, region_set)
        discoveries = discover_tables(client, catalogue, region_set)
    for m in mismatches:
        err_console.print(f"  mismatch {m}", markup=False)
    for note in notes:
        console.print(f"  note: {note}", markup=False)
    for source in catalogue.sources:
        if source.verify_live:
            console.print(f"  to verify live: {source.table} ({source.name}): {source.verify_live}", markup=False)
    for line in (line for found in discoveries for line in found.lines()):
        console.print(f"  discover: {line}", markup=False)
    tables = len({m.table_id for m in mismatches})
    if mismatches:
        err_console.print(
            f"error: check-catalogue: {len(mismatches)} mismatch(es) in {tables} of {len(catalogue.sources)} table(s)",
            markup=False,
        )
        return 1
    console.print(f"check-catalogue: {len(catalogue.sources)} source(s), every selection matches the metadata")
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from expectations.validate import build_data_docs
    from warehouse.build import generate_docs

    settings = _settings(args)
    console.print(f"dbt docs: {generate_docs(settings=settings)}")
    console.print(f"GX data docs: {build_data_docs(settings)}")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the resolved configuration and where each value comes from (flag, env, file, default)."""
    config = _run_config(args)
    settings = _settings(args, config)
    table = Table("setting", "value", "from", title="regionstat configuration")
    for name, value, origin in config.show(settings):
        table.add_row(escape(name), escape(value), escape(origin))
    console.print(table)
    resolved = settings.dbt_vars
    if resolved:
        console.print(f"dbt --vars {escape(json.dumps(resolved, sort_keys=True, ensure_ascii=False))}")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("regionstat")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regionstat",
        description="Regional statistics for Swedish municipalities and localities: SCB PxWeb v2 -> landing "
        "Parquet -> Great Expectations -> DuckDB + dbt -> Parquet marts and an HTML report.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what each stage does")
    parser.add_argument("--version", action="version", version=f"regionstat {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable, help_: str, *, api: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=help_, description=help_, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        p.set_defaults(func=fn)
        if api:
            p.add_argument("--live", action="store_true", help="use SCB's live PxWeb v2 API instead of the snapshot")
            p.add_argument("--api-url", help="use this PxWeb v2 base URL")
            p.add_argument(
                "--region-set", "--regions", dest="regions", help="region set: ostergotland (default) or sweden"
            )
        return p

    def add_config(p: argparse.ArgumentParser, *, region: bool = False) -> None:
        """The user-configuration flags (regionstat.config); they override REGIONSTAT_* and regionstat.toml."""
        p.add_argument("--config", help="regionstat.toml to use (default: ./regionstat.toml, $REGIONSTAT_CONFIG)")
        if region:
            p.add_argument(
                "--region-set", "--regions", dest="regions", help="region set: ostergotland (default) or sweden"
            )
        p.add_argument("--counties", help="region set of these counties, their municipalities and Sweden: 06,18")
        p.add_argument(
            "--period", action="append", metavar="START:END", help="growth period, e.g. 2003:2022 (repeatable)"
        )
        p.add_argument("--var", action="append", metavar="KEY=VALUE", help="a dbt var, e.g. k2_max_minutes=30")
        p.add_argument(
            "--seed",
            action="append",
            metavar="NAME=CSV",
            help="override seed: k2_membership, travel_time, la_membership or localities = your CSV (repeatable)",
        )

    p = add("run", cmd_run, "run the whole pipeline once: extract, validate, load, build, publish, report", api=True)
    p.add_argument("--force", action="store_true", help="fetch even tables whose upstream 'updated' is unchanged")
    p.add_argument("--no-docs", action="store_true", help="skip rebuilding GX Data Docs")
    p.add_argument(
        "--table",
        action="append",
        help="only these sources: raw table, catalogue source or SCB table id, comma-separated or repeated "
        "(population,land_area); marts whose inputs are not loaded are skipped with a note",
    )
    add_config(p, region=False)
    p = add("extract", cmd_extract, "fetch catalogue tables (and inbox files) into landing Parquet", api=True)
    p.add_argument("--table", action="append", help="catalogue source name or SCB table id (repeatable)")
    add_config(p)
    p.add_argument("--force", action="store_true", help="fetch even if upstream 'updated' is unchanged")
    p = add("validate", cmd_validate, "validate every landed, not yet validated batch; quarantine failures")
    p.add_argument("--table", action="append", help="only this catalogue source or SCB table id (repeatable)")
    p.add_argument("--strict", action="store_true", help="exit 1 if any batch was quarantined")
    add("load", cmd_load, "load validated batches into raw.* in DuckDB (one transaction per batch)")
    p = add("build", cmd_build, "run dbt build (seeds, models, tests) on the warehouse")
    p.add_argument("--select", help="dbt selection, e.g. marts.business+")
    add_config(p, region=True)
    add("publish", cmd_publish, "export every mart to data/marts/*.parquet atomically")
    p = add("report", cmd_report, "write the self-contained HTML report to data/reports/index.html")
    add_config(p, region=True)
    add("docs", cmd_docs, "generate dbt docs and GX Data Docs under data/docs/")
    p = add("status", cmd_status, "ledger: what was loaded when, rows, validation outcome, freshness")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--wide", action="store_true", help="every column, however wide the terminal")
    p = add("sql", cmd_sql, "run a read-only SQL query against the warehouse and print the result")
    p.add_argument("query", help='SQL, e.g. "select * from marts.dim_municipalities"')
    p.add_argument(
        "--format",
        choices=["table", "csv", "json", "jsonl", "parquet"],
        default="table",
        help="table (default), csv, json (indented on a terminal), jsonl (one object per line), parquet (--output)",
    )
    p.add_argument("--output", help="write to this file instead of stdout")
    p.add_argument("--limit", type=int, default=50, help="rows shown with --format table (default 50)")
    p = add("generate", cmd_generate, "write dbt sources YAML and seeds from regionstat/catalogue.yaml")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale generated file")
    p.add_argument("--out", help="project root to write under (default: this project)")
    p = add("inbox", cmd_inbox, "list the municipal-file inbox; --bundled drops the real files the snapshot bundles")
    p.add_argument(
        "--bundled", action="store_true", help="copy the bundled real files into the inbox (once; `run` loads them)"
    )
    add(
        "check-catalogue",
        cmd_check_catalogue,
        "check every catalogue selection (variables, value codes, codelists, eliminations) against the API's "
        "table metadata without fetching data; --live checks against SCB",
        api=True,
    )
    q = sub.add_parser("quarantine", help="inspect quarantined batches")
    qsub = q.add_subparsers(dest="quarantine_command", required=True, metavar="SUBCOMMAND")
    ql = qsub.add_parser("list", help="list quarantined batches with their one-line reason")
    ql.set_defaults(func=cmd_quarantine_list)
    c = sub.add_parser("config", help="the user configuration (regionstat.toml, REGIONSTAT_*, flags)")
    csub = c.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    cs = csub.add_parser("show", help="print the resolved configuration and where each value comes from")
    add_config(cs, region=True)
    cs.add_argument("--live", action="store_true", help=argparse.SUPPRESS)
    cs.add_argument("--api-url", help="PxWeb v2 base URL (as for run)")
    cs.set_defaults(func=cmd_config_show)
    s = sub.add_parser("snapshot", help="the bundled offline PxWeb v2 snapshot")
    ssub = s.add_subparsers(dest="snapshot_command", required=True, metavar="SUBCOMMAND")
    ss = ssub.add_parser("serve", help="serve the snapshot over HTTP on 127.0.0.1 (see 'serve --help')", add_help=False)
    ss.add_argument("server_args", nargs=argparse.REMAINDER)
    ss.set_defaults(func=cmd_snapshot_serve)
    return parser


def _where(filename: object) -> str:
    """The file an OSError names, or else the data directory (a full disk often names no file)."""
    if filename:
        return str(filename)
    try:
        return f"under {Settings.from_env().data_dir}"
    except RegionstatError:
        return "under the data directory"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["snapshot", "serve"]:  # the server has its own parser (and --help); pass everything through
        from extract.pipeline import snapshot_server_module

        try:
            server = snapshot_server_module()
        except RegionstatError as exc:
            err_console.print(f"error: {exc}", markup=False)
            return 1
        return int(server.main(argv[2:]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    try:
        return int(args.func(args) or 0)
    except RegionstatError as exc:
        err_console.print(f"error: {exc}", markup=False)
        return 1
    except BrokenPipeError:
        # the reader went away (`regionstat sql ... | head`): stop quietly, as duckdb and dbt do
        _silence_stdout()
        return 0
    except FileNotFoundError as exc:
        err_console.print(f"error: {exc}", markup=False)
        return 1
    except OSError as exc:  # disk full, read-only data directory, ...: one line naming the path, not a traceback
        err_console.print(f"error: {_where(exc.filename)}: {exc.strerror or exc}", markup=False)
        return 1
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("duckdb", "_duckdb"):
            raise
        # DuckDB failing outside a writer (a reader on a full or unreadable disk): its first line, no traceback
        text = str(exc).strip().splitlines()
        err_console.print(f"error: {_where(None)}: {text[0] if text else type(exc).__name__}", markup=False)
        return 1
    except KeyboardInterrupt:
        err_console.print("error: interrupted", markup=False)
        return 130


if __name__ == "__main__":
    sys.exit(main())
