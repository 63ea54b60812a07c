"""The landing-batch store: one place that knows how batches are laid out on disk and what state each is in.

A batch is one extract of one source: ``<load_id>.parquet`` plus ``<load_id>.manifest.json`` in
``landing/<raw_table>/<source_name>/``. Validation adds ``<load_id>.validation.parquet`` (written last, it marks
the batch as validated); a batch that fails moves with its files to ``quarantine/<raw_table>/<source_name>/`` and
gets ``<load_id>.reason.txt`` whose first line says why. ``extract.landing`` writes new batches,
``expectations.validate`` marks or quarantines them, ``warehouse.load`` reads them; all through this module.

This module stays light (no pandas, pyarrow or pandera) so the DAG files and the warehouse can import it cheaply.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from regionstat.settings import Settings

MANIFEST_SUFFIX = ".manifest.json"
PARQUET_SUFFIX = ".parquet"
VALIDATION_SUFFIX = ".validation.parquet"
REASON_SUFFIX = ".reason.txt"
#: a quarantined inbox file keeps its bytes as ``<load_id>.original.<ext>``
ORIGINAL_INFIX = ".original"

BatchKind = Literal["pxweb", "file"]


class BatchState(StrEnum):
    """Where a batch is in its life: landed and waiting, validated (loadable), or quarantined (never loaded)."""

    PENDING = "pending"
    VALIDATED = "validated"
    QUARANTINED = "quarantined"


@contextlib.contextmanager
def atomic_path(path: Path, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temp path beside ``path`` to write to; on success it replaces ``path`` in one rename.

    Readers see the old file or the whole new one, never a part; with ``fsync`` (the default) also after a power
    loss (file and directory are synced). On any error the temp file is removed and ``path`` is untouched; a full
    disk names the file that could not be written (the OS names none).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # a unique name the writer creates itself (so the file gets the usual permissions, not mkstemp's 0600)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes | str, *, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` (text is UTF-8) all at once; see :func:`atomic_path`."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(payload)


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort: some file systems refuse to open directories)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def new_load_id(now: datetime, content_sha256: str) -> str:
    """``<UTC yyyymmddThhmmssffffffZ>-<first 8 of the digest>``: load ids sort by time."""
    return f"{now:%Y%m%dT%H%M%S%fZ}-{content_sha256[:8]}"


def load_id_of(manifest_path: Path) -> str:
    return manifest_path.name.removesuffix(MANIFEST_SUFFIX)


def is_validated(manifest_path: Path) -> bool:
    """True once validation wrote its results next to the manifest (in landing: the batch passed)."""
    return manifest_path.with_name(load_id_of(manifest_path) + VALIDATION_SUFFIX).exists()


@dataclass
class Batch:
    """One landing batch, as its manifest JSON describes it (docs/CONTRACTS.md, "Landing batch")."""

    load_id: str
    source_name: str
    raw_table: str
    kind: str  # BatchKind: pxweb | file
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
    path: Path | None = field(default=None, compare=False, repr=False)  # the manifest file

    @property
    def manifest_path(self) -> Path:
        if self.path is None:
            raise ValueError(f"batch {self.load_id} of {self.source_name} has no manifest path yet")
        return self.path

    def sibling(self, suffix: str) -> Path:
        """The batch's file with ``suffix`` (``.parquet``, ``.validation.parquet``, ``.reason.txt``)."""
        return self.manifest_path.with_name(self.load_id + suffix)

    @property
    def parquet_path(self) -> Path:
        return self.sibling(PARQUET_SUFFIX)

    @property
    def validation_path(self) -> Path:
        return self.sibling(VALIDATION_SUFFIX)

    @property
    def reason_path(self) -> Path:
        return self.sibling(REASON_SUFFIX)

    @property
    def state(self) -> BatchState:
        if self.reason_path.exists():
            return BatchState.QUARANTINED
        if self.validation_path.exists():
            return BatchState.VALIDATED
        return BatchState.PENDING

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("path")
        return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)

    def write_manifest(self) -> None:
        """Write the manifest atomically; for a landed batch this is the moment it becomes visible."""
        atomic_write(self.manifest_path, self.to_json())

    @classmethod
    def read(cls, path: Path) -> Batch:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**data, path=path)


