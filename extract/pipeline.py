"""Extraction stage: catalogue source -> PxWeb (or inbox file) -> landing batch. No DuckDB here."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from extract.landing import write_batch, write_batch_stream
from regionstat.batches import Batch, batches, latest_batch
from regionstat.catalogue import Catalogue, Source, load_catalogue
from regionstat.errors import CatalogueError, PxWebError, RegionstatError, SchemaError, SnapshotCoverageError
from regionstat.settings import Settings

if TYPE_CHECKING:
    from extract.files import FileRead

log = logging.getLogger(__name__)


#: what extracting one source or inbox file did (DAG tasks and the CLI read it as plain text)
ExtractStatus = Literal["landed", "skipped_fresh", "skipped_seen", "quarantined", "failed"]


@dataclass
class ExtractResult:
    source_name: str
    raw_table: str
    table_id: str
    status: ExtractStatus  # failed and quarantined: the message says why
    rows: int = 0
    cells: int = 0
    requests: int = 0
    lower_bound: int = 0
    manifest_path: Path | None = None
    message: str = ""

    def as_dict(self) -> dict[str, object]:
        d = self.__dict__.copy()
        d["manifest_path"] = str(self.manifest_path) if self.manifest_path else None
        return d


@contextlib.contextmanager
def api_base_url(settings: Settings) -> Iterator[str]:
    """The API to talk to: the user's (live or given) URL, or the embedded snapshot server, started here.

    There is no fallback from one to the other: a configured URL that is down is an error.
    """
    if settings.api_url:
        yield settings.api_url
        return
    with snapshot_server_module().SnapshotServer() as server:
        yield server.url


#: why the offline default cannot start outside a checkout (one line, printed as the command's error)
SNAPSHOT_MISSING = (
    "the offline snapshot ships with the repository checkout (tools/snapshot/), not with the installed package; "
    "set REGIONSTAT_API_URL or use --live"
)


def snapshot_server_module() -> ModuleType:
    """``tools.snapshot.server``, imported only when the offline snapshot is used: it is not in the runtime wheel."""
    try:
        return importlib.import_module("tools.snapshot.server")
    except ModuleNotFoundError as exc:
        if exc.name not in {"tools", "tools.snapshot", "tools.snapshot.server"}:
            raise  # the checkout is there but one of its dependencies is not: that is a different problem
        raise RegionstatError(SNAPSHOT_MISSING) from None


#: catalogue ``http:`` keys -> RetryPolicy fields
HTTP_LIMITS = {
    "request_deadline_seconds": ("request_deadline", float),
    "max_attempts": ("max_attempts", int),
    "table_retry_budget": ("table_retry_budget", int),
}


def retry_policy(settings: Settings, catalogue: Catalogue, source: Source | None = None, base=None):  # -> RetryPolicy
    """The HTTP limits for one table: code defaults < catalogue ``http:`` < the source's ``http:`` < environment."""
    from extract.pxweb import RetryPolicy

    layers = [("catalogue http", catalogue.http)]
    if source is not None:
        layers.append((f"source {source.name} http", source.http or {}))
    layers.append(("environment", settings.http))
    changes: dict[str, float | int] = {}
    for where, limits in layers:
        for key, value in limits.items():
            if key not in HTTP_LIMITS:
                raise CatalogueError(f"{where}: unknown key {key!r} (known: {', '.join(HTTP_LIMITS)})")
            name, kind = HTTP_LIMITS[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise CatalogueError(f"{where}: {key} must be a positive number, not {value!r}")
            changes[name] = kind(value)
    return dataclasses.replace(base or RetryPolicy(), **changes)


def make_client(base_url: str, settings: Settings, catalogue: Catalogue | None = None):  # -> PxWebClient
    from extract.pxweb import PxWebClient

    policy = retry_policy(settings, catalogue or load_catalogue())
    return PxWebClient(base_url, state_dir=settings.state_dir, retry=policy)


@contextlib.contextmanager
def _table_limits(client, settings: Settings, catalogue: Catalogue, source: Source) -> Iterator[None]:
    """The source's own HTTP limits (if it or the environment sets any) and one retry budget for the table."""
    saved = client.retry
    if source.http or settings.http:
        client.retry = retry_policy(settings, catalogue, source, base=saved)
    try:
        with client.retry_budget():
            yield
    finally:
        client.retry = saved


def _is_synthetic(meta) -> bool:
    """Our snapshot marks generated tables in their metadata (``extension.regionstat.synthetic``; the table-info
    tag ``synthetic`` says the same); SCB never does."""
    ext = (meta.raw.get("extension") or {}).get("regionstat") or {}
    return bool(ext.get("synthetic"))


def _restrict_to_region_set(client, source: Source, selection: dict, settings: Settings, catalogue: Catalogue):
    """For locality-like tables: keep only codes whose prefix is a municipality of the region set."""
    if not source.region_filter:
        return selection
    variable = source.region_filter["variable"]
    n = int(source.region_filter.get("prefix_length", 4))
    municipalities = set(catalogue.region_set(settings.region_set).municipalities)
    meta = client.metadata(source.table)
    codes = next(v.codes for v in meta.variables if v.code == variable)
    selection = dict(selection)
    selection[variable] = [c for c in codes if c[:n] in municipalities]
    return selection


def _check_snapshot_coverage(source: Source, meta, selection: dict, region_set: str) -> None:
    """Refuse up front when the offline snapshot lacks regions the region set asks for.

    The snapshot server lists what it holds in ``extension.regionstat.coverage`` of the metadata (SCB's API
    does not, so live fetches are never refused here); without this check a region set it does not cover
    would land a batch of nulls that looks like a successful fetch.
    """
    ext = (meta.raw.get("extension") or {}).get("regionstat") or {}
    coverage = ext.get("coverage")
    if not isinstance(coverage, dict):
        return
    for variable in source.region_variables():
        held = coverage.get(variable)
        requested = selection.get(variable)
        if held is None or not isinstance(requested, list):
            continue
        have = set(held)
        missing = [code for code in requested if code not in have]
        if missing:
            raise SnapshotCoverageError(source.table, variable, missing, len(requested), region_set)


def extract_source(
    name: str,
    *,
    settings: Settings,
    client=None,
    base_url: str | None = None,
    force: bool = False,
    catalogue: Catalogue | None = None,
) -> ExtractResult:
    """Fetch one catalogue source into a landing batch, or skip it if upstream has not changed."""
    catalogue = catalogue or load_catalogue()
    source = catalogue.source(name)
    if client is None:
        with api_base_url(settings) as url:
            return extract_source(
                name,
                settings=settings,
                client=make_client(url, settings, catalogue),
                base_url=url,
                force=force,
                catalogue=catalogue,
            )
    with _table_limits(client, settings, catalogue, source):
        return _extract_source(
            source, settings=settings, client=client, base_url=base_url, force=force, catalogue=catalogue
        )


def _with_offline_table(source: Source, client) -> Source:
    """The source reading its ``offline_table`` when the API is regionstat's snapshot (whose metadata carries
    ``extension.regionstat``; SCB's never does), else as it is."""
    if not source.offline_table:
        return source
    extension = client.metadata(source.table).raw.get("extension") or {}
    if "regionstat" not in extension:
        return source
    log.info("%s: the snapshot serves %s for %s", source.name, source.offline_table, source.table)
    return dataclasses.replace(source, table=source.offline_table)


def _extract_source(
    source: Source, *, settings: Settings, client, base_url: str | None, force: bool, catalogue: Catalogue
) -> ExtractResult:
    source = _with_offline_table(source, client)
    region_set = catalogue.region_set(settings.region_set)
    selection = source.resolved_selection(region_set)
    # one call answers both "changed upstream?" and "what is there?": the metadata's `updated` is the table's
    # (no separate GET /tables/{id}); the client caches it for the fetch below
    codelists = source.codelists()
    meta = client.metadata(source.table, codelists=codelists or None)
    updated = meta.updated
    previous = latest_batch(settings, source.raw_table, source.name)
    if (
        not force
        and previous is not None
        and previous.updated == updated
        and previous.region_set == region_set.name
        and previous.query.get("selection") == selection
        and previous.query.get("codelists") == (codelists or None)
    ):
        log.info("%s: %s unchanged since %s, skipped (no data request)", source.name, source.table, updated)
        return ExtractResult(
            source.name,
            source.raw_table,
            source.table,
            "skipped_fresh",
            rows=previous.rows,
            manifest_path=previous.path,
            message=f"unchanged upstream since {updated}",
        )
    _check_snapshot_coverage(source, meta, selection, region_set.name)
    fetch_selection = _restrict_to_region_set(client, source, selection, settings, catalogue)
    # every request done, the selection held as values + sparse status; landing streams it slice by slice
    assembly = client.fetch_assembly(source.table, fetch_selection, codelists=codelists or None)
    stats = client.last_fetch_stats
    manifest = write_batch_stream(
        assembly.tables(),
        {
            "source_name": source.name,
            "raw_table": source.raw_table,
            "kind": "pxweb",
            "table_id": source.table,
            "source_url": f"{base_url or client.base_url}/tables/{source.table}/data",
            "query": {
                "selection": selection,
                "resolved": fetch_selection if source.region_filter else None,
                **({"codelists": codelists} if codelists else {}),
            },
            "updated": updated,
            "cells": int(stats.cells),
            "requests": int(stats.requests),
            "synthetic": _is_synthetic(meta),
            "region_set": region_set.name,
        },
        settings=settings,
    )
    log.info(
        "%s: landed %s rows from %s in %s request(s) (lower bound %s) -> %s",
        source.name,
        manifest.rows,
        source.table,
        stats.requests,
        stats.lower_bound,
        manifest.parquet_path,
    )
    return ExtractResult(
        source.name,
        source.raw_table,
        source.table,
        "landed",
        rows=manifest.rows,
        cells=int(stats.cells),
        requests=int(stats.requests),
        lower_bound=int(stats.lower_bound),
        manifest_path=manifest.path,
    )


#: a full, read-only or forbidden data directory stops the whole run (every later table would fail the same way)
STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM}


