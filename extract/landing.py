"""Landing zone: immutable Parquet batches plus a manifest each, written atomically.

Extraction writes here and nowhere else (DuckDB has one writer: the warehouse loader). A batch is visible only
once both its Parquet file and its manifest have been renamed into place, manifest last. A batch can be written
from a stream of tables (``write_batch_stream``: one Parquet row group per table, straight to a temp file), so
landing holds one slice at a time, never the whole batch or its Parquet bytes.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandera.pandas as pdx
import pyarrow as pa
import pyarrow.parquet as pq

from regionstat.batches import (
    MANIFEST_SUFFIX,
    ORIGINAL_INFIX,
    REASON_SUFFIX,
    Batch,
    atomic_write,
    batch_dir,
    fsync_dir,
    new_load_id,
)
from regionstat.errors import SchemaError
from regionstat.settings import Settings

_CHECK_ROWS = 500_000  # rows per pandera slice in check_landing_frame


def landing_schema(dimensions: list[str]) -> pdx.DataFrameSchema:
    """The pandera guard for a landing frame: string dimensions, float value, string status, nothing else."""
    columns = {d: pdx.Column(str, nullable=False) for d in dimensions}
    columns["value"] = pdx.Column(float, nullable=True)
    columns["status"] = pdx.Column(str, nullable=True)
    return pdx.DataFrameSchema(columns, strict=True, ordered=True)


def check_landing_frame(table: pa.Table, *, what: str) -> None:
    """Raise SchemaError (one line naming the batch and the column) if the table breaks the landing contract."""
    dims = [c for c in table.column_names if c not in ("value", "status")]
    schema = landing_schema(dims)
    try:
        # Slice by slice: every check is per column and row, and pandas never holds more than one slice (a
        # 200 MB inbox CSV would otherwise be copied whole into pandas next to its Arrow table).
        for offset in range(0, max(table.num_rows, 1), _CHECK_ROWS):
            schema.validate(table.slice(offset, _CHECK_ROWS).to_pandas(), lazy=True)
    except pdx.errors.SchemaErrors as exc:
        first = exc.failure_cases.iloc[0]
        raise SchemaError(
            f"{what}: landing schema check failed on column {first['column']!r}: {first['check']} "
            f"({len(exc.failure_cases)} failure case(s))"
        ) from exc
    except pdx.errors.SchemaError as exc:  # pragma: no cover - lazy=True raises SchemaErrors
        raise SchemaError(f"{what}: landing schema check failed: {exc}") from exc


def write_batch(table: pa.Table, manifest_fields: dict[str, Any], *, settings: Settings) -> Batch:
    """Check, then atomically land one batch; returns its manifest (with ``path`` set)."""
    return write_batch_stream([table], manifest_fields, settings=settings)


def plain_strings(table: pa.Table) -> pa.Table:
    """Dictionary-encoded columns cast to their value type: landing schemas are plain, however a table was built."""
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(field.type.value_type))
    return table


def write_batch_stream(tables: Iterable[pa.Table], manifest_fields: dict[str, Any], *, settings: Settings) -> Batch:
    """Check and land one batch from tables arriving one after another (one Parquet row group each, up to
    Parquet's default of 1 Mi rows); returns its manifest.

    Each table is checked (pandera) and appended to a temp file beside the batch; only when the last one is in is
    the file hashed (the load id carries the digest), synced and renamed, then the manifest written. Any failure
    (a table breaking the contract, a schema that differs from the first table's, a full disk, an error in the
    producer) removes the temp file: nothing lands. A single table gives the same bytes as ``pq.write_table``.
    """
    what = f"{manifest_fields['source_name']} ({manifest_fields['table_id']})"
    directory = batch_dir(settings.landing_dir, manifest_fields["raw_table"], manifest_fields["source_name"])
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".landing-{uuid.uuid4().hex[:12]}.tmp"
    try:
        schema, rows = _write_parquet(tables, tmp, what=what)
        with open(tmp, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
            os.fsync(fh.fileno())
        now = datetime.now(UTC)
        load_id = new_load_id(now, digest)
        manifest = Batch(
            load_id=load_id,
            fetched_at=now.isoformat(timespec="seconds"),
            rows=rows,
            content_sha256=digest,
            schema={f.name: str(f.type) for f in schema},
            path=directory / f"{load_id}{MANIFEST_SUFFIX}",
            **manifest_fields,
        )
        os.replace(tmp, manifest.parquet_path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:  # name the batch a full disk could not take (the OS names no file)
            raise OSError(exc.errno, exc.strerror or str(exc), str(tmp)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)
    manifest.write_manifest()  # manifest last: the batch is now visible
    return manifest


def _write_parquet(tables: Iterable[pa.Table], path: Path, *, what: str) -> tuple[pa.Schema, int]:
    """Append every table to one zstd Parquet file at ``path``; returns the schema and the row count."""
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    rows = 0
    try:
        for part, table in enumerate(tables):
            table = plain_strings(table)
            check_landing_frame(table, what=what)
            if writer is None or schema is None:
                schema = table.schema
                writer = pq.ParquetWriter(path, schema, compression="zstd", write_statistics=True)
            elif not table.schema.equals(schema):
                raise SchemaError(
                    f"{what}: part {part + 1} of the batch has columns {_columns(table.schema)}, "
                    f"the first part {_columns(schema)}"
                )
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if schema is None:
        raise SchemaError(f"{what}: nothing to land (no table)")
    return schema, rows


def _columns(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)


def quarantine_file(
    path: Path, manifest_fields: dict[str, Any], reason: str, *, settings: Settings, keep_copy: bool = True
) -> Batch:
    """Keep an unreadable source file in quarantine with a manifest and a one-line reason; nothing is lost.

    The original stays where it was (the inbox); its hash (``manifest_fields["file_sha256"]``) stops the next run
    from re-reading it until the file changes. The copy is streamed, never followed through a symlink; with
    ``keep_copy=False`` (a symlink, FIFO or directory, refused unopened) only the manifest and reason are written.
    """
    from extract.files import copy_regular_file

    digest = manifest_fields["file_sha256"]
    now = datetime.now(UTC)
    load_id = new_load_id(now, digest)
    directory = batch_dir(settings.quarantine_dir, manifest_fields["raw_table"], manifest_fields["source_name"])
    manifest = Batch(
        load_id=load_id,
        fetched_at=now.isoformat(timespec="seconds"),
        rows=0,
        content_sha256=digest,
        path=directory / f"{load_id}{MANIFEST_SUFFIX}",
        **manifest_fields,
    )
    if keep_copy:
        copy_regular_file(path, directory / f"{load_id}{ORIGINAL_INFIX}{path.suffix.lower()}")
    atomic_write(directory / f"{load_id}{REASON_SUFFIX}", f"quarantined: {reason}\n")
    manifest.write_manifest()
    return manifest
