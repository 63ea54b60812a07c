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


def lock() -> threading.RLock:
    return _lock
