"""Extraction stage: catalogue source -> PxWeb (or inbox file) -> landing batch. No DuckDB here."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from extract.catalogue import Catalogue, FileSource, Source, load_catalogue
from extract.landing import Manifest, latest_manifest, manifests, write_batch
from extract.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ExtractResult:
    source_name: str
    raw_table: str
    table_id: str
    status: str  # landed | skipped_fresh | skipped_seen
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
    from extract.snapshot.server import SnapshotServer

    with SnapshotServer() as server:
        yield server.url


def make_client(base_url: str, settings: Settings):  # -> PxWebClient
    from extract.pxweb import PxWebClient

    return PxWebClient(base_url, state_dir=settings.state_dir / "ratelimit")


def _is_synthetic(client, table_id: str) -> bool:
    """Our snapshot marks generated tables in their metadata; SCB's real tables never carry the mark."""
    meta = client.metadata(table_id)
    text = json.dumps([meta.get("label", ""), meta.get("note", []), meta.get("extension", {})], ensure_ascii=False)
    return "SYNTHETIC" in text


def _restrict_to_region_set(client, source: Source, selection: dict, settings: Settings, catalogue: Catalogue):
    """For locality-like tables: keep only codes whose prefix is a municipality of the region set."""
    if not source.region_filter:
        return selection
    variable = source.region_filter["variable"]
    n = int(source.region_filter.get("prefix_length", 4))
    municipalities = set(catalogue.region_set(settings.region_set).municipalities)
    meta = client.metadata(source.table)
    codes = list(meta["dimension"][variable]["category"]["index"])
    codes.sort(key=lambda c: meta["dimension"][variable]["category"]["index"][c])
    selection = dict(selection)
    selection[variable] = [c for c in codes if c[:n] in municipalities]
    return selection


def extract_source(
    name: str, *, settings: Settings, client=None, base_url: str | None = None, force: bool = False,
    catalogue: Catalogue | None = None,
) -> ExtractResult:
    """Fetch one catalogue source into a landing batch, or skip it if upstream has not changed."""
    catalogue = catalogue or load_catalogue()
    source = catalogue.source(name)
    if client is None:
        with api_base_url(settings) as url:
            return extract_source(name, settings=settings, client=make_client(url, settings), base_url=url,
                                  force=force, catalogue=catalogue)
    region_set = catalogue.region_set(settings.region_set)
    selection = source.resolved_selection(region_set)
    info = client.table_info(source.table)
    updated = info.get("updated") if isinstance(info, dict) else getattr(info, "updated", None)
    previous = latest_manifest(settings, source.raw_table, source.name)
    if (
        not force
        and previous is not None
        and previous.updated == updated
        and previous.region_set == region_set.name
        and previous.query.get("selection") == selection
    ):
        log.info("%s: %s unchanged since %s, skipped (no data request)", source.name, source.table, updated)
        return ExtractResult(source.name, source.raw_table, source.table, "skipped_fresh",
                             rows=previous.rows, manifest_path=previous.path,
                             message=f"unchanged upstream since {updated}")
    fetch_selection = _restrict_to_region_set(client, source, selection, settings, catalogue)
    table = client.fetch(source.table, fetch_selection)
    stats = client.last_fetch_stats
    manifest = write_batch(
        table,
        {
            "source_name": source.name,
            "raw_table": source.raw_table,
            "kind": "pxweb",
            "table_id": source.table,
            "source_url": f"{base_url or client.base_url}/tables/{source.table}/data",
            "query": {"selection": selection, "resolved": fetch_selection if source.region_filter else None},
            "updated": updated,
            "cells": int(stats.cells),
            "requests": int(stats.requests),
            "synthetic": _is_synthetic(client, source.table),
            "region_set": region_set.name,
        },
        settings=settings,
    )
    log.info("%s: landed %s rows from %s in %s request(s) (lower bound %s) -> %s", source.name, manifest.rows,
             source.table, stats.requests, stats.lower_bound, manifest.parquet_path)
    return ExtractResult(source.name, source.raw_table, source.table, "landed", rows=manifest.rows,
                         cells=int(stats.cells), requests=int(stats.requests),
                         lower_bound=int(stats.lower_bound), manifest_path=manifest.path)


def extract_all(names: list[str] | None = None, *, settings: Settings, force: bool = False,
                progress=None) -> list[ExtractResult]:
    """Extract several catalogue sources through one API connection (one embedded server, one client)."""
    catalogue = load_catalogue()
    names = names or [s.name for s in catalogue.sources]
    results: list[ExtractResult] = []
    with api_base_url(settings) as url:
        client = make_client(url, settings)
        for name in names:
            results.append(extract_source(name, settings=settings, client=client, base_url=url, force=force,
                                          catalogue=catalogue))
            if progress:
                progress(results[-1])
    return results


def _seen_file_hashes(settings: Settings, entry: FileSource) -> set[str]:
    seen: set[str] = set()
    for root in (settings.landing_dir, settings.quarantine_dir):
        for m in manifests(root / entry.raw_table / entry.name):
            if m.file_sha256:
                seen.add(m.file_sha256)
    return seen


def extract_inbox(*, settings: Settings, catalogue: Catalogue | None = None) -> list[ExtractResult]:
    """Land every new municipal file in the inbox. A file already landed or quarantined is not read again."""
    from extract.files import discover, file_sha256, read_file_source

    catalogue = catalogue or load_catalogue()
    results: list[ExtractResult] = []
    if not settings.inbox_dir.exists():
        return results
    for path, entry in discover(settings.inbox_dir, list(catalogue.files)):
        digest = file_sha256(path)
        if digest in _seen_file_hashes(settings, entry):
            results.append(ExtractResult(entry.name, entry.raw_table, path.name, "skipped_seen",
                                         message="file already processed"))
            continue
        table = read_file_source(path, entry)
        manifest: Manifest = write_batch(
            table,
            {
                "source_name": entry.name,
                "raw_table": entry.raw_table,
                "kind": "file",
                "table_id": path.name,
                "source_url": path.as_uri(),
                "query": {"columns": entry.columns},
                "updated": None,
                "cells": table.num_rows,
                "requests": 0,
                "synthetic": False,
                "region_set": None,
                "file": str(path),
                "file_sha256": digest,
            },
            settings=settings,
        )
        results.append(ExtractResult(entry.name, entry.raw_table, path.name, "landed", rows=manifest.rows,
                                     cells=manifest.cells, manifest_path=manifest.path))
    return results