def extract_all(
    names: list[str] | None = None, *, settings: Settings, force: bool = False, progress=None
) -> list[ExtractResult]:
    """Extract several catalogue sources through one API connection (one embedded server, one client).

    Each table is fetched on its own: one that fails (HTTP errors, deadline, retry budget, a bad selection)
    becomes a ``failed`` result naming the table and why, and the others are still fetched. Only a full or
    read-only disk stops the loop. If the API never answered at all (not even ``/config``), the remaining
    tables are marked failed without waiting out their deadlines one by one.
    """
    catalogue = load_catalogue()
    sources = [catalogue.source(name) for name in names] if names else list(catalogue.sources)
    results: list[ExtractResult] = []
    with api_base_url(settings) as url:
        client = make_client(url, settings, catalogue)
        unreachable = ""
        for source in sources:
            if unreachable:
                result = _failed(source, f"not attempted: {unreachable}")
            else:
                try:
                    result = extract_source(
                        source.name, settings=settings, client=client, base_url=url, force=force, catalogue=catalogue
                    )
                except OSError as exc:
                    if exc.errno in STORAGE_ERRNOS:
                        raise
                    result = _failed(source, _one_line(exc))
                except Exception as exc:  # isolate the table; the message names it, -v logs the traceback
                    log.info("%s (%s) failed", source.name, source.table, exc_info=True)
                    result = _failed(source, _one_line(exc))
                    if isinstance(exc, PxWebError) and getattr(client, "_config", None) is None:
                        unreachable = f"the API at {url} did not answer ({_one_line(exc)})"
            results.append(result)
            if progress:
                progress(result)
    return results


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return first if isinstance(exc, RegionstatError) else f"{type(exc).__name__}: {first}"