def batch_dir(root: Path, raw_table: str, source_name: str) -> Path:
    """``<root>/<raw_table>/<source_name>/``, root being the landing or the quarantine folder."""
    return root / raw_table / source_name


def manifest_paths(directory: Path) -> list[Path]:
    """Every manifest under a landing or quarantine folder tree, oldest first (load ids sort by time)."""
    if not directory.exists():
        return []
    return sorted(directory.rglob(f"*{MANIFEST_SUFFIX}"), key=lambda p: p.name)


def batches(directory: Path) -> list[Batch]:
    """All batches in a landing or quarantine folder tree, oldest first."""
    return sorted((Batch.read(p) for p in manifest_paths(directory)), key=lambda b: b.load_id)


def latest_batch(settings: Settings, raw_table: str, source_name: str) -> Batch | None:
    """The newest landed batch of a source, validated or not."""
    found = batches(batch_dir(settings.landing_dir, raw_table, source_name))
    return found[-1] if found else None


def pending(settings: Settings, sources: Iterable[str] | None = None) -> list[Path]:
    """Manifests of landed batches not validated yet, oldest first; ``sources`` limits it to those sources."""
    wanted = set(sources or ())
    landing = settings.landing_dir
    if not landing.exists():
        return []
    found = [
        m
        for m in landing.glob(f"*/*/*{MANIFEST_SUFFIX}")
        if not is_validated(m) and (not wanted or m.parent.name in wanted)
    ]
    return sorted(found, key=load_id_of)


def latest_validated(directory: Path, *, before: str | None = None, table_id: str | None = None) -> Path | None:
    """The manifest of the newest validated batch in one source folder, older than load id ``before``.

    ``table_id`` (inbox files) keeps only batches of that file name: another municipality's file is not this
    file's previous version. A manifest that cannot be read does not count.
    """
    best: tuple[str, Path] | None = None
    for p in directory.glob(f"*{MANIFEST_SUFFIX}"):
        other = load_id_of(p)
        if (before is not None and other >= before) or (best is not None and other <= best[0]):
            continue
        if not is_validated(p):
            continue
        if table_id is not None:
            try:
                if json.loads(p.read_text(encoding="utf-8")).get("table_id") != table_id:
                    continue
            except (OSError, ValueError):
                continue
        best = (other, p)
    return best[1] if best else None


def quarantine(
    manifest_path: Path, *, settings: Settings, raw_table: str, source_name: str, reason: str, results: bytes | None
) -> Path:
    """Move a landed batch to ``quarantine/<raw_table>/<source_name>/`` with its reason (and validation results).

    Reason and results are written first, the manifest moves before the Parquet file: the batch leaves landing
    in one rename, and a crash half-way leaves nothing in landing that looks loadable. Returns the Parquet path
    in quarantine.
    """
    load_id = load_id_of(manifest_path)
    qdir = batch_dir(settings.quarantine_dir, raw_table, source_name)
    qdir.mkdir(parents=True, exist_ok=True)
    atomic_write(qdir / f"{load_id}{REASON_SUFFIX}", reason)
    if results is not None:
        atomic_write(qdir / f"{load_id}{VALIDATION_SUFFIX}", results)
    manifest_path.with_name(f"{load_id}{VALIDATION_SUFFIX}").unlink(missing_ok=True)
    os.replace(manifest_path, qdir / manifest_path.name)  # leaves landing: the batch is no longer visible
    src_parquet = manifest_path.with_name(f"{load_id}{PARQUET_SUFFIX}")
    if src_parquet.exists():
        os.replace(src_parquet, qdir / src_parquet.name)
    fsync_dir(qdir)
    fsync_dir(manifest_path.parent)
    return qdir / src_parquet.name


def reason_paths(settings: Settings) -> list[Path]:
    """Every quarantine reason file, sorted by path."""
    qroot = settings.quarantine_dir
    return sorted(qroot.glob(f"*/*/*{REASON_SUFFIX}")) if qroot.exists() else []
