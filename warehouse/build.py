"""Run dbt (in-process, through dbt's programmatic runner) against the warehouse, as its one writer."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from regionstat.batches import atomic_path
from regionstat.errors import RegionstatError, WarehouseWriteError
from regionstat.settings import PROJECT_ROOT, Settings
from warehouse.db import connect_writer, work_copy, work_path

log = logging.getLogger(__name__)

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

IndirectSelection = Literal["eager", "cautious", "buildable", "empty"]
TEST_PREFIXES = ("test.", "unit_test.")  # unique_id prefixes of dbt's data tests and unit tests


class DbtError(RegionstatError):
    """dbt build or test failed."""


@dataclass
class DbtResult:
    command: str
    success: bool
    passed: int
    failed: int
    skipped: int
    failures: list[str]
    nodes: int = 0  # nodes dbt selected (incl. no-ops); 0 = the selection matched nothing
    tests_run: list[str] = field(default_factory=list)  # unique_ids of the data and unit tests that ran

    def line(self) -> str:
        return f"dbt {self.command}: {self.passed} ok, {self.failed} failed, {self.skipped} skipped"


def dbt_env(settings: Settings, duckdb_path: str | None = None) -> dict[str, str]:
    """The environment dbt needs that has no dbt flag: the warehouse path ``profiles.yml`` reads with
    ``env_var`` (so a hand-run ``dbt`` uses the same profile) and the cross-tool ``DO_NOT_TRACK``."""
    return {"REGIONSTAT_DUCKDB_PATH": duckdb_path or str(settings.warehouse_path), "DO_NOT_TRACK": "1"}


def dbt_args(
    command: str,
    settings: Settings,
    extra: list[str] | None = None,
    target: Path | None = None,
    indirect_selection: IndirectSelection | None = None,
) -> list[str]:
    """dbt's command line; everything dbt has a flag for is passed as that flag, not through the environment."""
    target = target or settings.state_dir / "dbt" / "target"
    return [
        *command.split(),
        "--no-send-anonymous-usage-stats",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(settings.state_dir / "dbt" / "logs"),
        "--quiet",
        *(["--indirect-selection", indirect_selection] if indirect_selection else []),
        # the run's vars over dbt_project.yml's (regionstat.config); sorted keys: same vars, same command line
        *(["--vars", json.dumps(settings.dbt_vars, sort_keys=True)] if settings.dbt_vars else []),
        *(extra or []),
    ]


def _close_dbt_duckdb() -> None:
    """dbt-duckdb keeps its DuckDB instance open for the life of the process; close it so the work copy can be
    renamed into place and later connections (the report's read-only one, the next work copy) start clean."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


#: the manifest of the last successful ``dbt parse`` in this process, under :func:`_parsed_key`
_PARSED: dict[tuple[object, ...], Any] = {}


def _parsed_key(settings: Settings, target: Path, env: dict[str, str]) -> tuple[object, ...] | None:
    """What a saved parse depends on: the project state dbt itself recorded (``partial_parse.msgpack`` in
    ``target``, rewritten by every parse that found a change), the profile (the DuckDB path), the vars and the
    working copy of the project. The transform DAG's ``plan`` parses once; the dbt tasks that ``airflow dags test``
    runs in the same process then skip reading and checking the saved parse, about a second or two each. Tasks in
    processes of their own (a real scheduler) read ``partial_parse.msgpack`` as before."""
    try:
        saved = (target / "partial_parse.msgpack").stat()
    except OSError:
        return None
    return (
        str(target.resolve()),
        saved.st_mtime_ns,
        saved.st_size,
        env["REGIONSTAT_DUCKDB_PATH"],
        json.dumps(settings.dbt_vars, sort_keys=True),
        _project_stamp(),
    )


def _project_stamp() -> tuple[int, int]:
    """Newest mtime and number of the dbt project's files: an edit after the parse invalidates the handed-over
    manifest (dbt's own partial parsing then notices the change, as it would in a fresh process)."""
    newest = count = 0
    for root, dirs, files in os.walk(DBT_PROJECT_DIR):
        if Path(root) == DBT_PROJECT_DIR:  # dbt's own output of a hand-run dbt is not project state
            dirs[:] = [d for d in dirs if d not in ("target", "logs", "dbt_packages")]
        for name in files:
            with contextlib.suppress(OSError):
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime_ns)
                count += 1
    return newest, count


def invoke_dbt(
    command: str,
    settings: Settings,
    extra: list[str] | None = None,
    target: Path | None = None,
    duckdb_path: str | None = None,
    indirect_selection: IndirectSelection | None = None,
) -> DbtResult:
    """Run one dbt command in this process; the caller must hold the writer lock for writing commands.

    After a ``parse`` here, later commands in this process with the same project state, target, profile and vars
    get dbt's parsed manifest handed over instead of loading it again (see :func:`_parsed_key`)."""
    from dbt.cli.main import dbtRunner

    target = target or settings.state_dir / "dbt" / "target"
    env = dbt_env(settings, duckdb_path)
    os.environ.update(env)
    parsed = None if command == "parse" else _PARSED.get(_parsed_key(settings, target, env) or ())
    try:
        with _quiet_logging_errors():
            res = dbtRunner(manifest=parsed).invoke(dbt_args(command, settings, extra, target, indirect_selection))
    finally:
        _close_dbt_duckdb()
    if command == "parse" and res.success and (key := _parsed_key(settings, target, env)) is not None:
        _PARSED.clear()  # one project state at a time
        _PARSED[key] = res.result
    passed = failed = skipped = 0
    failures: list[str] = []
    tests_run: list[str] = []
    results = getattr(res.result, "results", None) or []
    for r in results:
        status = str(getattr(r, "status", "")).lower()
        name = getattr(getattr(r, "node", None), "unique_id", "?")
        if status == "no-op":
            continue  # nothing to build or test (e.g. the report's exposure): neither ok nor failed
        if name.startswith(TEST_PREFIXES) and status != "skipped":
            tests_run.append(name)
        if status in ("success", "pass"):
            passed += 1
        elif status in ("skipped",):
            skipped += 1
        elif status in ("warn",):
            passed += 1
        else:
            failed += 1
            failures.append(f"{name}: {status}: {getattr(r, 'message', '')}")
    if res.exception is not None:
        where = getattr(res.exception, "filename", None)
        failures.append(f"dbt {command} raised: {res.exception}" + (f" ({where})" if where else ""))
    return DbtResult(command, bool(res.success), passed, failed, skipped, failures, len(results), tests_run)


