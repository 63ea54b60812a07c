"""Load validated landing batches into ``raw.*``, one transaction per batch, with a ledger in ``ops.loads``.

``raw.<table>`` holds, per source, exactly the rows of that source's newest good batch: reloading replaces,
never duplicates. Inbox files are one series each: per (source, file name), so a municipality's file never
replaces another's, and a re-dropped file name replaces only its own rows.
Quarantined batches are recorded in the ledger and never loaded.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow.parquet as pq

from regionstat.batches import Batch, batches
from regionstat.results import LoadStatus, Severity
from regionstat.settings import Settings
from warehouse.db import _is_storage_error, connect_reader, connect_writer, work_copy

log = logging.getLogger(__name__)


@dataclass
class LoadSummary:
    loaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    unvalidated: list[str] = field(default_factory=list)
    # (source name, load id, one-line reason) of batches DuckDB could not load; the others still were
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    rows: int = 0
    # raw table -> {load_ids, sources, rows} for batches whose content differs from what was live before
    # (a forced refetch of identical data is loaded but is not a change; orchestrators announce only changes)
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"loaded {len(self.loaded)} batch(es), {self.rows:,} rows; {len(self.unchanged)} unchanged; "
            f"{len(self.quarantined)} quarantined; {len(self.unvalidated)} awaiting validation"
            + (f"; {len(self.failed)} failed" if self.failed else "")
        )


def _passed(m: Batch) -> bool | None:
    """True if validated and no fail-severity expectation failed, False if failed, None if not validated."""
    vpath = m.validation_path
    if not vpath.exists():
        return None
    results = pq.read_table(vpath, columns=["severity", "success"]).to_pylist()
    return not any(r["severity"] == Severity.FAIL and not r["success"] for r in results)


def source_updated(updated: str | None) -> str | None:
    """The batch's upstream ``updated`` as ISO-8601 UTC text (``2025-02-21T07:00:00Z``), the vintage marts cite.

    One spelling for every source, so marts can compare and list vintages as text; text that is not a timestamp
    is kept as given rather than guessed at.
    """
    if not updated:
        return None
    try:
        parsed = datetime.fromisoformat(updated.replace("Z", "+00:00"))
    except ValueError:
        return updated
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _series(m: Batch) -> tuple[str, str]:
    """What a batch replaces: its source, or for an inbox file the source *and* the file name (``table_id``)."""
    return (m.source_name, m.table_id if m.kind == "file" else "")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _load_batch(con: duckdb.DuckDBPyConnection, m: Batch) -> None:
    table = f"raw.{_ident(m.raw_table)}"
    path = str(m.parquet_path)
    con.execute("begin transaction")
    try:
        batch = (
            "select *, ? as _source_name, ? as _source_table, ? as _load_id, ?::boolean as _synthetic, "
            "?::timestamp as _loaded_at, ?::varchar as _source_updated from read_parquet(?)"
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        params = [m.source_name, m.table_id, m.load_id, m.synthetic, now, source_updated(m.updated), path]
        con.execute(f"create table if not exists {table} as {batch} limit 0", params)
        existing = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ?",
                [m.raw_table],
            ).fetchall()
        }
        for name, dtype, *_ in con.execute(f"describe {batch}", params).fetchall():
            if name not in existing:
                con.execute(f"alter table {table} add column {_ident(name)} {dtype}")
        if m.kind == "file":
            own_rows = "_source_name = ? and _source_table = ?"
            con.execute(f"delete from {table} where {own_rows}", [m.source_name, m.table_id])
        else:
            con.execute(f"delete from {table} where _source_name = ?", [m.source_name])
        con.execute(f"insert into {table} by name {batch}", params)
        _ledger(con, m, LoadStatus.LOADED, None, now)
        con.execute("delete from ops.validation_results where load_id = ?", [m.load_id])
        con.execute(
            "insert into ops.validation_results by name select * from read_parquet(?)", [str(m.validation_path)]
        )
        con.execute("commit")
    except BaseException:
        # a failed commit (disk full) has already ended the transaction: a rollback error must not hide why
        with contextlib.suppress(duckdb.Error):
            con.execute("rollback")
        raise


def _ledger(con: duckdb.DuckDBPyConnection, m: Batch, status: LoadStatus, reason: str | None, at: datetime) -> None:
    """One ``ops.loads`` row for a batch."""
    con.execute(
        "insert into ops.loads values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [m.load_id, m.source_name, m.raw_table, m.table_id, m.rows, m.content_sha256, m.synthetic, status, reason, at],
    )


def _record_failed(con: duckdb.DuckDBPyConnection, m: Batch, exc: duckdb.Error, summary: LoadSummary) -> None:
    """Ledger row ``failed`` with DuckDB's first line; the source keeps its last good rows in ``raw.*``."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    reason = f"raw.{m.raw_table}: cannot load {m.parquet_path}: {first}"
    log.info("%s batch %s not loaded: %s", m.source_name, m.load_id, reason)
    _ledger(con, m, LoadStatus.FAILED, reason, datetime.now(UTC).replace(tzinfo=None))
    summary.failed.append((m.source_name, m.load_id, reason))


