"""What a mart is built from: its dbt descriptions and units, its source tables, their upstream vintage, and
whether it is synthetic. Shared by the Parquet export (``publish.py``) and the HTML report (``report.py``).

The marts carry their provenance per row (``is_synthetic``, ``synthetic_inputs``, ``source_tables``,
``source_updated``; docs/CONTRACTS.md). A mart built before those columns existed is described from dbt's
lineage instead: the raw tables upstream of the model in dbt's manifest, with the source tables, synthetic flags
and upstream ``updated`` of the batches live in them. Both paths give the same shape, so callers need not care.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from regionstat.batches import MANIFEST_SUFFIX
from regionstat.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

#: the row-level provenance columns every mart ends with (the contract with dbt_project/models/marts).
PROVENANCE_COLUMNS = ("is_synthetic", "synthetic_inputs", "source_tables", "source_updated")

SYNTHETIC_TRUE, SYNTHETIC_FALSE, SYNTHETIC_PARTIAL = "true", "false", "partial"


# ----------------------------------------------------------------------------------------------------------------
# dbt's manifest: descriptions, units, lineage


@dataclass(frozen=True)
class ColumnDoc:
    description: str = ""
    unit: str = ""


@dataclass
class ModelDoc:
    name: str
    description: str = ""
    columns: dict[str, ColumnDoc] = field(default_factory=dict)
    raw_tables: set[str] = field(default_factory=set)  # the raw.* tables upstream of the model


def dbt_manifest_path(settings: Settings) -> Path | None:
    """The manifest of the last ``regionstat build`` (``warehouse.build`` writes it under ``.state``), else the
    dbt project's own target (a developer's manual ``dbt build``)."""
    for path in (
        settings.state_dir / "dbt" / "target" / "manifest.json",
        PROJECT_ROOT / "dbt_project" / "target" / "manifest.json",
    ):
        if path.exists():
            return path
    return None


def _meta(node: Mapping[str, Any]) -> dict[str, Any]:
    """``meta`` as dbt 1.11 keeps it: top-level or under ``config`` (the newer spelling)."""
    return {**((node.get("config") or {}).get("meta") or {}), **(node.get("meta") or {})}


def read_model_docs(settings: Settings) -> dict[str, ModelDoc]:
    """Model name (its relation name) -> descriptions, units and upstream raw tables; empty without a manifest."""
    path = dbt_manifest_path(settings)
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("cannot read dbt manifest %s: %s", path, exc)
        return {}
    nodes: dict[str, dict[str, Any]] = {**data.get("nodes", {}), **data.get("sources", {})}
    upstream: dict[str, set[str]] = {}

    def raw_tables_of(uid: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if uid in upstream:
            return upstream[uid]
        node = nodes.get(uid) or {}
        if node.get("resource_type") == "source":
            out = {str(node.get("identifier") or node.get("name"))}
        else:
            out = set()
            for parent in (node.get("depends_on") or {}).get("nodes", []):
                if parent not in seen:
                    out |= raw_tables_of(parent, seen | {uid})
        upstream[uid] = out
        return out

    docs: dict[str, ModelDoc] = {}
    for uid, node in sorted(data.get("nodes", {}).items()):
        if node.get("resource_type") != "model":
            continue
        name = str(node.get("alias") or node.get("name"))
        columns = {
            str(col_name): ColumnDoc(
                description=str(col.get("description") or "").strip(), unit=str(_meta(col).get("unit") or "").strip()
            )
            for col_name, col in (node.get("columns") or {}).items()
        }
        docs[name] = ModelDoc(
            name=name,
            description=str(node.get("description") or "").strip(),
            columns=columns,
            raw_tables=raw_tables_of(uid),
        )
    return docs


def catalog_comments(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> tuple[str, dict[str, str]]:
    """The table and column comments dbt persisted in DuckDB (``persist_docs``): they travel with the warehouse,
    so they describe exactly the tables being read even when no manifest is at hand."""
    found = con.execute(
        "select comment from duckdb_tables() where schema_name = ? and table_name = ?", [schema, table]
    ).fetchall()
    row = found[0] if found else None
    columns = con.execute(
        "select column_name, comment from duckdb_columns() where schema_name = ? and table_name = ?", [schema, table]
    ).fetchall()
    return (row[0] or "") if row else "", {str(c): str(d or "") for c, d in columns}


# ----------------------------------------------------------------------------------------------------------------
# Raw tables: which source tables are live, how synthetic, of which upstream vintage


@dataclass(frozen=True)
class SourceVintage:
    raw_table: str
    table_id: str  # SCB table id, or the file name for inbox files
    updated: str | None  # the upstream `updated` of the live batch, ISO-8601 UTC (`2025-02-21T07:00:00Z`)
    synthetic: bool


def iso_utc(text: str | None) -> str | None:
    """``updated`` as the contract writes it (``2025-02-21T07:00:00Z``); None when missing or unparseable."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        log.warning("upstream updated %r is not an ISO-8601 time; treated as unknown", text)
        return None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def landing_updated(settings: Settings, raw_table: str, source_name: str, load_id: str) -> str | None:
    """The upstream ``updated`` from the landing manifest of a load (raw tables before ``_source_updated``)."""

    path = settings.landing_dir / raw_table / source_name / f"{load_id}{MANIFEST_SUFFIX}"
    try:
        return iso_utc(json.loads(path.read_text(encoding="utf-8")).get("updated"))
    except (OSError, ValueError):
        return None


