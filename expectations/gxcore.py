"""One Great Expectations runtime per process: quiet, no analytics, no progress bars, created lazily.

GX is slow to import (~2.5 s) and chatty; everything in ``expectations/`` goes through :func:`gx` and
:func:`context` so the import and the context happen once per process.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import warnings
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

_lock = threading.RLock()
_state: dict[str, Any] = {}


def _quiet() -> None:
    # Must happen BEFORE the first `import great_expectations`.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("GE_USAGE_STATS", "FALSE")
    for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
        lg = logging.getLogger(name)
        lg.setLevel(logging.ERROR)
        lg.propagate = False
    warnings.filterwarnings("ignore", module=r"great_expectations(\..*)?")


def gx() -> ModuleType:
    """The ``great_expectations`` module, imported once, quietly."""
    with _lock:
        mod = _state.get("gx")
        if mod is None:
            _quiet()
            import great_expectations as mod

            _state["gx"] = mod
        return mod  # type: ignore[return-value]


def context() -> Any:
    """The process-wide ephemeral context with one pandas datasource for landing frames."""
    with _lock:
        ctx = _state.get("context")
        if ctx is None:
            g = gx()
            from great_expectations.data_context.types.base import ProgressBarsConfig

            ctx = g.get_context(mode="ephemeral")
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            _state["datasource"] = ctx.data_sources.add_pandas(DATASOURCE)
            _state["batch_definitions"] = {}
            _state["context"] = ctx
        return ctx


DATASOURCE = "regionstat_landing"
BATCH_DEFINITION = "whole landing batch"


def asset_name(source_name: str, raw_table: str) -> str:
    """The GX data asset of one source's landing batches: what Data Docs list under "Data asset"."""
    return f"{source_name} (raw.{raw_table})"


def batch_definition(source_name: str, raw_table: str) -> Any:
    """The whole-dataframe batch definition of one source's data asset, created on first use."""
    context()
    with _lock:
        name = asset_name(source_name, raw_table)
        definitions: dict[str, Any] = _state["batch_definitions"]
        if name not in definitions:
            asset = _state["datasource"].add_dataframe_asset(name)
            definitions[name] = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)
        return definitions[name]


def validate(definition: Any, dataframe: Any, suite: Any, result_format: dict[str, Any]) -> Any:
    """``suite`` on ``dataframe`` as ``definition.get_batch(...).validate(suite)`` does, with the same result, but one
    expectation at a time and without GX's metric cache, so memory holds the metrics of one expectation only.

    GX resolves a whole suite as one metric graph and keeps every resolved metric (a boolean Series per row-wise
    expectation, copies of the key columns for uniqueness...) until the suite ends; its execution engine also
    caches them for the life of the process, so every batch validated stayed in memory (issue 16).
    """
    from great_expectations.validator.v1_validator import Validator

    class OneAtATime(Validator):
        def _validate_expectation_configs(
            self, expectation_configs: list[Any], expectation_parameters: Any = None
        ) -> list[Any]:
            results = []
            cache = self._wrapped_validator.execution_engine._metric_cache
            for config in expectation_configs:
                results += super()._validate_expectation_configs([config], expectation_parameters)
                if isinstance(cache, dict):
                    cache.clear()  # resolved metrics of this batch are never asked for again
            return results

    validator = OneAtATime(
        batch_definition=definition, batch_parameters={"dataframe": dataframe}, result_format=result_format
    )
    return validator.validate_expectation_suite(suite)


def lock() -> threading.RLock:
    return _lock


# -- one suite over a batch read in chunks ----------------------------------------------------------------

#: The expectation whose result depends on rows of different chunks together (pandas ``duplicated(keep=False)``).
COMPOUND_UNIQUE = "expect_compound_columns_to_be_unique"
ROW_COUNT = "expect_table_row_count_to_equal"
DISTINCT_CONTAIN = "expect_column_distinct_values_to_contain_set"


def order_of(result: Any) -> int:
    """The suite position of an expectation's result (``meta["order"]``, set by ``suites.build_suite``)."""
    return int((result.expectation_config.meta or {}).get("order", 10**6))


@dataclass
class CrossChunkRows:
    """The rows of a whole batch a row-wise expectation flags, found outside GX (e.g. duplicated keys in DuckDB):
    their number and the first ``partial_unexpected_count`` of them as GX lists them (values and index labels)."""

    count: int
    values: list[Any] = field(default_factory=list)
    index: list[Any] = field(default_factory=list)


