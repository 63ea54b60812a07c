"""The warehouse file, its single-writer lock, and copy-on-write publication.

DuckDB allows one writing process per file, and a reader's lock (an analyst's read-only session, a BI tool)
blocks writers too. So writers never write ``warehouse.duckdb`` in place: under one file lock they copy it to a
work file, write there, and atomically rename it over the live file on success. Readers keep reading the old
file until they reconnect; a crash or a failed dbt test leaves the last good warehouse untouched.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from regionstat.errors import WarehouseWriteError, WriterBusyError
from regionstat.results import RESULTS_DDL
from regionstat.settings import Settings

log = logging.getLogger(__name__)

LEDGER_DDL = (
    """
create schema if not exists raw;
create schema if not exists ops;
create table if not exists ops.loads (
    load_id varchar not null,
    source_name varchar not null,
    raw_table varchar not null,
    table_id varchar,
    rows bigint,
    content_sha256 varchar,
    synthetic boolean,
    status varchar not null,
    reason varchar,
    loaded_at timestamp not null
);
"""
    + RESULTS_DDL
)


def writer_lock_timeout() -> float:
    return float(os.environ.get("REGIONSTAT_WRITER_WAIT_SECONDS", "600"))


@contextlib.contextmanager
def writer(settings: Settings, *, wait: float | None = None, purpose: str = "write") -> Iterator[None]:
    """Hold the one warehouse writer slot for the duration of the block."""
    lock_path = settings.state_dir / "warehouse.lock"
    holder_path = settings.state_dir / "warehouse.lock.holder"
    lock = FileLock(str(lock_path))
    wait = writer_lock_timeout() if wait is None else wait
    try:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except Timeout:  # filelock's Timeout is an OSError too: it must be caught first
        holder = holder_path.read_text() if holder_path.exists() else "{}"
        log.warning("warehouse is busy (held by %s); waiting up to %.0f s", holder, wait)
        print(f"warehouse {settings.warehouse_path} is being written by another run {holder}; waiting ...", flush=True)
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise WriterBusyError(
                f"{settings.warehouse_path}: another run {holder} is still writing after {wait:.0f} s; "
                "try again later (only one writer at a time)"
            ) from None
    except OSError as exc:  # read-only or full data directory: say so, the warehouse is untouched
        raise _write_error(settings, exc) from exc
    try:
        try:
            holder_path.write_text(json.dumps({"pid": os.getpid(), "purpose": purpose, "since": time.time()}))
        except OSError as exc:
            raise _write_error(settings, exc) from exc
        yield
    finally:
        with contextlib.suppress(OSError):
            holder_path.unlink(missing_ok=True)
        lock.release()


#: errors that mean "this file system will not take the write", as opposed to a bug
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EFBIG}


def _write_error(settings: Settings, exc: BaseException) -> WarehouseWriteError:
    reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0][:500]
    return WarehouseWriteError(
        f"{settings.warehouse_path}: cannot write the warehouse ({reason}); the last good warehouse is unchanged"
    )


def _is_storage_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in _STORAGE_ERRNOS
    if isinstance(exc, duckdb.Error):  # DuckDB writing its file or WAL (IO, commit, checkpoint): no space, read-only
        text = str(exc).lower()
        return any(k in text for k in ("no space left", "read-only", "permission denied", "disk quota"))
    return False


META_COLUMNS = {
    "_source_name": "varchar",
    "_source_table": "varchar",
    "_load_id": "varchar",
    "_synthetic": "boolean",
    "_loaded_at": "timestamp",
    "_source_updated": "varchar",
}


def declared_raw_columns() -> dict[str, list[str]]:
    """Per raw table, the columns its catalogue sources declare (selected variables or mapped file columns).

    Read once per catalogue file version and process: every writer connection asks (the transform DAG: once per
    dbt group), and parsing and checking ``catalogue.yaml`` costs ~0.2 s a time."""
    from regionstat.catalogue import CATALOGUE_PATH

    path = Path(os.environ.get("REGIONSTAT_CATALOGUE") or CATALOGUE_PATH).resolve()
    try:
        st = path.stat()
        version: tuple[str, int, int] | None = (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        version = None  # load_catalogue names the missing file
    if version is None or version not in _DECLARED:
        columns = _read_declared_raw_columns(path)
        if version is None:
            return columns
        _DECLARED.clear()  # one catalogue version at a time
        _DECLARED[version] = columns
    return {t: list(cols) for t, cols in _DECLARED[version].items()}


#: declared_raw_columns' cache: (catalogue path, mtime_ns, size) -> columns per raw table
_DECLARED: dict[tuple[str, int, int], dict[str, list[str]]] = {}


def _read_declared_raw_columns(path: Path) -> dict[str, list[str]]:
    from regionstat.catalogue import load_catalogue

    catalogue = load_catalogue(path)
    out: dict[str, list[str]] = {}
    for s in catalogue.sources:
        out.setdefault(s.raw_table, []).extend(s.selection)
    for f in catalogue.files:
        out.setdefault(f.raw_table, []).extend(f.target_columns)
    return {t: list(dict.fromkeys(cols)) for t, cols in out.items()}


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create every catalogue raw table, empty, if no batch has been loaded into it yet.

    dbt's staging models select from all of them; an inbox that never received a file must not break the build.
    """
    for table, columns in declared_raw_columns().items():
        cols = [f'"{c}" varchar' for c in columns] + ['"value" double', '"status" varchar']
        cols += [f'"{c}" {t}' for c, t in META_COLUMNS.items()]
        con.execute(f'create table if not exists raw."{table}" ({", ".join(cols)})')
        # a warehouse from before a column was declared (a lineage column, a file entry's constant such as
        # `municipality`) gets it, null, so staging can select it
        for column in columns:
            con.execute(f'alter table raw."{table}" add column if not exists "{column}" varchar')
        for column, dtype in META_COLUMNS.items():
            con.execute(f'alter table raw."{table}" add column if not exists "{column}" {dtype}')


