"""One Great Expectations runtime per process: quiet, no analytics, no progress bars, created lazily.

GX is slow to import (~2.5 s) and chatty; everything in ``expectations/`` goes through :func:`gx` and
:func:`context` so the import and the context happen once per process.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
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
