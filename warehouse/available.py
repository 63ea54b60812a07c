"""Which dbt models can be built from the raw tables that hold data: a run on a subset of sources
(``regionstat run --table population``) builds what its inputs allow and names each mart it skips.

Every raw table exists (empty) before the first load, so dbt could build every model; a mart over an empty raw
table would be an empty mart that looks like a finding. A model is buildable when every raw table upstream of it
holds rows, except those its YAML declares optional (``config.meta.optional_raw_inputs``: the model is still right
without them, e.g. the K-table without the OD matrix when a travel-time or membership file decides the categories).

Separate from ``warehouse.changes`` (what changed): both return sets of model names, so a caller can intersect them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from regionstat.settings import Settings
from warehouse.build import DbtError, DbtResult, invoke_dbt, run_dbt, storage_failure
from warehouse.db import connect_reader

MANIFEST_NAME = "manifest.json"


def _raw_table(node: Mapping[str, Any]) -> str:
    return str(node.get("identifier") or node["name"])


def missing_inputs(
    manifest: Mapping[str, Any], loaded: Iterable[str], files: Iterable[str] = ()
) -> dict[str, frozenset[str]]:
    """model name -> the empty raw tables it needs (empty set: buildable), for every model in the manifest.

    ``files`` are raw tables fed only by inbox files: never required. A model that also reads an SCB table puts
    the file's real figures first and falls back to SCB; one that reads only files is built empty until a file
    arrives, as the Airflow transform builds it, so a BI tool finds every mart."""
    loaded_tables = set(loaded)
    file_tables = frozenset(files)
    nodes: Mapping[str, Any] = manifest.get("nodes", {})
    sources: Mapping[str, Any] = manifest.get("sources", {})

    def parents(unique_id: str) -> list[str]:
        return list(nodes.get(unique_id, {}).get("depends_on", {}).get("nodes", []))

    def declared_optional(unique_id: str) -> set[str]:
        node = nodes.get(unique_id, {})
        return {
            str(t)
            for t in (node.get("config", {}).get("meta") or node.get("meta") or {}).get("optional_raw_inputs") or ()
        }

    @cache
    def upstream(unique_id: str) -> frozenset[str]:
        if unique_id in sources:
            return frozenset({_raw_table(sources[unique_id])})
        node = nodes.get(unique_id)
        if node is None or node.get("resource_type") not in ("model", "seed", "snapshot"):
            return frozenset()
        return frozenset().union(*(upstream(p) for p in parents(unique_id))) - declared_optional(unique_id)

    def missing(unique_id: str) -> frozenset[str]:
        return upstream(unique_id) - loaded_tables - file_tables

    return {str(node["name"]): missing(uid) for uid, node in nodes.items() if node.get("resource_type") == "model"}


def buildable_models(manifest: Mapping[str, Any], loaded: Iterable[str], files: Iterable[str] = ()) -> set[str]:
    """The models whose required raw inputs are all among ``loaded`` (the non-empty raw tables)."""
    return {name for name, needs in missing_inputs(manifest, loaded, files).items() if not needs}


@dataclass(frozen=True)
class Availability:
    """What a build on the loaded raw tables does: the dbt selection and a note per skipped mart."""

    buildable: frozenset[str]
    skipped: dict[str, frozenset[str]]  # mart -> raw tables it needs that hold no rows
    unbuildable: frozenset[str] = frozenset()  # every model (marts and the models under them) lacking an input

    @property
    def complete(self) -> bool:
        return not self.skipped

    def selection(self) -> str:
        """dbt's ``--select``: each buildable model with its ancestors (views over optional inputs), and every
        seed (a later build of what depends on a newly loaded table may need any of them)."""
        return " ".join(["resource_type:seed", *(f"+{m}" for m in sorted(self.buildable))])

    def notes(self) -> list[str]:
        return [
            f"skipped {mart}: needs {', '.join(f'raw.{t}' for t in sorted(needs))} (not loaded)"
            for mart, needs in sorted(self.skipped.items())
        ]


def availability(manifest: Mapping[str, Any], loaded: Iterable[str], files: Iterable[str] = ()) -> Availability:
    """Buildable models, and the marts (models under ``models/marts/``) that are not, with what they lack."""
    missing = missing_inputs(manifest, loaded, files)
    marts = {
        str(n["name"])
        for n in manifest.get("nodes", {}).values()
        if n.get("resource_type") == "model" and "marts" in (n.get("fqn") or [])
    }
    return Availability(
        buildable=frozenset(m for m, needs in missing.items() if not needs),
        skipped={m: needs for m, needs in missing.items() if needs and m in marts},
        unbuildable=frozenset(m for m, needs in missing.items() if needs),
    )


def read_manifest(target: Path) -> dict[str, Any]:
    """dbt's ``manifest.json`` in ``target`` (written by any dbt command, e.g. ``parse``)."""
    return dict(json.loads((target / MANIFEST_NAME).read_text(encoding="utf-8")))


def loaded_raw_tables(settings: Settings) -> set[str]:
    """The raw tables that hold at least one row (none before the first load)."""
    if not settings.warehouse_path.exists():
        return set()
    con = connect_reader(settings)
    try:
        tables = [r[0] for r in con.execute(RAW_TABLES_SQL).fetchall()]
        return {t for t in tables if con.execute(f'select 1 from raw."{t}" limit 1').fetchone()}
    finally:
        con.close()


RAW_TABLES_SQL = "select table_name from information_schema.tables where table_schema = 'raw'"


def build_available(*, settings: Settings, select: str | None = None) -> tuple[DbtResult, list[str]]:
    """``dbt build`` of what the loaded raw tables allow: everything (or ``select``, e.g. what depends on the
    changed raw tables, from ``warehouse.changes``) when every catalogue raw table holds rows, else only the
    buildable models among them (tests only where all their parents are built); plus one note per skipped mart."""
    from regionstat.catalogue import load_catalogue

    catalogue = load_catalogue()
    # Raw tables fed only by inbox files are optional by nature (a municipality may never drop one): see missing_inputs.
    file_only = {f.raw_table for f in catalogue.files} - {s.raw_table for s in catalogue.sources}
    loaded = loaded_raw_tables(settings)
    if set(catalogue.raw_tables) <= loaded:
        return run_dbt(settings=settings, select=select), []
    target = settings.state_dir / "dbt" / "target"
    parsed = invoke_dbt("parse", settings, target=target)
    if not parsed.success:
        storage = storage_failure(parsed, settings)  # a full or read-only disk: one line naming the file
        if storage is not None:
            raise storage
        first = parsed.failures[0] if parsed.failures else "see dbt logs"
        raise DbtError(f"dbt parse failed; the last good warehouse is unchanged; first: {first}")
    found = availability(read_manifest(target), loaded, file_only)
    if not found.unbuildable:  # only raw tables no model needs are empty: build as always
        return run_dbt(settings=settings, select=select), []
    if not found.buildable:
        return DbtResult("build", True, 0, 0, 0, []), found.notes()
    if select is None:
        result = run_dbt(settings=settings, select=found.selection(), indirect_selection="cautious")
    else:
        exclude = " ".join(sorted(found.unbuildable))
        result = run_dbt(settings=settings, select=select, exclude=exclude, indirect_selection="cautious")
    return result, found.notes()
