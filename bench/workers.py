"""Benchmark contestants, each run in its own process (``python -m bench.workers KIND ...``) so that peak memory
and imports of one do not leak into another. Every worker prints one JSON line with its measurements.

    decode NAME PAYLOAD REPEATS [--tracemalloc]   NAME in orjson | ours | pyjstat | pxwebpy
    scale CHUNK_DIR CHUNKS DATA_DIR               decode + land + DuckDB load of CHUNKS responses
    validate MANIFEST DATA_DIR                    GX validation of one landed batch (as the validate stage)
    dbt COMMAND DATA_DIR                          COMMAND in build | parse
    dagbag DAGS_DIR
"""

from __future__ import annotations

import gc
import json
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BOM = b"\xef\xbb\xbf"


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_kb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) of this process (Linux >= 4.0: clear_refs 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# ------------------------------------------------------------------------------------------------ decode
def _contestant(name: str):
    """A function payload bytes -> (table-like, rows, value sum) for one contestant, imports done up front."""
    if name == "orjson":
        import orjson

        def run(payload: bytes):
            doc = orjson.loads(payload[3:] if payload[:3] == BOM else payload)
            return doc, len(doc["value"]), None

        return run
    if name == "ours":
        import pyarrow.compute as pc

        from extract.jsonstat import decode_jsonstat2

        def run(payload: bytes):
            table = decode_jsonstat2(payload)
            return table, table.num_rows, pc.sum(table.column("value")).as_py()

        return run
    if name == "pyjstat":
        from pyjstat import pyjstat

        def run(payload: bytes):
            # pyjstat takes text; the BOM must go first (json.loads rejects it), as with SCB's responses
            df = pyjstat.Dataset.read(payload.decode("utf-8-sig")).write("dataframe", naming="id")
            return df, len(df), float(df["value"].sum())

        return run
    if name == "pxwebpy":
        import pandas as pd
        from pxweb._internal.functions import unpack_table_data

        def run(payload: bytes):
            # what PxApi.get_table_data does with a response: requests' .json() (stdlib json), then
            # unpack_table_data (a list of dicts, one per cell) -> a DataFrame as its docs suggest
            doc = json.loads(payload.decode("utf-8-sig"))
            rows = unpack_table_data(doc, show="code")
            df = pd.DataFrame(rows)
            return df, len(df), float(pd.to_numeric(df["value"]).sum())

        return run
    raise SystemExit(f"unknown contestant {name}")


def decode(name: str, payload_path: str, repeats: int, use_tracemalloc: bool, warmup: bool = True) -> dict[str, Any]:
    payload = Path(payload_path).read_bytes()
    run = _contestant(name)
    gc.collect()
    out: dict[str, Any] = {"contestant": name, "payload_bytes": len(payload)}
    if use_tracemalloc:
        import tracemalloc

        tracemalloc.start()
        result = run(payload)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["tracemalloc_peak_mb"] = round(peak / 2**20, 1)
        del result
        return out
    if warmup:
        result = run(payload)  # warm-up (lazy imports, first-call kernel setup), not timed
        del result
    gc.collect()
    exact = _reset_peak_rss()
    base_kb = _status_kb("VmRSS") if exact else _maxrss_mb() * 1024
    times = []
    cpu_times = []  # this process's CPU time: what the decode itself costs when other work shares the cores
    rows = value_sum = None
    for i in range(repeats):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        result, rows, value_sum = run(payload)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
        if i == 0:
            peak_kb = _status_kb("VmHWM") if exact else _maxrss_mb() * 1024
            out["peak_rss_delta_mb"] = round(((peak_kb or 0) - (base_kb or 0)) / 1024, 1)
            out["peak_rss_method"] = "VmHWM after clear_refs" if exact else "ru_maxrss (approximate)"
        del result
    out.update(
        {
            "times_s": [round(t, 4) for t in times],
            "min_s": round(min(times), 4),
            "cpu_min_s": round(min(cpu_times), 4),
            "median_s": round(statistics.median(times), 4),
            "rows": rows,
            "value_sum": value_sum if value_sum is None or math.isfinite(value_sum) else None,
            "baseline_rss_mb": round((base_kb or 0) / 1024, 1),
        }
    )
    return out


# ------------------------------------------------------------------------------------------------ scaling
def scale(chunk_dir: str, chunks: int, data_dir: str) -> dict[str, Any]:
    """Load the first ``chunks`` responses of ``chunk_dir`` (one period each) as the pipeline does: decode each
    and put it in place in the whole selection (``CubeAssembly``, as the client stitches chunked responses), land
    the batch streamed slice by slice (``write_batch_stream``), load it into DuckDB. Wall/CPU/peak RSS are
    measured from outside (bench.rusage)."""
    import duckdb
    import numpy as np

    from extract.jsonstat import CubeAssembly, parse_cube
    from extract.landing import write_batch_stream
    from regionstat.settings import Settings

    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    paths = sorted(Path(chunk_dir).glob("chunk_*.json"))[:chunks]
    assembly: CubeAssembly | None = None
    for period, path in enumerate(paths):
        cube = parse_cube(path.read_bytes())
        if assembly is None:  # the selection: the first response's codes, one period (Tid, last) per response
            codes = [d.codes for d in cube.dimensions[:-1]] + [[""] * len(paths)]
            assembly = CubeAssembly([d.code for d in cube.dimensions], codes, None, chunks=len(paths))
        assembly.codes[-1][period] = cube.dimensions[-1].codes[0]  # this response's year
        # Tid is the last dimension (stride 1): the response's cell k is row k * periods + period of the whole
        assembly.add(cube, np.arange(cube.cells, dtype=np.int64) * len(paths) + period)
    assert assembly is not None and assembly.covered_exactly_once()
    stages["decode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    settings = Settings(data_dir=Path(data_dir))
    manifest = write_batch_stream(
        assembly.tables(),
        {
            "source_name": "bench_scale",
            "raw_table": "bench_scale",
            "kind": "pxweb",
            "table_id": "TAB1830",
            "source_url": "synthetic://bench/scale",
            "query": {"selection": {}},
            "updated": "2025-06-01T06:00:00Z",
            "cells": assembly.cells,
            "requests": chunks,
            "synthetic": True,
            "region_set": "sweden",
        },
        settings=settings,
    )
    rows = manifest.rows
    del assembly
    stages["land"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("create schema if not exists raw")
    con.execute("create table raw.bench_scale as select * from read_parquet(?)", [str(manifest.parquet_path)])
    raw_rows = (con.execute("select count(*) from raw.bench_scale").fetchone() or (0,))[0]
    con.close()
    stages["duckdb_load"] = time.perf_counter() - t0
    return {"rows": rows, "raw_rows": raw_rows, "stages_s": {k: round(v, 3) for k, v in stages.items()}}


def validate(manifest_path: str, data_dir: str) -> dict[str, Any]:
    """Validate one landed batch as the pipeline's validate stage does (its peak RSS is measured from outside).

    The batch is copied first: a failing batch would be moved to quarantine and the next run would find nothing."""
    import shutil

    from expectations.validate import validate_batch
    from regionstat.batches import PARQUET_SUFFIX, load_id_of
    from regionstat.settings import Settings

    src = Path(manifest_path)
    settings = Settings(data_dir=Path(data_dir))
    target = Path(settings.landing_dir) / src.parent.parent.name / src.parent.name
    target.mkdir(parents=True, exist_ok=True)
    load_id = load_id_of(src)
    for path in (src, src.with_name(load_id + PARQUET_SUFFIX)):
        shutil.copyfile(path, target / path.name)
    t0 = time.perf_counter()
    outcome = validate_batch(target / src.name, settings=settings)
    return {
        "rows": outcome.rows,
        "success": outcome.success,
        "failures": outcome.failures,
        "warnings": outcome.warnings,
        "stages_s": {"validate": round(time.perf_counter() - t0, 3)},
    }


# ------------------------------------------------------------------------------------------------ dbt
def dbt(command: str, data_dir: str) -> dict[str, Any]:
    from regionstat.settings import Settings
    from warehouse.build import invoke_dbt, run_dbt

    settings = Settings.from_env(data_dir=data_dir)
    t0 = time.perf_counter()
    res = run_dbt(settings=settings) if command == "build" else invoke_dbt(command, settings)
    elapsed = time.perf_counter() - t0
    return {
        "command": command,
        "elapsed_s": round(elapsed, 3),
        "success": res.success,
        "passed": res.passed,
        "failed": res.failed,
        "skipped": res.skipped,
    }


# ------------------------------------------------------------------------------------------------ DagBag
def dagbag(dags_dir: str) -> dict[str, Any]:
    dags = Path(dags_dir).resolve()
    if str(dags) not in sys.path:
        sys.path.append(str(dags))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
    t0 = time.perf_counter()
    import airflow  # noqa: F401

    import_s = time.perf_counter() - t0
    from airflow.dag_processing.dagbag import BundleDagBag

    parses = []
    bag = None
    for _ in range(2):  # cold (first import of the DAG files' dependencies), then warm
        t0 = time.perf_counter()
        bag = BundleDagBag(dag_folder=str(dags), bundle_path=dags, bundle_name="dags-folder")
        parses.append(time.perf_counter() - t0)
    assert bag is not None
    stats = [
        {"file": Path(str(s.file)).name, "duration_s": round(_seconds(s.duration), 4), "dags": s.dag_num}
        for s in getattr(bag, "dagbag_stats", []) or []
    ]
    return {
        "import_airflow_s": round(import_s, 3),
        "parse_cold_s": round(parses[0], 3),
        "parse_warm_s": round(parses[1], 3),
        "dags": sorted(bag.dag_ids),
        "tasks": sum(len(d.tasks) for d in bag.dags.values()),
        "import_errors": {str(k): str(v)[:300] for k, v in bag.import_errors.items()},
        "files": stats,
    }


def _seconds(d: Any) -> float:
    return d.total_seconds() if hasattr(d, "total_seconds") else float(d)


def main(argv: list[str]) -> int:
    kind = argv[0]
    if kind == "decode":
        res = decode(argv[1], argv[2], int(argv[3]), "--tracemalloc" in argv, "--no-warmup" not in argv)
    elif kind == "scale":
        res = scale(argv[1], int(argv[2]), argv[3])
    elif kind == "validate":
        res = validate(argv[1], argv[2])
    elif kind == "dbt":
        res = dbt(argv[1], argv[2])
    elif kind == "dagbag":
        res = dagbag(argv[1])
    else:
        raise SystemExit(f"unknown worker {kind}")
    res["process_peak_rss_mb"] = round(_maxrss_mb(), 1)
    print(json.dumps(res, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