def source_vintages(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, list[SourceVintage]]:
    """raw table -> the source tables live in it, sorted by table id; from the raw lineage columns, with the
    upstream ``updated`` from ``_source_updated`` when the loader wrote it, else from the landing manifest."""
    columns: dict[str, set[str]] = {}
    for table, column in con.execute(
        "select table_name, column_name from information_schema.columns where table_schema = 'raw' "
        "and column_name in ('_source_name', '_source_table', '_load_id', '_synthetic', '_source_updated')"
    ).fetchall():
        columns.setdefault(str(table), set()).add(str(column))
    out: dict[str, list[SourceVintage]] = {}
    for table in sorted(columns):
        have = columns[table]
        if not {"_source_name", "_source_table", "_load_id", "_synthetic"} <= have:
            continue
        updated_sql = "max(_source_updated)" if "_source_updated" in have else "null"
        rows = con.execute(
            f"select _source_name, _source_table, _load_id, bool_or(_synthetic), {updated_sql} "
            f'from raw."{table}" group by all order by all'
        ).fetchall()
        by_id: dict[str, SourceVintage] = {}
        for source_name, table_id, load_id, synthetic, updated in rows:
            if table_id is None:
                continue
            vintage = iso_utc(updated) if updated else landing_updated(settings, table, source_name, load_id)
            known = by_id.get(table_id)
            by_id[table_id] = SourceVintage(
                raw_table=table,
                table_id=str(table_id),
                updated=max(filter(None, (vintage, known.updated if known else None)), default=None),
                synthetic=bool(synthetic) or bool(known and known.synthetic),
            )
        out[table] = [by_id[k] for k in sorted(by_id)]
    return out


# ----------------------------------------------------------------------------------------------------------------
# A mart's (or some of its rows') provenance


@dataclass
class Provenance:
    source_tables: list[str]
    source_updated: dict[str, str]  # table id -> updated, same order as source_tables, unknown vintages omitted
    synthetic: str  # "true" | "false" | "partial" (some rows)
    synthetic_inputs: list[str]
    #: "rows": all from the mart's own provenance columns; "dbt lineage": all from the raw tables upstream of the
    #: model in dbt's manifest; "rows + dbt lineage": the columns the mart has, lineage for the others
    basis: str

    @property
    def source_tables_text(self) -> str:
        return ",".join(self.source_tables)

    @property
    def source_updated_text(self) -> str:
        return ",".join(f"{t}={self.source_updated[t]}" for t in self.source_tables if t in self.source_updated)

    @property
    def synthetic_inputs_text(self) -> str:
        return ",".join(self.synthetic_inputs)

    def as_json(self) -> dict[str, Any]:
        return {
            "source_tables": self.source_tables,
            "source_updated": {t: self.source_updated[t] for t in self.source_tables if t in self.source_updated},
            "synthetic": self.synthetic,
            "synthetic_inputs": self.synthetic_inputs,
            "provenance_basis": self.basis,
        }


def split_list(values: Iterable[object]) -> list[str]:
    """Distinct items of comma-separated cells (``TAB1830,TAB3204``), sorted; nulls (None, and the NaN pandas
    puts in an empty text cell, which is truthy and would read as 'nan') and blanks ignored."""
    return sorted({item.strip() for v in values if not _is_null(v) for item in str(v).split(",") if item.strip()})