class ChunkedSuiteResult:
    """GX results of one suite on consecutive chunks of a batch, combined into what GX returns for the whole batch.

    Row-wise (map) expectations add up exactly: element, missing and unexpected counts are summed, the partial
    lists are the chunks' lists in row order cut to ``partial_unexpected_count``, and GX's own
    ``_format_map_output`` recomputes the percentages and ``partial_unexpected_counts``. What no chunk can see
    alone is handed in: the row count, the column's distinct values (for the distinct-values expectation, which GX
    then evaluates on them), the rows that duplicate a key across chunks.
    """

    def __init__(self, result_format: dict[str, Any]) -> None:
        from great_expectations.expectations.expectation_configuration import parse_result_format

        self.result_format = parse_result_format(result_format)
        self.first: Any = None
        self.by_order: dict[int, list[Any]] = {}

    def add(self, suite_result: Any) -> None:
        if self.first is None:
            self.first = suite_result
        for res in suite_result.results:
            self.by_order.setdefault(order_of(res), []).append(res)

    def combined(
        self,
        *,
        rows: int,
        fingerprint: str | None,
        cross_chunk: dict[int, CrossChunkRows] | None = None,
        replaced: dict[int, Any] | None = None,
    ) -> Any:
        """The whole batch's suite result. ``cross_chunk``: map expectations whose unexpected rows span chunks;
        ``replaced``: results computed on the whole batch another way (by suite position)."""
        from great_expectations.validator.validation_statistics import calc_validation_statistics

        results = []
        for order, parts in self.by_order.items():
            if replaced and order in replaced:
                results.append(replaced[order])
            else:
                results.append(self._combine(parts, rows, (cross_chunk or {}).get(order)))
        out = copy.copy(self.first)
        out.results = results
        stats = calc_validation_statistics(results)
        out.success = stats.success
        out.statistics = {
            "evaluated_expectations": stats.evaluated_expectations,
            "successful_expectations": stats.successful_expectations,
            "unsuccessful_expectations": stats.unsuccessful_expectations,
            "success_percent": stats.success_percent,
        }
        meta = copy.deepcopy(self.first.meta)
        markers = meta.get("batch_markers")
        if markers is not None:
            if fingerprint is None:
                markers.pop("pandas_data_fingerprint", None)
            else:
                markers["pandas_data_fingerprint"] = fingerprint
        out.meta = meta
        return out

    def _combine(self, parts: list[Any], rows: int, cross: CrossChunkRows | None) -> Any:
        raised = next((p for p in parts if (p.exception_info or {}).get("raised_exception")), None)
        if raised is not None:
            return raised
        first = parts[0]
        head = first.result or {}
        if first.expectation_config.type == ROW_COUNT:
            expected = first.expectation_config.kwargs.get("value")
            return self._with(first, rows == expected, {**head, "observed_value": rows})
        if "unexpected_count" not in head or "element_count" not in head:
            # table- and dtype-level results are the same for every chunk (same columns, same dtypes)
            return next((p for p in parts if not p.success), first)
        from great_expectations.expectations.expectation import _format_map_output

        limit = self.result_format["partial_unexpected_count"]
        element = sum(int(p.result["element_count"]) for p in parts)
        missing = sum(int(p.result["missing_count"]) for p in parts) if "missing_count" in head else None
        unexpected = sum(int(p.result["unexpected_count"]) for p in parts)
        values = [v for p in parts for v in p.result.get("partial_unexpected_list") or []][:limit]
        has_index = "partial_unexpected_index_list" in head
        index = [i for p in parts for i in p.result.get("partial_unexpected_index_list") or []][:limit]
        success = all(p.success for p in parts)
        if cross is not None:
            unexpected, values, index = cross.count, cross.values[:limit], cross.index[:limit]
            success = unexpected == 0 or element == 0 or element - (missing or 0) == 0
        formatted = _format_map_output(
            result_format=self.result_format,
            success=success,
            element_count=element,
            nonnull_count=None if missing is None else element - missing,
            unexpected_count=unexpected,
            unexpected_list=values if "partial_unexpected_list" in head else None,
            unexpected_index_list=index if has_index else None,
        )
        return self._with(first, formatted["success"], formatted["result"])

    @staticmethod
    def _with(template: Any, success: bool, result: dict[str, Any]) -> Any:
        out = copy.copy(template)
        out.success = bool(success)
        out.result = result
        return out
