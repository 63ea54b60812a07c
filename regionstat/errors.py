"""Typed errors. Every message is one line that names what was wrong (table, variable, value, file, line)."""

from __future__ import annotations


class RegionstatError(Exception):
    """Base of every error regionstat raises on purpose."""


class PxWebError(RegionstatError):
    """Anything that went wrong talking to a PxWeb v2 API."""

    def __init__(self, message: str, *, table_id: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.table_id = table_id
        self.status_code = status_code


class TableNotFoundError(PxWebError):
    def __init__(self, table_id: str, api_url: str = ""):
        where = f" at {api_url}" if api_url else ""
        super().__init__(f"table {table_id!r} does not exist{where}", table_id=table_id, status_code=404)


class UnknownVariableError(PxWebError):
    def __init__(self, table_id: str, variable: str, known: list[str]):
        super().__init__(
            f"table {table_id}: unknown variable {variable!r} (the table has {', '.join(known)})",
            table_id=table_id,
        )
        self.variable = variable


class UnknownValueCodeError(PxWebError):
    def __init__(self, table_id: str, variable: str, code: str):
        super().__init__(f"table {table_id}: variable {variable!r} has no value code {code!r}", table_id=table_id)
        self.variable = variable
        self.code = code


class NonEliminableVariableError(PxWebError):
    def __init__(self, table_id: str, variable: str):
        super().__init__(
            f"table {table_id}: variable {variable!r} cannot be eliminated; select at least one value for it",
            table_id=table_id,
        )
        self.variable = variable


class InvalidSelectionError(PxWebError):
    def __init__(self, table_id: str, variable: str, expression: str, why: str):
        super().__init__(
            f"table {table_id}: selection {expression!r} for variable {variable!r} is invalid: {why}",
            table_id=table_id,
        )
        self.variable = variable


class TooManyCellsError(PxWebError):
    def __init__(self, table_id: str, cells: int, limit: int):
        super().__init__(
            f"table {table_id}: a request of {cells:,} cells exceeds maxDataCells {limit:,} and cannot be split",
            table_id=table_id,
        )


class ApiUnavailableError(PxWebError):
    def __init__(self, api_url: str, reason: str, *, table_id: str | None = None):
        what = f"table {table_id}: " if table_id else ""
        super().__init__(f"{what}PxWeb API {api_url} is unavailable: {reason}", table_id=table_id)


class ResponseError(PxWebError):
    """A response that is malformed or truncated even after retries."""


class FileSourceError(RegionstatError):
    """A municipal file that cannot be read or mapped; names the file and, where known, the line."""

    def __init__(self, path: str, reason: str, *, line: int | None = None):
        at = f" line {line}" if line is not None else ""
        super().__init__(f"{path}{at}: {reason}")
        self.path = path
        self.line = line


class CatalogueError(RegionstatError):
    """The source catalogue is inconsistent."""


class ConfigError(RegionstatError):
    """A user configuration (``regionstat.toml``, a flag, an override CSV) is wrong; names the file and line."""


class SchemaError(RegionstatError):
    """A frame does not match its declared schema at a Python boundary (pandera)."""


class WriterBusyError(RegionstatError):
    """Another process holds the warehouse writer lock."""


class WarehouseWriteError(RegionstatError):
    """The warehouse could not be written (disk full, read-only data directory); the last good one is unchanged."""


class SnapshotCoverageError(RegionstatError):
    """The region set asks the offline snapshot for regions it does not hold (it would answer with nulls)."""

    def __init__(self, table_id: str, variable: str, missing: list[str], requested: int, region_set: str):
        shown = ", ".join(missing[:8]) + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else "")
        super().__init__(
            f"table {table_id}: the offline snapshot has no {variable} data for {len(missing)} of the {requested} "
            f"regions region set {region_set!r} asks for ({shown}); use --live (SCB's API) or a region set the "
            "snapshot covers"
        )
        self.table_id, self.variable, self.missing = table_id, variable, missing
