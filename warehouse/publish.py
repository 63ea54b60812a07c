"""Publish every mart as Parquet, atomically, sorted, so that unchanged data gives byte-identical files.

Each file describes itself, so a BI tool shows more than bare names: every field carries its dbt ``description``
and ``unit`` (Arrow field metadata), and the file carries the mart's description, source tables, their upstream
``updated`` and its synthetic status (Parquet key-value metadata, ``regionstat.*``). ``_index.json`` lists per
mart its checksum, row count and the same provenance.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from regionstat.batches import atomic_path, atomic_write
from regionstat.settings import Settings
from warehouse.db import connect_reader, writer
from warehouse.provenance import (
    ColumnDoc,
    ModelDoc,
    Provenance,
    catalog_comments,
    from_lineage,
    mart_provenance,
    read_model_docs,
    source_vintages,
)

log = logging.getLogger(__name__)

MART_SCHEMA = "marts"
INDEX_NAME = "_index.json"
ROW_GROUP_SIZE = 100_000
#: Parquet key-value metadata keys written per file (docs/CONTRACTS.md, "Published marts").
META_PREFIX = "regionstat."


def column_docs(model: ModelDoc | None, comments: dict[str, str], columns: list[str]) -> dict[str, ColumnDoc]:
    """Per column its description (the DuckDB comment dbt persisted, else the manifest) and unit (manifest)."""
    docs = model.columns if model else {}
    out = {}
    for name in columns:
        doc = docs.get(name, ColumnDoc())
        out[name] = ColumnDoc(description=comments.get(name) or doc.description, unit=doc.unit)
    return out


def file_metadata(name: str, description: str, provenance: Provenance, columns: dict[str, ColumnDoc]) -> dict[str, str]:
    """The ``regionstat.*`` key-value metadata of a mart's Parquet file (values are text)."""
    return {
        f"{META_PREFIX}model": name,
        f"{META_PREFIX}description": description,
        f"{META_PREFIX}source_tables": provenance.source_tables_text,
        f"{META_PREFIX}source_updated": provenance.source_updated_text,
        f"{META_PREFIX}synthetic": provenance.synthetic,
        f"{META_PREFIX}synthetic_inputs": provenance.synthetic_inputs_text,
        f"{META_PREFIX}provenance_basis": provenance.basis,
        # the field metadata again, as one JSON object: DuckDB's parquet_kv_metadata() shows file-level keys only
        f"{META_PREFIX}columns": json.dumps(
            {c: {k: v for k, v in (("description", d.description), ("unit", d.unit)) if v} for c, d in columns.items()},
            ensure_ascii=False,
            sort_keys=True,
        ),
    }


def describe_schema(
    schema: pa.Schema, columns: dict[str, ColumnDoc], metadata: dict[str, str], nulls: dict[str, int]
) -> pa.Schema:
    """``schema`` with field metadata (``description``, ``unit``) and file metadata added, existing keys kept.

    A field is declared not-null when it holds no null (``nulls`` per column), as DuckDB's own COPY does, so a
    reader sees the schema it saw before the metadata was added."""
    fields = []
    for f in schema:
        doc = columns.get(f.name, ColumnDoc())
        extra = {k.encode(): v.encode() for k, v in (("description", doc.description), ("unit", doc.unit)) if v}
        fields.append(f.with_metadata({**(f.metadata or {}), **extra}).with_nullable(nulls.get(f.name, 1) > 0))
    existing = schema.metadata or {}
    return pa.schema(fields, metadata={**existing, **{k.encode(): v.encode() for k, v in metadata.items()}})


def write_parquet(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, path: Path, row_group_size: int = ROW_GROUP_SIZE
) -> int:
    """Stream ``batches`` into ``path`` in row groups of exactly ``row_group_size`` rows (the last one shorter),
    each written from one contiguous chunk: the bytes depend only on the rows, not on how DuckDB batched them,
    and memory stays at about one row group. Returns the number of rows written."""
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0

    def flush(group: pa.Table) -> None:
        parquet_writer.write_table(pa.Table.from_arrays(group.combine_chunks().columns, schema=schema), row_group_size)

    with pq.ParquetWriter(path, schema, compression="zstd") as parquet_writer:
        for batch in batches:
            if not batch.num_rows:
                continue
            pending.append(batch)
            pending_rows += batch.num_rows
            while pending_rows >= row_group_size:
                table = pa.Table.from_batches(pending)
                flush(table.slice(0, row_group_size))
                rest = table.slice(row_group_size).combine_chunks()
                pending, pending_rows = rest.to_batches(), rest.num_rows
                rows += row_group_size
        if pending_rows:
            flush(pa.Table.from_batches(pending))
            rows += pending_rows
    return rows


