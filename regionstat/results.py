"""Validation results and load outcomes: the one schema and the closed sets of values they use.

``expectations.validate`` writes ``<load_id>.validation.parquet`` with :data:`RESULTS_SCHEMA`;
``warehouse.db`` creates ``ops.validation_results`` from the same column list (:data:`RESULTS_DDL`), so
``validated_at`` is a UTC timestamp in both; ``ops.loads.status`` takes a :class:`LoadStatus`.
"""

from __future__ import annotations

from enum import StrEnum

import pyarrow as pa


class Severity(StrEnum):
    """bigquery-etl style: **fail** blocks the batch (quarantine), **warn** is recorded and the batch passes."""

    FAIL = "fail"
    WARN = "warn"


class LoadStatus(StrEnum):
    """What happened to a batch or source in a run (``ops.loads.status``, the CLI's and the DAGs' summaries)."""

    LOADED = "loaded"
    QUARANTINED = "quarantined"
    SKIPPED = "skipped"
    FAILED = "failed"


#: (column, Arrow type, DuckDB type) of one validation result row
RESULTS_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("run_id", pa.string(), "varchar"),
    ("load_id", pa.string(), "varchar"),
    ("source_name", pa.string(), "varchar"),
    ("expectation", pa.string(), "varchar"),
    ("column", pa.string(), "varchar"),
    ("severity", pa.string(), "varchar"),
    ("success", pa.bool_(), "boolean"),
    ("observed_value", pa.string(), "varchar"),
    ("details", pa.string(), "varchar"),
    ("validated_at", pa.timestamp("us", tz="UTC"), "timestamptz"),
)

RESULTS_SCHEMA = pa.schema([(name, arrow_type) for name, arrow_type, _ in RESULTS_COLUMNS])

RESULTS_DDL = (
    "create table if not exists ops.validation_results (\n"
    + ",\n".join(f'    "{name}" {sql_type}' for name, _, sql_type in RESULTS_COLUMNS)
    + "\n);"
)
