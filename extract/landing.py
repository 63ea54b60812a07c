"""Landing zone: immutable Parquet batches plus a manifest each, written atomically.

Extraction writes here and nowhere else (DuckDB has one writer: the warehouse loader). A batch is visible only
once both its Parquet file and its manifest have been renamed into place, manifest last.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandera.pandas as pdx
import pyarrow as pa
import pyarrow.parquet as pq

from regionstat.errors import SchemaError
from regionstat.settings import Settings

MANIFEST_SUFFIX = ".manifest.json"
_CHECK_ROWS = 500_000  # rows per pandera slice in check_landing_frame


@dataclass
class Manifest:
    load_id: str
    source_name: str
    raw_table: str
    kind: str  # pxweb | file
    table_id: str
    source_url: str
    query: dict[str, Any]
    updated: str | None
    fetched_at: str
    rows: int
    cells: int
    requests: int
    content_sha256: str
    synthetic: bool
    region_set: str | None
    file: str | None = None
    file_sha256: str | None = None
    encoding: str | None = None  # file sources: the text encoding the file was read with (utf-8, cp1252, ...)
    schema: dict[str, str] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False, repr=False)

    @property
    def parquet_path(self) -> Path:
        assert self.path is not None
        return self.path.with_name(self.load_id + ".parquet")

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("path")
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**data, path=path)


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


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a full disk names no file: say which one could not be written
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_statistics=True)
    return buf.getvalue()


def write_batch(table: pa.Table, manifest_fields: dict[str, Any], *, settings: Settings) -> Manifest:
    """Check, then atomically land one batch; returns its manifest (with ``path`` set)."""
    what = f"{manifest_fields['source_name']} ({manifest_fields['table_id']})"
    check_landing_frame(table, what=what)
    data = parquet_bytes(table)
    digest = hashlib.sha256(data).hexdigest()
    now = datetime.now(UTC)
    load_id = f"{now:%Y%m%dT%H%M%S%fZ}-{digest[:8]}"
    directory = settings.landing_dir / manifest_fields["raw_table"] / manifest_fields["source_name"]
    manifest = Manifest(
        load_id=load_id,
        fetched_at=now.isoformat(timespec="seconds"),
        rows=table.num_rows,
        content_sha256=digest,
        schema={f.name: str(f.type) for f in table.schema},
        path=directory / f"{load_id}{MANIFEST_SUFFIX}",
        **manifest_fields,
    )
    _atomic_write(manifest.parquet_path, data)
    _atomic_write(manifest.path, manifest.to_json().encode("utf-8"))  # manifest last: batch is now visible
    return manifest


def manifests(directory: Path) -> list[Manifest]:
    """All manifests in a landing or quarantine folder tree, oldest first (load ids sort by time)."""
    if not directory.exists():
        return []
    found = [Manifest.read(p) for p in directory.rglob(f"*{MANIFEST_SUFFIX}")]
    return sorted(found, key=lambda m: m.load_id)


def latest_manifest(settings: Settings, raw_table: str, source_name: str) -> Manifest | None:
    found = manifests(settings.landing_dir / raw_table / source_name)
    return found[-1] if found else None


def quarantine_file(
    path: Path, manifest_fields: dict[str, Any], reason: str, *, settings: Settings, keep_copy: bool = True
) -> Manifest:
    """Keep an unreadable source file in quarantine with a manifest and a one-line reason; nothing is lost.

    The original stays where it was (the inbox); its hash (``manifest_fields["file_sha256"]``) stops the next run
    from re-reading it until the file changes. The copy is streamed, never followed through a symlink; with
    ``keep_copy=False`` (a symlink, FIFO or directory, refused unopened) only the manifest and reason are written.
    """
    from extract.files import copy_regular_file

    digest = manifest_fields["file_sha256"]
    now = datetime.now(UTC)
    load_id = f"{now:%Y%m%dT%H%M%S%fZ}-{digest[:8]}"
    directory = settings.quarantine_dir / manifest_fields["raw_table"] / manifest_fields["source_name"]
    manifest = Manifest(
        load_id=load_id,
        fetched_at=now.isoformat(timespec="seconds"),
        rows=0,
        content_sha256=digest,
        path=directory / f"{load_id}{MANIFEST_SUFFIX}",
        **manifest_fields,
    )
    if keep_copy:
        copy_regular_file(path, directory / f"{load_id}.original{path.suffix.lower()}")
    _atomic_write(directory / f"{load_id}.reason.txt", f"quarantined: {reason}\n".encode())
    _atomic_write(manifest.path, manifest.to_json().encode("utf-8"))
    return manifest