def _failed(source: Source, message: str) -> ExtractResult:
    if source.table not in message:
        message = f"table {source.table}: {message}"
    log.info("%s: %s", source.name, message)
    return ExtractResult(source.name, source.raw_table, source.table, "failed", message=message)


def processed_file_hashes(settings: Settings, raw_table: str, source_name: str) -> set[str]:
    """Hashes of the files already landed or quarantined for one catalogue file entry."""
    seen: set[str] = set()
    for root in (settings.landing_dir, settings.quarantine_dir):
        for m in batches(root / raw_table / source_name):
            if m.file_sha256:
                seen.add(m.file_sha256)
    return seen


def latest_file_batches(settings: Settings, raw_table: str, source_name: str) -> dict[str, Batch]:
    """Per inbox file name, the newest batch landed or quarantined for one catalogue file entry.

    Each file is its own series of batches: a re-dropped file name supersedes only its own earlier version.
    """
    newest: dict[str, Batch] = {}
    for root in (settings.landing_dir, settings.quarantine_dir):
        for m in batches(root / raw_table / source_name):
            # keyed by the file's own name: a PxWeb export's table id is its matrix (AM0207I6), shared by exports
            name = Path(m.file).name if m.file else m.table_id
            if m.kind == "file" and (name not in newest or m.load_id > newest[name].load_id):
                newest[name] = m
    return newest