def _record_quarantined(con: duckdb.DuckDBPyConnection, settings: Settings, summary: LoadSummary) -> None:
    known = {
        r[0] for r in con.execute("select load_id from ops.loads where status = ?", [LoadStatus.QUARANTINED]).fetchall()
    }
    for m in batches(settings.quarantine_dir):
        if m.load_id in known:
            continue
        reason_file = m.reason_path
        reason = reason_file.read_text(encoding="utf-8").splitlines()[0] if reason_file.exists() else ""
        vpath = m.validation_path
        con.execute("begin transaction")
        _ledger(con, m, LoadStatus.QUARANTINED, reason, datetime.now(UTC).replace(tzinfo=None))
        if vpath.exists():
            con.execute("delete from ops.validation_results where load_id = ?", [m.load_id])
            con.execute("insert into ops.validation_results by name select * from read_parquet(?)", [str(vpath)])
        con.execute("commit")
        summary.quarantined.append(m.load_id)


def _live_state(settings: Settings) -> tuple[dict[tuple[str, str], tuple[str, str]], set[str]]:
    """From the live warehouse (read-only): (load id, content hash) per series (see ``_series``), and quarantines.

    Keys are (source, "") for a source's newest load and (source, table id) for each table id's newest load; a
    batch looks itself up by ``_series``.
    """
    if not settings.warehouse_path.exists():
        return {}, set()
    con = connect_reader(settings)
    try:
        if not con.execute(
            "select count(*) from information_schema.tables where table_schema = 'ops' and table_name = 'loads'"
        ).fetchone()[0]:  # type: ignore[index]
            return {}, set()
        current: dict[tuple[str, str], tuple[str, str]] = {}
        for partition, key in (("source_name", lambda n, t: (n, "")), ("source_name, table_id", lambda n, t: (n, t))):
            for name, table_id, load_id, sha in con.execute(
                "select source_name, table_id, load_id, content_sha256 from ops.loads where status = 'loaded' "
                f"qualify row_number() over (partition by {partition} order by loaded_at desc, load_id desc) = 1"
            ).fetchall():
                current[key(name, table_id)] = (load_id, sha)
        quarantined = {
            r[0] for r in con.execute("select load_id from ops.loads where status = 'quarantined'").fetchall()
        }
        return current, quarantined
    finally:
        con.close()


def load_validated(*, settings: Settings, wait: float | None = None) -> LoadSummary:
    """Load each source's newest validated batch that is not yet live; record quarantines in the ledger.

    With nothing new the live warehouse is not touched at all (no lock, no copy).
    """
    summary = LoadSummary()
    newest: dict[tuple[str, str], Batch] = {}
    for m in batches(settings.landing_dir):
        verdict = _passed(m)
        if verdict is None:
            summary.unvalidated.append(m.load_id)
        elif verdict:
            newest[_series(m)] = m  # batches() is oldest first
    current, recorded = _live_state(settings)
    live_id = {key: load_id for key, (load_id, _) in current.items()}
    todo = [m for m in newest.values() if live_id.get(_series(m)) != m.load_id]
    summary.unchanged = [m.load_id for m in newest.values() if live_id.get(_series(m)) == m.load_id]
    new_quarantine = any(m.load_id not in recorded for m in batches(settings.quarantine_dir))
    if not todo and not new_quarantine and settings.warehouse_path.exists():
        return summary
    with work_copy(settings, wait=wait, purpose="load") as path:
        con = connect_writer(path)
        try:
            _record_quarantined(con, settings, summary)
            for m in todo:
                try:
                    _load_batch(con, m)
                except duckdb.Error as exc:  # this batch only (unreadable file, type clash); the disk: all stop
                    if _is_storage_error(exc) or isinstance(exc, duckdb.FatalException):
                        raise
                    _record_failed(con, m, exc, summary)
                    continue
                summary.loaded.append(m.load_id)
                summary.rows += m.rows
                if current.get(_series(m), (None, None))[1] != m.content_sha256:
                    change = summary.changed.setdefault(m.raw_table, {"load_ids": [], "sources": [], "rows": 0})
                    change["load_ids"].append(m.load_id)
                    change["sources"].append(m.source_name)
                    change["rows"] += m.rows
                log.info("loaded %s rows of %s into raw.%s (load %s)", m.rows, m.source_name, m.raw_table, m.load_id)
        finally:
            con.close()
    return summary