def connect_writer(path: os.PathLike[str] | str) -> duckdb.DuckDBPyConnection:
    """Open a work copy for writing (see ``work_copy``), with the ledger and every raw table in place."""
    con = duckdb.connect(str(path))
    con.execute(LEDGER_DDL)
    ensure_raw_tables(con)
    return con


def work_path(settings: Settings) -> Path:
    """Where the writer's private copy of the warehouse lives while it works (always the same path: dbt keys its
    saved parse on the profile, which names this file)."""
    return settings.state_dir / "warehouse.next.duckdb"


@contextlib.contextmanager
def work_copy(settings: Settings, *, wait: float | None = None, purpose: str = "write") -> Iterator[str]:
    """Hold the writer lock, yield the path of a private copy of the warehouse, publish it atomically on success."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(settings, exc) from exc
    with writer(settings, wait=wait, purpose=purpose):
        work = work_path(settings)
        try:
            for stale in (work, work.with_name(work.name + ".wal")):
                stale.unlink(missing_ok=True)
            if settings.warehouse_path.exists():
                shutil.copyfile(settings.warehouse_path, work)  # a partial copy (disk full) is removed below
            yield str(work)
            with duckdb.connect(str(work)) as con:  # closed even when a full disk fails the checkpoint
                con.execute("checkpoint")  # fold the WAL into the file before it goes live
            with open(work, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(work, settings.warehouse_path)
        except (OSError, duckdb.Error) as exc:
            if _is_storage_error(exc):
                raise _write_error(settings, exc) from exc
            raise
        finally:
            for leftover in (work, work.with_name(work.name + ".wal")):
                with contextlib.suppress(OSError):
                    leftover.unlink(missing_ok=True)


def connect_reader(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-only, as analysts and BI tools do."""
    if not settings.warehouse_path.exists():
        raise FileNotFoundError(f"{settings.warehouse_path} does not exist yet; run `regionstat run` first")
    return duckdb.connect(str(settings.warehouse_path), read_only=True)


#: A read-only database file is not enough: DuckDB can still COPY to files, ATTACH (and create) other
#: databases, read any file (read_csv, read_text, glob), install extensions and change settings. The
#: analyst connection gets none of that; ``regionstat sql --output`` writes files itself.
ANALYST_CONFIG: dict[str, str | bool] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "python_enable_replacements": False,  # a query must not scan the CLI's own Python variables
    "lock_configuration": True,  # last: nothing after it (SET, RESET, PRAGMA) can undo the above
}


def connect_analyst(settings: Settings) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for ad-hoc SQL (``regionstat sql``): read-only, no file system, locked settings."""
    if not settings.warehouse_path.exists():
        raise FileNotFoundError(f"{settings.warehouse_path} does not exist yet; run `regionstat run` first")
    return duckdb.connect(str(settings.warehouse_path), read_only=True, config=dict(ANALYST_CONFIG))