@contextlib.contextmanager
def _quiet_logging_errors() -> Iterator[None]:
    """On a full disk dbt's file log fails on every line, and ``logging`` prints a traceback for each (tens of
    thousands of lines); the failure itself is reported once, by ``storage_failure``."""
    saved = logging.raiseExceptions
    logging.raiseExceptions = False
    try:
        yield
    finally:
        logging.raiseExceptions = saved


_STORAGE_TEXT = re.compile(r"no space left on device|read-only file system|disk quota exceeded", re.IGNORECASE)
_WRITE_PATH = re.compile(r'(?:Could not write file|write to file) "([^"]+)"')


def storage_failure(result: DbtResult, settings: Settings) -> WarehouseWriteError | None:
    """A dbt failure caused by the disk (full, read-only) as one line naming the file, else None."""
    hits = [(m, f) for f in result.failures if (m := _STORAGE_TEXT.search(f))]
    if not hits:
        return None
    named = [(m, p.group(1)) for m, f in hits if (p := _WRITE_PATH.search(f))]
    hit, where = named[0] if named else (hits[0][0], str(settings.state_dir / "dbt"))
    return WarehouseWriteError(
        f"{settings.warehouse_path}: cannot write the warehouse (dbt {result.command}: {hit.group(0)} "
        f"writing {where}); the last good warehouse is unchanged"
    )


def run_dbt(
    *,
    settings: Settings,
    select: str | None = None,
    command: str = "build",
    wait: float | None = None,
    indirect_selection: IndirectSelection | None = None,
    require_match: bool = False,
    exclude: str | None = None,
    write_artifacts: bool = True,
) -> DbtResult:
    """``dbt build`` (seeds, models, tests) under the writer lock; raises DbtError naming the first failure.

    ``indirect_selection`` is dbt's ``--indirect-selection`` (which tests adjacent to ``select`` run); None
    keeps dbt's default (eager). ``require_match``: a ``select`` that matches no node is an error (a typo on the
    command line), not dbt's warning and success; the warehouse is then left as it was. ``write_artifacts=False``
    (dbt's ``--no-write-json``) skips rewriting ``manifest.json`` and ``run_results.json`` (~0.5 s): for a caller
    whose ``dbt parse`` of the same project already wrote the manifest the readers need."""
    extra = (["--select", select] if select else []) + (["--exclude", exclude] if exclude else [])
    extra += [] if write_artifacts else ["--no-write-json"]
    with work_copy(settings, wait=wait, purpose=f"dbt {command}") as path:
        connect_writer(path).close()  # make sure raw/ops schemas exist before dbt looks for sources
        result = invoke_dbt(command, settings, extra, duckdb_path=path, indirect_selection=indirect_selection)
        if require_match and select and result.success and not result.nodes:
            raise DbtError(f"no dbt node matches --select {select}; the warehouse is unchanged")
        if not result.success:  # raising inside the block discards the work copy: the live warehouse stays
            storage = storage_failure(result, settings)
            if storage is not None:
                raise storage
            first = result.failures[0] if result.failures else "see dbt logs"
            raise DbtError(
                f"dbt {command} failed ({result.failed} failing node(s)); the last good warehouse "
                f"is unchanged; first: {first}"
            )
    log.info(result.line())
    return result


def parse_project(*, settings: Settings) -> DbtResult:
    """``dbt parse`` once, so the invocations after it (other processes: the transform DAG's tasks) find an
    up-to-date ``partial_parse.msgpack`` and manifest in the shared target path and skip parsing.

    It uses the same profile (the work copy's path) as :func:`run_dbt`: dbt discards its saved parse when the
    profile differs. Parsing does not open the warehouse, so no lock is needed."""
    result = invoke_dbt("parse", settings, duckdb_path=str(work_path(settings)))
    if not result.success:
        raise DbtError(f"dbt parse failed: {'; '.join(result.failures) or 'see dbt logs'}")
    return result


#: what ``dbt docs generate`` writes that the docs site needs (``index.html`` loads the two JSON files)
DOCS_FILES = ("static_index.html", "index.html", "catalog.json", "manifest.json")


def generate_docs(*, settings: Settings) -> Path:
    """``dbt docs generate --static`` into ``<data_dir>/docs/dbt`` (one self-contained static_index.html).

    dbt runs in the shared target path, so it reuses the saved parse of the build before it (a target of its
    own would mean a full parse, ~10 s); the site's files are then copied to the docs dir, each atomically."""
    out = settings.docs_dir / "dbt"
    target = settings.state_dir / "dbt" / "target"
    with work_copy(settings, purpose="dbt docs") as path:
        result = invoke_dbt("docs generate", settings, ["--static"], target=target, duckdb_path=path)
    if not result.success:
        raise DbtError(f"dbt docs generate failed: {'; '.join(result.failures) or 'see dbt logs'}")
    for name in DOCS_FILES:
        with atomic_path(out / name) as tmp:
            shutil.copyfile(target / name, tmp)
    return out / "static_index.html"
