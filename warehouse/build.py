"""Run dbt (in-process, through dbt's programmatic runner) against the warehouse, as its one writer."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from regionstat.errors import RegionstatError, WarehouseWriteError
from regionstat.settings import PROJECT_ROOT, Settings
from warehouse.db import connect_writer, work_copy, work_path

log = logging.getLogger(__name__)

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

IndirectSelection = Literal["eager", "cautious", "buildable", "empty"]


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


def invoke_dbt(
    command: str,
    settings: Settings,
    extra: list[str] | None = None,
    target: Path | None = None,
    duckdb_path: str | None = None,
    indirect_selection: IndirectSelection | None = None,
) -> DbtResult:
    """Run one dbt command in this process; the caller must hold the writer lock for writing commands."""
    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_env(settings, duckdb_path))
    try:
        with _quiet_logging_errors():
            res = dbtRunner().invoke(dbt_args(command, settings, extra, target, indirect_selection))
    finally:
        _close_dbt_duckdb()
    passed = failed = skipped = 0
    failures: list[str] = []
    results = getattr(res.result, "results", None) or []
    for r in results:
        status = str(getattr(r, "status", "")).lower()
        name = getattr(getattr(r, "node", None), "unique_id", "?")
        if status == "no-op":
            continue  # nothing to build or test (e.g. the report's exposure): neither ok nor failed
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
    return DbtResult(command, bool(res.success), passed, failed, skipped, failures, len(results))


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
) -> DbtResult:
    """``dbt build`` (seeds, models, tests) under the writer lock; raises DbtError naming the first failure.

    ``indirect_selection`` is dbt's ``--indirect-selection`` (which tests adjacent to ``select`` run); None
    keeps dbt's default (eager). ``require_match``: a ``select`` that matches no node is an error (a typo on the
    command line), not dbt's warning and success; the warehouse is then left as it was."""
    extra = (["--select", select] if select else []) + (["--exclude", exclude] if exclude else [])
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


def generate_docs(*, settings: Settings) -> Path:
    """``dbt docs generate --static`` into ``<data_dir>/docs/dbt`` (one self-contained static_index.html)."""
    out = settings.docs_dir / "dbt"
    with work_copy(settings, purpose="dbt docs") as path:
        result = invoke_dbt("docs generate", settings, ["--static"], target=out, duckdb_path=path)
    if not result.success:
        raise DbtError(f"dbt docs generate failed: {'; '.join(result.failures) or 'see dbt logs'}")
    return out / "static_index.html"