def _is_null(value: object) -> bool:
    """None, float NaN and pandas' NA (cells of a DataFrame), without importing pandas for it."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NAType"


def split_pairs(values: Iterable[object]) -> dict[str, str]:
    """``TAB638=2025-02-21T07:00:00Z,...`` cells -> table id -> the latest updated seen for it."""
    out: dict[str, str] = {}
    for item in split_list(values):
        table_id, sep, updated = item.partition("=")
        if sep and updated:
            out[table_id] = max(out.get(table_id, ""), updated)
    return out


def synthetic_status(rows: int, synthetic_rows: int) -> str:
    if synthetic_rows and synthetic_rows == rows:
        return SYNTHETIC_TRUE
    return SYNTHETIC_PARTIAL if synthetic_rows else SYNTHETIC_FALSE


def from_lineage(raw_tables: Iterable[str], vintages: Mapping[str, Sequence[SourceVintage]]) -> Provenance:
    """Provenance of a model from the raw tables upstream of it. Without row flags, any synthetic input makes
    the whole model synthetic: claiming a figure is real when it is not is the error to avoid."""
    live = [v for t in sorted(set(raw_tables)) for v in vintages.get(t, ())]
    tables = sorted({v.table_id for v in live})
    updated: dict[str, str] = {}
    for v in live:
        if v.updated:
            updated[v.table_id] = max(updated.get(v.table_id, ""), v.updated)
    syn = sorted({v.table_id for v in live if v.synthetic})
    return Provenance(
        source_tables=tables,
        source_updated=updated,
        synthetic=SYNTHETIC_TRUE if syn else SYNTHETIC_FALSE,
        synthetic_inputs=syn,
        basis="dbt lineage",
    )


def combine(
    *,
    rows: int,
    synthetic_rows: int | None,
    source_tables: Iterable[object] | None,
    source_updated: Iterable[object] | None,
    synthetic_inputs: Iterable[object] | None,
    lineage: Provenance,
) -> Provenance:
    """Provenance of a set of mart rows from whichever provenance columns the mart has (None = column absent),
    with dbt lineage filling in what is missing."""
    if source_tables is None:
        tables, updated = lineage.source_tables, lineage.source_updated
    else:
        tables = split_list(source_tables)
        updated = split_pairs(source_updated) if source_updated is not None else {}
        if source_updated is None:
            updated = {t: u for t, u in lineage.source_updated.items() if t in tables}
    if synthetic_rows is None:
        synthetic = lineage.synthetic
        syn_inputs = lineage.synthetic_inputs
    else:
        synthetic = synthetic_status(rows, synthetic_rows)
        if synthetic_inputs is not None:
            syn_inputs = split_list(synthetic_inputs)
        else:
            syn_inputs = lineage.synthetic_inputs if synthetic != SYNTHETIC_FALSE else []
    from_rows = [c is not None for c in (synthetic_rows, source_tables, source_updated, synthetic_inputs)]
    basis = "rows" if all(from_rows) else "rows + dbt lineage" if any(from_rows) else lineage.basis
    return Provenance(
        source_tables=list(tables),
        source_updated={t: updated[t] for t in tables if t in updated},
        synthetic=synthetic,
        synthetic_inputs=list(syn_inputs),
        basis=basis,
    )


def mart_provenance(
    con: duckdb.DuckDBPyConnection, relation: str, columns: Iterable[str], lineage: Provenance
) -> Provenance:
    """Provenance of a whole mart (``relation`` is the quoted ``schema."table"``): distinct values over its rows
    of the provenance columns it has, dbt lineage for the rest."""
    have = set(columns)
    select = ["count(*)"]
    select.append("count(*) filter (where is_synthetic)" if "is_synthetic" in have else "null")
    for col in ("source_tables", "source_updated", "synthetic_inputs"):
        select.append(f"coalesce(list(distinct {col}), []::varchar[])" if col in have else "null")
    rows, synthetic_rows, tables, updated, syn_inputs = con.execute(
        f"select {', '.join(select)} from {relation}"
    ).fetchall()[0]
    return combine(
        rows=int(rows),
        synthetic_rows=None if synthetic_rows is None else int(synthetic_rows),
        source_tables=tables,
        source_updated=updated,
        synthetic_inputs=syn_inputs,
        lineage=lineage,
    )