def one_line(text: str, limit: int = 400) -> str:
    """A message as one printable line: control characters escaped, long text cut."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def file_vintage(read: FileRead, file_sha256: str) -> tuple[str | None, str | None]:
    """(upstream ``updated`` as ISO-8601 UTC, where it was read) for an inbox file: the date the file states (PX
    ``LAST-UPDATED``), else the one declared for a bundled file with exactly these bytes, else (None, None):
    vintage unknown. Never the file's mtime: that says when it was copied, not when the figures were published."""
    from extract.bundled import declared_vintage

    if read.updated is not None:
        return read.updated, read.updated_from
    declared = declared_vintage(file_sha256)
    return (declared.updated, declared.source) if declared is not None else (None, None)


def extract_inbox(*, settings: Settings, catalogue: Catalogue | None = None) -> list[ExtractResult]:
    """Land every new municipal file in the inbox as its own batch; quarantine (one-line reason) what cannot be read.

    Never raises for a bad file: every read error, limit or refusal becomes a quarantine entry. A file whose bytes
    equal the newest batch already made from the same file name is not read again; a changed file (or an older
    version dropped back) lands again and supersedes that file's earlier batch only.
    """
    from extract.files import RefusedFileError, file_sha256, read_file, scan_inbox, snippet
    from extract.landing import quarantine_file
    from regionstat.errors import FileSourceError

    catalogue = catalogue or load_catalogue()
    results: list[ExtractResult] = []
    processed: dict[tuple[str, str], dict[str, Batch]] = {}
    for path, entry in scan_inbox(settings.inbox_dir, list(catalogue.files)):
        if isinstance(entry, FileSourceError):
            entry_name, raw_table, columns, table_id = "_unmatched", "_unmatched", {}, path.name
        else:
            entry_name, raw_table, columns = entry.name, entry.raw_table, entry.columns
            table_id = entry.table_id(path.name)
        try:
            digest = file_sha256(path)
        except (OSError, FileSourceError) as exc:  # vanished or swapped since the scan: the next run sees it
            log.warning("inbox: %s changed while scanning, left for the next run: %s", path.name, exc)
            continue
        key = (raw_table, entry_name)
        if key not in processed:
            processed[key] = latest_file_batches(settings, raw_table, entry_name)
        previous = processed[key].get(path.name)
        if previous is not None and previous.file_sha256 == digest:
            results.append(
                ExtractResult(entry_name, raw_table, path.name, "skipped_seen", message="file already processed")
            )
            continue
        fields: dict[str, Any] = {
            "source_name": entry_name,
            "raw_table": raw_table,
            "kind": "file",
            "table_id": table_id,
            "source_url": path.as_uri(),
            "query": {"columns": columns},
            "updated": None,
            "requests": 0,
            "synthetic": False,
            "region_set": None,
            "file": str(path),
            "file_sha256": digest,
        }
        reason: str
        try:
            if isinstance(entry, FileSourceError):
                raise entry
            read = read_file(path, entry)
        except FileSourceError as exc:
            reason = str(exc)
        except Exception as exc:  # a reader's unforeseen failure is this file's problem, not the run's
            log.exception("inbox: reading %s failed unexpectedly", path.name)
            reason = f"{path}: cannot read: {type(exc).__name__}: {snippet(exc, 80)}"
        else:
            try:
                updated, updated_from = file_vintage(read, digest)
                # the exact text the vintage was read from stays with the batch, next to the column mapping
                query = {"columns": columns, "updated_from": updated_from} if updated_from else {"columns": columns}
                fields = {**fields, "cells": read.table.num_rows, "encoding": read.encoding}
                fields |= {"updated": updated, "query": query}
                manifest: Batch = write_batch(read.table, fields, settings=settings)
            except SchemaError as exc:
                reason = str(exc)
            else:
                results.append(
                    ExtractResult(
                        entry_name,
                        raw_table,
                        path.name,
                        "landed",
                        rows=manifest.rows,
                        cells=manifest.cells,
                        manifest_path=manifest.path,
                    )
                )
                continue
        reason = one_line(reason)
        fields = {**fields, "cells": 0}
        keep_copy = not isinstance(entry, RefusedFileError)
        try:
            manifest = quarantine_file(path, fields, reason, settings=settings, keep_copy=keep_copy)
        except FileSourceError as exc:  # swapped for a symlink/FIFO or removed since it was read: keep the record
            reason = one_line(f"{reason} (no copy kept: {exc})")
            manifest = quarantine_file(path, fields, reason, settings=settings, keep_copy=False)
        log.warning("quarantined %s: %s", path.name, reason)
        results.append(
            ExtractResult(entry_name, raw_table, path.name, "quarantined", manifest_path=manifest.path, message=reason)
        )
    return results
