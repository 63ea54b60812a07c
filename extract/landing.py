"""Landing zone: immutable Parquet batches plus a manifest each, written atomically.

Extraction writes here and nowhere else (DuckDB has one writer: the warehouse loader). A batch is visible only
once both its Parquet file and its manifest have been renamed into place, manifest last.
"""

from __future__ import annotations

import hashlib
import io
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


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_statistics=True)
    return buf.getvalue()


def write_batch(table: pa.Table, manifest_fields: dict[str, Any], *, settings: Settings) -> Batch:
    """Check, then atomically land one batch; returns its manifest (with ``path`` set)."""
    what = f"{manifest_fields['source_name']} ({manifest_fields['table_id']})"
    check_landing_frame(table, what=what)
    data = parquet_bytes(table)
    digest = hashlib.sha256(data).hexdigest()
    now = datetime.now(UTC)
    load_id = new_load_id(now, digest)
    directory = batch_dir(settings.landing_dir, manifest_fields["raw_table"], manifest_fields["source_name"])
    manifest = Batch(
        load_id=load_id,
        fetched_at=now.isoformat(timespec="seconds"),
        rows=table.num_rows,
        content_sha256=digest,
        schema={f.name: str(f.type) for f in table.schema},
        path=directory / f"{load_id}{MANIFEST_SUFFIX}",
        **manifest_fields,
    )
    atomic_write(manifest.parquet_path, data)
    manifest.write_manifest()  # manifest last: the batch is now visible
    return manifest


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