def publish_marts(*, settings: Settings, wait: float | None = None, only: set[str] | None = None) -> dict[str, str]:
    """Write ``data/marts/<model>.parquet`` for every table in schema ``marts`` and ``_index.json`` (checksum,
    rows, description, provenance per mart); returns name -> sha256.

    ``only``: rewrite just these marts (an incremental run: the others' inputs did not change) and keep the other
    marts' files and index entries as they are; a mart missing from the index is written regardless."""
    out = settings.marts_dir
    out.mkdir(parents=True, exist_ok=True)
    index: dict[str, dict[str, Any]] = {}
    previous = _read_index(out / INDEX_NAME) if only is not None else {}
    models = read_model_docs(settings)
    with writer(settings, wait=wait, purpose="publish"):
        con = connect_reader(settings)
        try:
            con.execute("set preserve_insertion_order = true").fetchall()
            names = [
                r[0]
                for r in con.execute(
                    "select table_name from information_schema.tables where table_schema = ? "
                    "and table_type = 'BASE TABLE' order by table_name",
                    [MART_SCHEMA],
                ).fetchall()
            ]
            vintages = source_vintages(con, settings)
            for name in names:
                kept = previous.get(name)
                if only is not None and name not in only and kept and (out / f"{name}.parquet").exists():
                    index[name] = kept
                    continue
                relation = f'{MART_SCHEMA}."{name}"'
                columns = [
                    r[0]
                    for r in con.execute(
                        "select column_name from information_schema.columns where table_schema = ? "
                        "and table_name = ? order by ordinal_position",
                        [MART_SCHEMA, name],
                    ).fetchall()
                ]
                null_counts = con.execute(
                    "select " + ", ".join(f'count(*) - count("{c}")' for c in columns) + f" from {relation}"
                ).fetchall()[0]
                model = models.get(name)
                table_comment, comments = catalog_comments(con, MART_SCHEMA, name)
                description = table_comment or (model.description if model else "")
                docs = column_docs(model, comments, columns)
                missing = [c for c, d in docs.items() if not d.description]
                if missing:
                    log.warning("publish: %s has no description for column(s) %s", name, ", ".join(missing))
                lineage = from_lineage(model.raw_tables if model else (), vintages)
                provenance = mart_provenance(con, relation, columns, lineage)
                final = out / f"{name}.parquet"
                # the last query on this connection until the file is written: the stream must stay open
                reader = con.sql(f"select * from {relation} order by all").to_arrow_reader(ROW_GROUP_SIZE)
                schema = describe_schema(
                    reader.schema,
                    docs,
                    file_metadata(name, description, provenance, docs),
                    dict(zip(columns, null_counts, strict=True)),
                )
                with atomic_path(final) as tmp:  # on any error the published file stays as it was
                    rows = write_parquet(reader, schema, tmp)
                index[name] = {
                    "file": final.name,
                    "sha256": hashlib.sha256(final.read_bytes()).hexdigest(),
                    "rows": rows,
                    "description": description,
                    **provenance.as_json(),
                }
        finally:
            con.close()
    atomic_write(out / INDEX_NAME, json.dumps(index, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    log.info("published %d marts to %s", len(index), out)
    return {name: entry["sha256"] for name, entry in index.items()}


def _read_index(path: Path) -> dict[str, dict[str, Any]]:
    """The entries of an ``_index.json`` (mart -> checksum, rows, provenance); empty if unreadable or old-style."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def read_index_checksums(path: Path) -> dict[str, str]:
    """mart -> sha256 from an ``_index.json`` (also the older flat ``{mart: sha256}`` form); empty if unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v["sha256"] if isinstance(v, dict) else v for k, v in data.items()}


def mart_paths(settings: Settings) -> list[Path]:
    return sorted(settings.marts_dir.glob("*.parquet"))
