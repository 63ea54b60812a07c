"""``make bench``: regionstat against its peers, results in ``bench/results/<name>.json``.

    python -m bench.run                 # all four benchmarks (< 10 minutes on 2 cores)
    python -m bench.run --quick         # fewer repeats, SCB limits only, no Östergötland baseline
    python -m bench.run --only decode   # one benchmark (repeatable): requests, extract_calls, decode, scaling,
                                        #   inbox, e2e, dbt_dags, airflow

See bench/README.md for what each benchmark measures and how to read the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.allsweden import ensure_snapshot
from bench.common import PYTHON, RESULTS_DIR, ROOT, child_env, last_json_line, run_measured, write_result

BENCHMARKS = ["requests", "extract_calls", "decode", "scaling", "inbox", "e2e", "dbt_dags", "airflow"]
BOM = b"\xef\xbb\xbf"
REGIONSTAT = str(Path(PYTHON).parent / "regionstat")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ====================================================================================== 1. request efficiency
PROFILES = [
    # name, maxDataCells, maxCallsPerTimeWindow, timeWindow (s)
    ("scb", 150_000, 30, 10),
    # the tight profile compresses SCB's window 10x (30 calls / 1 s) to keep the bench short: request counts
    # do not depend on the window, and the limiter is still exercised (hundreds of calls)
    ("tight", 2_000, 30, 1),
]


def _bom_tolerant_pxwebpy():
    """pxwebpy's Client reads every response with requests' ``.json()``, which rejects the UTF-8 BOM that SCB
    (and our snapshot server) put before every JSON body when a Content-Type charset is sent. Its session's
    ``send`` strips it so that pxwebpy can be measured at all; nothing else about pxwebpy is changed."""
    import pxweb._internal.client as pxc

    base = pxc.CachedSession
    if getattr(base, "_regionstat_bom_shim", False):
        return

    class BomStrippingSession(base):  # type: ignore[misc, valid-type]
        _regionstat_bom_shim = True

        def send(self, request, **kwargs):  # pxwebpy prepares requests itself, so session hooks never run
            resp = super().send(request, **kwargs)
            if resp.content[:3] == BOM:
                resp._content = resp.content[3:]
            return resp

    pxc.CachedSession = BomStrippingSession


def _pxwebpy_needs_shim(url: str) -> str | None:
    """Does unpatched pxwebpy fail on the BOM? Returns the error text (None if it works)."""
    import pxweb

    try:
        pxweb.PxApi(url, disable_cache=True)
    except Exception as exc:  # the point is to record whatever it raises
        return f"{type(exc).__name__}: {str(exc)[:160]}"
    return None


def _plan_queries(tables_dir: Path) -> list[dict[str, Any]]:
    """Per catalogue source at all-Sweden scale: the pipeline's selection and the explicit code lists it resolves to
    (planned against an unmeasured server, so planning calls do not count)."""
    from extract.chunking import lower_bound
    from extract.pipeline import _restrict_to_region_set, _with_offline_table
    from extract.pxweb import PxWebClient
    from regionstat.catalogue import load_catalogue
    from regionstat.settings import Settings
    from tools.snapshot.server import SnapshotServer

    catalogue = load_catalogue()
    region_set = catalogue.region_set("sweden")
    settings = Settings(data_dir=Path(tempfile.gettempdir()), region_set="sweden")
    out = []
    with SnapshotServer(tables_dir, max_calls=10_000, time_window=1) as server:
        client = PxWebClient(server.url, state_dir=False)
        for catalogue_source in catalogue.sources:
            # the table the pipeline itself asks the snapshot for (an ``offline_table`` stand-in where one is declared)
            source = _with_offline_table(catalogue_source, client)
            selection = source.resolved_selection(region_set)
            fetch_sel = _restrict_to_region_set(client, source, selection, settings, catalogue)
            explicit = client.resolve(source.table, fetch_sel).as_query()
            sizes = [len(v) for v in explicit.values()]
            out.append(
                {
                    "source": source.name,
                    "table": source.table,
                    "selection": fetch_sel,
                    "explicit": explicit,
                    "cells": math.prod(sizes),
                    "sizes": dict(zip(explicit, sizes, strict=True)),
                    "lower_bound": {p[0]: lower_bound(sizes, p[1]) for p in PROFILES},
                }
            )
    return out


def _server_counts(server) -> dict[str, int]:
    s = server.stats
    return {
        "http": s.requests_total,
        "data": s.data_requests,
        "data_ok": s.data_responses_ok,
        "r429": s.responses_429,
        "r403": s.responses_403,
        "n_cells": len(s.cells_per_request),
    }


def _run_contestant(name: str, profile: tuple, tables_dir: Path, queries: list[dict[str, Any]]) -> dict[str, Any]:
    from extract.pxweb import PxWebClient
    from tools.snapshot.server import SnapshotServer

    pname, max_cells, max_calls, window = profile
    rows = []
    t_start = time.perf_counter()
    with SnapshotServer(tables_dir, max_data_cells=max_cells, max_calls=max_calls, time_window=window) as server:
        if name == "ours":
            client = PxWebClient(server.url, state_dir=False)
        else:
            import pxweb

            _bom_tolerant_pxwebpy()
            api = pxweb.PxApi(server.url, language="sv", disable_cache=True)
        for q in queries:
            before = _server_counts(server)
            t0 = time.perf_counter()
            error = None
            n_rows = value_sum = None
            try:
                if name == "ours":
                    table = client.fetch(q["table"], q["selection"])
                    import pyarrow.compute as pc

                    n_rows, value_sum = table.num_rows, pc.sum(table.column("value")).as_py()
                else:
                    data = api.get_table_data(q["table"], value_codes=q["explicit"], show="code")
                    n_rows = len(data)
                    value_sum = float(sum(r["value"] for r in data if r["value"] is not None))
            except Exception as exc:  # a contestant failing is a result, not a crash of the bench
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            elapsed = time.perf_counter() - t0
            after = _server_counts(server)
            cells_list = server.stats.cells_per_request[before["n_cells"] : after["n_cells"]]
            data_ok = after["data_ok"] - before["data_ok"]
            lb = q["lower_bound"][pname]
            rows.append(
                {
                    "source": q["source"],
                    "table": q["table"],
                    "cells": q["cells"],
                    "lower_bound": lb,
                    "data_requests": data_ok,
                    "ratio": round(data_ok / lb, 4) if lb else None,
                    "data_calls_incl_rejected": after["data"] - before["data"],
                    "http_calls": after["http"] - before["http"],
                    "responses_429": after["r429"] - before["r429"],
                    "responses_403": after["r403"] - before["r403"],
                    "max_cells_in_a_request": max(cells_list) if cells_list else 0,
                    "rows": n_rows,
                    "value_sum": value_sum,
                    "elapsed_s": round(elapsed, 3),
                    "error": error,
                }
            )
        total_http = server.stats.requests_total
    total_req = sum(r["data_requests"] for r in rows)
    total_lb = sum(r["lower_bound"] for r in rows)
    ok = [r for r in rows if not r["error"]]
    return {
        "contestant": name,
        "profile": pname,
        "tables": rows,
        "total_data_requests": total_req,
        "total_lower_bound": total_lb,
        "total_ratio": round(total_req / total_lb, 4) if total_lb else None,
        "max_table_ratio": max((r["ratio"] for r in ok if r["ratio"] is not None), default=None),
        "responses_429": sum(r["responses_429"] for r in rows),
        "responses_403": sum(r["responses_403"] for r in rows),
        "over_limit_requests": sum(1 for r in rows if r["max_cells_in_a_request"] > max_cells),
        "http_calls": total_http,
        "errors": [f"{r['table']}: {r['error']}" for r in rows if r["error"]],
        "elapsed_s": round(time.perf_counter() - t_start, 2),
    }


def bench_requests(tables_dir: Path, quick: bool) -> dict[str, Any]:
    from tools.snapshot.server import SnapshotServer

    queries = _plan_queries(tables_dir)
    with SnapshotServer(tables_dir) as server:
        shim_reason = _pxwebpy_needs_shim(server.url)
    profiles = PROFILES[:1] if quick else PROFILES
    runs = []
    for profile in profiles:
        for name in ("ours", "pxwebpy"):
            log(f"requests: {name} at {profile[0]} limits ({profile[1]:,} cells, {profile[2]} calls / {profile[3]} s)")
            res = _run_contestant(name, profile, tables_dir, queries)
            runs.append(res)
            log(
                f"  {res['total_data_requests']} data requests vs lower bound {res['total_lower_bound']} "
                f"(429: {res['responses_429']}, errors: {len(res['errors'])}, {res['elapsed_s']} s)"
            )
    summary: dict[str, Any] = {}
    goals: dict[str, Any] = {}
    for profile in profiles:
        pname = profile[0]
        ours = next(r for r in runs if r["profile"] == pname and r["contestant"] == "ours")
        peer = next(r for r in runs if r["profile"] == pname and r["contestant"] == "pxwebpy")
        same = all(
            a["rows"] == b["rows"] and _close(a["value_sum"], b["value_sum"])
            for a, b in zip(ours["tables"], peer["tables"], strict=True)
            if not a["error"] and not b["error"]
        )
        summary[pname] = {
            "ours_requests_over_lower_bound": ours["total_ratio"],
            "ours_max_table_ratio": ours["max_table_ratio"],
            "pxwebpy_requests_over_lower_bound": peer["total_ratio"],
            "pxwebpy_max_table_ratio": peer["max_table_ratio"],
            "pxwebpy_requests_over_ours": round(peer["total_data_requests"] / ours["total_data_requests"], 4)
            if ours["total_data_requests"]
            else None,
            "ours_429": ours["responses_429"],
            "pxwebpy_429": peer["responses_429"],
            "ours_403_or_over_limit": ours["responses_403"] + ours["over_limit_requests"],
            "pxwebpy_403_or_over_limit": peer["responses_403"] + peer["over_limit_requests"],
            "ours_seconds": ours["elapsed_s"],
            "pxwebpy_seconds": peer["elapsed_s"],
            "pxwebpy_errors": peer["errors"],
            "same_rows_and_value_sums": same,
        }
        goals[f"{pname}: every table ratio <= 1.05"] = {
            "value": ours["max_table_ratio"],
            "target": 1.05,
            "pass": ours["max_table_ratio"] is not None and ours["max_table_ratio"] <= 1.05 and not ours["errors"],
        }
        goals[f"{pname}: never over maxDataCells"] = {
            "value": ours["responses_403"] + ours["over_limit_requests"],
            "target": 0,
            "pass": ours["responses_403"] + ours["over_limit_requests"] == 0,
        }
        goals[f"{pname}: no 429 of our own making"] = {
            "value": ours["responses_429"],
            "target": 0,
            "pass": ours["responses_429"] == 0,
        }
    return {
        "config": {
            "region_set": "sweden",
            "snapshot": str(tables_dir),
            "profiles": [
                dict(zip(["name", "max_data_cells", "max_calls", "time_window_s"], p, strict=True)) for p in profiles
            ],
            "pxwebpy": "PxApi(url, language='sv', disable_cache=True), default max_workers (thread pool), "
            "get_table_data(table, explicit value codes, show='code'); BOM-stripping session.send",
            "pxwebpy_without_bom_shim": shim_reason,
        },
        "queries": [{k: q[k] for k in ("source", "table", "cells", "sizes", "lower_bound")} for q in queries],
        "runs": runs,
        "summary": summary,
        "goals": goals,
    }


EXTRACT_GOAL_CALLS = 30  # SCB: 30 calls per 10 s window


def _bench_inbox(quick: bool) -> dict[str, Any]:
    """bench/inbox.py (peak RSS of the inbox intake of a generated SYNTHETIC commuting CSV) inside make bench."""
    from bench.inbox import GOAL_MB, bench_inbox

    res = bench_inbox(20 if quick else 200)
    res["summary"] = {k: res[k] for k in ("csv_bytes", "csv_rows", "outcome", "peak_rss_mb", "wall_s")}
    res["goals"] = {
        f"inbox {res['csv_bytes'] / 1e6:.0f} MB CSV peak RSS < {GOAL_MB} MB": {
            "value": res["peak_rss_mb"],
            "target": GOAL_MB,
            "pass": res["peak_rss_mb"] is not None and res["peak_rss_mb"] < GOAL_MB and res["outcome"] == "landed",
        }
    }
    return res


def bench_extract_calls(tables_dir: Path, work: Path) -> dict[str, Any]:
    """The pipeline's own extract (``extract_source`` for every catalogue source, REGIONSTAT_REGION_SET=sweden) over
    the all-Sweden snapshot at SCB's limits: every HTTP call counted on the server, the client's limiter sleep.
    The lower bound needs /config (maxDataCells), one metadata call per table (selection, ``updated``) and
    ceil(cells / maxDataCells) data calls; anything more is overhead."""
    from extract.pipeline import extract_source, make_client
    from regionstat.catalogue import load_catalogue
    from regionstat.settings import Settings
    from tools.snapshot.server import SnapshotServer

    catalogue = load_catalogue()
    data_dir = work / "extract_calls"
    shutil.rmtree(data_dir, ignore_errors=True)
    with SnapshotServer(tables_dir, max_data_cells=150_000, max_calls=30, time_window=10) as server:
        settings = Settings(data_dir=data_dir, api_url=server.url, region_set="sweden")
        client = make_client(server.url, settings, catalogue)
        t0 = time.perf_counter()
        results = [
            extract_source(s.name, settings=settings, client=client, catalogue=catalogue) for s in catalogue.sources
        ]
        elapsed = time.perf_counter() - t0
        stats = server.stats
        calls = {
            "http_calls": stats.requests_total,
            "config": stats.config_requests,
            "table_info": stats.table_requests,
            "metadata": stats.metadata_requests,
            "data": stats.data_requests,
            "responses_429": stats.responses_429,
        }
    waited = round(client._counters.waited, 2)
    data_lb = sum(r.lower_bound for r in results)
    needed = 1 + len(results) + data_lb
    shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "config": {"tables": len(results), "limits": "150,000 cells, 30 calls / 10 s (SCB's)"},
        "tables": [r.as_dict() for r in results],
        "calls": calls,
        "lower_bound_calls": needed,
        "data_lower_bound": data_lb,
        "limiter_wait_s": waited,
        "elapsed_s": round(elapsed, 2),
        "goals": {
            "all-Sweden extract <= 30 calls": {
                "value": calls["http_calls"],
                "target": EXTRACT_GOAL_CALLS,
                "pass": calls["http_calls"] <= EXTRACT_GOAL_CALLS,
            },
            "no call beyond config + metadata + data lower bound": {
                "value": calls["http_calls"],
                "target": needed,
                "pass": calls["http_calls"] <= needed,
            },
            "no limiter sleep (all calls fit one window)": {
                "value": waited,
                "target": 0,
                "pass": waited == 0 or needed > EXTRACT_GOAL_CALLS,
            },
        },
    }


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


# ====================================================================================== 2. JSON-stat2 decode
#: SCB-shaped decode payloads: dimensions, codes and (long, Swedish) labels from the bundled real metadata;
#: only the number of periods is chosen to reach the size. Values and statuses are SYNTHETIC (seeded).
DECODE_SHAPES: dict[str, dict[str, Any]] = {
    # TAB1830-like origin-destination matrix, integer counts, ~2 % suppressed ("..") -- the goal's payload
    "od_tab1830": {
        "table": "TAB1830",
        "take": {"Bostadskommun": None, "Arbetsstallekommun": None, "Kon": None, "ContentsCode": None},
        "periods": 6,
        "missing": 0.02,
        "decimals": None,
    },
    # TAB638-like population by region x marital status x age x sex, integer, ~1 % missing
    "population_tab638": {
        "table": "TAB638",
        "take": {"Region": None, "Civilstand": None, "Alder": None, "Kon": None, "ContentsCode": 1},
        "periods": 4,
        "missing": 0.01,
        "decimals": None,
    },
    # TAB3204-like employment by region x SNI x sex x measure, one decimal (as a rate would be), ~5 % missing
    "employment_tab3204": {
        "table": "TAB3204",
        "take": {"Region": None, "SNI2007": None, "Kon": None, "ContentsCode": None},
        "periods": 6,
        "missing": 0.05,
        "decimals": 1,
    },
}


def make_payload(
    path: Path, shape: str = "od_tab1830", periods: int | None = None, last_year: int = 2024, seed: int = 7
) -> dict[str, Any]:
    """A JSON-stat 2.0 response shaped like SCB's: BOM first, real codes and long labels for every dimension,
    a ``status`` object for suppressed (``..``) and preliminary (``p``) cells, ``extension.px``. SYNTHETIC values."""
    from bench.allsweden import _meta

    spec = DECODE_SHAPES[shape]
    meta = _meta(spec["table"])
    dims: dict[str, dict[str, Any]] = {}
    for dim, take in spec["take"].items():
        src = meta["dimension"][dim]
        index = src["category"]["index"]
        codes = sorted(index, key=index.get)[: take or None]
        labels = src["category"].get("label") or {}
        dims[dim] = {
            "label": src.get("label", dim),
            "category": {"index": {c: i for i, c in enumerate(codes)}, "label": {c: labels.get(c, c) for c in codes}},
        }
    n_periods = periods or spec["periods"]
    years = [str(last_year - n_periods + 1 + i) for i in range(n_periods)]
    dims["Tid"] = {
        "label": "år",
        "category": {"index": {y: i for i, y in enumerate(years)}, "label": {y: y for y in years}},
    }
    sizes = [len(d["category"]["index"]) for d in dims.values()]
    n = math.prod(sizes)
    rng = np.random.default_rng(seed)
    raw = rng.geometric(0.02, n).astype(np.float64)
    if spec["decimals"]:
        raw = np.round(raw / 7.0, spec["decimals"])
    missing = rng.random(n) < spec["missing"]
    preliminary = ~missing & (rng.random(n) < 0.005)
    values = raw.astype(object) if spec["decimals"] else raw.astype(np.int64).astype(object)
    values[missing] = None
    status = dict.fromkeys(np.flatnonzero(missing).astype(str).tolist(), "..")
    status.update(dict.fromkeys(np.flatnonzero(preliminary).astype(str).tolist(), "p"))
    doc = {
        "version": "2.0",
        "class": "dataset",
        "label": f"SYNTHETIC: bench payload shaped like {spec['table']} ({meta.get('label', '')})",
        "source": "regionstat bench (synthetic, not SCB)",
        "updated": "2025-06-01T06:00:00Z",
        "note": ["SYNTHETIC: values generated by regionstat bench/run.py (seeded); not SCB data"],
        "role": {"time": ["Tid"], "metric": ["ContentsCode"]},
        "id": list(dims),
        "size": sizes,
        "dimension": dims,
        "extension": {"px": (meta.get("extension") or {}).get("px") or {}},
        "value": values.tolist(),
        "status": dict(sorted(status.items(), key=lambda kv: int(kv[0]))),
    }
    data = BOM + orjson.dumps(doc)
    path.write_bytes(data)
    return {
        "shape": shape,
        "cells": n,
        "bytes": len(data),
        "missing": int(missing.sum()),
        "status_entries": len(status),
        "dimensions": dict(zip(dims, sizes, strict=True)),
    }


DECODE_GOAL_RATIO = 2.5  # ours / orjson.loads, 1 M SCB-shaped cells
DECODE_GOAL_EXTRA_MB = 60  # ours' peak RSS growth over orjson's own


#: peers too slow on SCB-shaped payloads (pyjstat: ~1.5 min per 1 M cells on a loaded 2-core machine) for a warm-up,
#: repeats and a tracemalloc run inside make bench's time: one cold timed decode, no tracemalloc
SLOW_PEERS = {"pyjstat"}


def _decode_contestant(name: str, payload: Path, repeats: int) -> dict[str, Any]:
    slow = name in SLOW_PEERS
    cmd = [PYTHON, "-m", "bench.workers", "decode", name, str(payload), "1" if slow else str(repeats)]
    timed = run_measured([*cmd, "--no-warmup"] if slow else cmd, env=child_env())
    if timed["returncode"] != 0:
        return {"error": timed["output"][-800:]}
    r = last_json_line(timed["output"])
    r["process_peak_rss_mb"] = timed["peak_rss_mb"]
    if slow:
        r["note"] = "one cold decode (no warm-up, no tracemalloc run): too slow for more within make bench"
        return r
    traced = run_measured(
        [PYTHON, "-m", "bench.workers", "decode", name, str(payload), "1", "--tracemalloc"], env=child_env()
    )
    if traced["returncode"] == 0:
        r["tracemalloc_peak_mb"] = last_json_line(traced["output"]).get("tracemalloc_peak_mb")
    return r


def bench_decode(work: Path, quick: bool) -> dict[str, Any]:
    """Every shape: orjson (the floor) and ours; the goal shape (TAB1830-like, 1 M cells) also pyjstat and pxwebpy."""
    repeats = 1 if quick else 7  # min of 7: the machine is often shared, and a decode takes ~0.1 s
    shapes: dict[str, Any] = {}
    for shape in DECODE_SHAPES:
        payload = work / f"payload_{shape}.json"
        info = make_payload(payload, shape)
        contestants = ["orjson", "ours", "pyjstat", "pxwebpy"] if shape == "od_tab1830" else ["orjson", "ours"]
        res: dict[str, Any] = {}
        for name in contestants:
            log(f"decode {shape} ({info['cells']:,} cells): {name} ({repeats} timed + a tracemalloc run)")
            res[name] = _decode_contestant(name, payload, repeats)
            if "min_s" in res[name]:
                log(f"  {name}: min {res[name]['min_s']} s, peak RSS +{res[name]['peak_rss_delta_mb']} MB")
        shapes[shape] = {"payload": info, "contestants": res, "summary": _decode_summary(res)}
    goal = shapes["od_tab1830"]["summary"]
    ratio, extra = goal["ours_time_over_orjson_loads"], goal["ours_peak_rss_over_orjson_mb"]
    return {
        "config": {
            "payload": shapes["od_tab1830"]["payload"],
            "shapes": {k: v["payload"] for k, v in shapes.items()},
            "repeats": repeats,
            "timing": "min over repeats, each contestant in its own fresh process; peak memory = growth of the "
            "process's kernel high-water RSS (VmHWM reset through clear_refs) during the first timed decode, and "
            "tracemalloc's peak in a separate run",
        },
        "contestants": shapes["od_tab1830"]["contestants"],
        "shapes": shapes,
        "summary": {
            **goal,
            "per_shape_ours_over_orjson": {k: v["summary"]["ours_time_over_orjson_loads"] for k, v in shapes.items()},
        },
        "goals": {
            "decode 1 M SCB-shaped cells <= 2.5x orjson.loads": {
                "value": ratio,
                "target": DECODE_GOAL_RATIO,
                "pass": ratio is not None and ratio <= DECODE_GOAL_RATIO,
            },
            "decode peak RSS <= 60 MB over orjson's": {
                "value": extra,
                "target": DECODE_GOAL_EXTRA_MB,
                "pass": extra is not None and extra <= DECODE_GOAL_EXTRA_MB,
            },
        },
    }


def _decode_summary(res: dict[str, Any]) -> dict[str, Any]:
    ours = res.get("ours", {})

    def ratio(a: str, b: str, key: str) -> float | None:
        x, y = res.get(a, {}).get(key), res.get(b, {}).get(key)
        return round(x / y, 2) if x and y else None

    orjson_peak = res.get("orjson", {}).get("peak_rss_delta_mb")
    ours_peak = ours.get("peak_rss_delta_mb")
    return {
        "ours_time_over_orjson_loads": ratio("ours", "orjson", "min_s"),
        "ours_cpu_over_orjson_loads_cpu": ratio("ours", "orjson", "cpu_min_s"),  # steadier on a loaded machine
        "ours_peak_rss_over_orjson_mb": round(ours_peak - orjson_peak, 1)
        if ours_peak is not None and orjson_peak is not None
        else None,
        "pyjstat_time_over_ours": ratio("pyjstat", "ours", "min_s"),
        "pxwebpy_time_over_ours": ratio("pxwebpy", "ours", "min_s"),
        "pyjstat_peak_rss_over_ours": ratio("pyjstat", "ours", "peak_rss_delta_mb"),
        "pxwebpy_peak_rss_over_ours": ratio("pxwebpy", "ours", "peak_rss_delta_mb"),
        "pyjstat_tracemalloc_over_ours": ratio("pyjstat", "ours", "tracemalloc_peak_mb"),
        "pxwebpy_tracemalloc_over_ours": ratio("pxwebpy", "ours", "tracemalloc_peak_mb"),
        "ours_min_s": ours.get("min_s"),
        "orjson_min_s": res.get("orjson", {}).get("min_s"),
        "ours_peak_rss_delta_mb": ours_peak,
        "orjson_peak_rss_delta_mb": orjson_peak,
        "same_rows_and_value_sums": all(
            res[n].get("rows") == ours.get("rows") and _close(res[n].get("value_sum"), ours.get("value_sum"))
            for n in ("pyjstat", "pxwebpy")
            if "rows" in res.get(n, {})
        ),
    }


# ====================================================================================== 2b. scaling series
SCALE_PERIODS = (6, 15, 30, 60)  # x 168,200 cells (290 x 290 x 2 sexes x 1 measure per period): 1.0 .. 10.1 M rows
SCALE_PERIODS_QUICK = (1, 2, 3, 4)


def make_scale_payloads(directory: Path, periods: int) -> int:
    """SCB-shaped TAB1830-like responses, one period each (168,200 cells; synthetic years counting back from
    2024), as the client receives them for a ``periods``-year selection. SYNTHETIC values; returns the cells."""
    directory.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(periods):
        path = directory / f"chunk_{i:03d}.json"
        info = make_payload(path, "od_tab1830", periods=1, last_year=2024 - i, seed=i)
        total += info["cells"]
    return total


def _linear_fit(xs: list[float], ys: list[float]) -> dict[str, float] | None:
    """Least-squares ``y = fixed + per_million * rows/1e6``."""
    if len(xs) < 2:
        return None
    slope, intercept = np.polyfit(np.asarray(xs) / 1e6, np.asarray(ys), 1)
    return {"fixed": round(float(intercept), 3), "per_million_rows": round(float(slope), 3)}


def bench_scaling(work: Path, quick: bool) -> dict[str, Any]:
    """Rows loaded vs wall time, CPU time and peak RSS: decode SCB-shaped responses -> landing batch (pandera check,
    Parquet, manifest) -> DuckDB ``raw`` table, each size in a fresh process, then a linear fit."""
    periods_list = SCALE_PERIODS_QUICK if quick else SCALE_PERIODS
    chunk_dir = work / "scale_chunks"
    make_scale_payloads(chunk_dir, max(periods_list))
    points = []
    for periods in periods_list:
        data_dir = work / f"scale_{periods}"
        shutil.rmtree(data_dir, ignore_errors=True)
        log(f"scaling: {periods} period(s) x 168,200 cells")
        r = run_measured(
            [PYTHON, "-m", "bench.workers", "scale", str(chunk_dir), str(periods), str(data_dir)], env=child_env()
        )
        if r["returncode"] != 0:
            points.append({"periods": periods, "error": r["output"][-800:]})
            continue
        w = last_json_line(r["output"])
        points.append(
            {
                "rows": w["rows"],
                "wall_s": r["wall_s"],
                "cpu_s": r["cpu_s"],
                "peak_rss_mb": r["peak_rss_mb"],
                "stages_s": w["stages_s"],
                "raw_rows_in_duckdb": w["raw_rows"],
            }
        )
        log(f"  {w['rows']:,} rows: {r['wall_s']} s wall, {r['cpu_s']} s CPU, peak RSS {r['peak_rss_mb']} MB")
        points[-1]["validate"] = _validate_landed(data_dir, work / f"validate_{periods}")
        shutil.rmtree(data_dir, ignore_errors=True)
    ok = [p for p in points if "rows" in p]
    xs = [p["rows"] for p in ok]
    fits = {k: _linear_fit(xs, [p[k] for p in ok]) for k in ("wall_s", "cpu_s", "peak_rss_mb")}
    val = [p for p in ok if "peak_rss_mb" in p.get("validate", {})]
    val_fits = {
        k: _linear_fit([p["rows"] for p in val], [p["validate"][k] for p in val])
        for k in ("wall_s", "cpu_s", "peak_rss_mb")
    }
    val_per_m = (val_fits["peak_rss_mb"] or {}).get("per_million_rows")
    val_largest = max(val, key=lambda p: p["rows"]) if val else {}
    largest = max(ok, key=lambda p: p["rows"]) if ok else {}
    rss_fit = fits["peak_rss_mb"] or {}
    per_m = rss_fit.get("per_million_rows")
    return {
        "config": {
            "what": "python -m bench.workers scale: parse_cube + Arrow table of every response (as the client), "
            "landing write_batch (pandera check, zstd Parquet, manifest), DuckDB CREATE TABLE raw AS "
            "read_parquet; one fresh process per size (peak RSS of that process alone, CPU = user + system)",
            "shape": "TAB1830-like (290 x 290 municipalities x 2 sexes x 1 measure per period), SYNTHETIC values",
            "periods": list(periods_list),
            "validate": "python -m bench.workers validate: validate_batch (GX suite + cross-batch checks) of the "
            "landed batch (a copy), in its own fresh process after the load; the synthetic batch carries status "
            "'p' (not a PxWeb symbol), so it is quarantined: the run is complete, only the outcome is 'fail'",
        },
        "points": points,
        "fit": fits,
        "fit_validate": val_fits,
        "summary": {
            "rows": [p["rows"] for p in ok],
            "wall_s": [p["wall_s"] for p in ok],
            "cpu_s": [p["cpu_s"] for p in ok],
            "peak_rss_mb": [p["peak_rss_mb"] for p in ok],
            **{f"fit_{k}": v for k, v in fits.items()},
            "validate_peak_rss_mb": [p["validate"]["peak_rss_mb"] for p in val],
            "validate_wall_s": [p["validate"]["wall_s"] for p in val],
            "fit_validate_peak_rss_mb": val_fits["peak_rss_mb"],
        },
        "goals": {  # for later (issue 16): measured and reported now
            "later: peak RSS per extra million rows <= 60 MB": {
                "value": per_m,
                "target": 60,
                "pass": per_m is not None and per_m <= 60,
            },
            "later: 10 M rows under 1.5 GB": {
                "value": largest.get("peak_rss_mb"),
                "target": 1536,
                "pass": bool(largest) and largest["rows"] >= 10_000_000 and largest["peak_rss_mb"] < 1536,
            },
            "validation: peak RSS per extra million rows <= 60 MB": {
                "value": val_per_m,
                "target": 60,
                "pass": val_per_m is not None and val_per_m <= 60,
            },
            "validation: 10 M rows under 1.5 GB": {
                "value": val_largest.get("validate", {}).get("peak_rss_mb"),
                "target": 1536,
                "pass": bool(val_largest)
                and val_largest["rows"] >= 10_000_000
                and val_largest["validate"]["peak_rss_mb"] < 1536,
            },
        },
    }


def _validate_landed(data_dir: Path, validate_dir: Path) -> dict[str, Any]:
    """Peak RSS, wall and CPU time of validating the batch the scale worker landed in ``data_dir``."""
    manifest = next((data_dir / "landing").glob("*/*/*.manifest.json"))
    shutil.rmtree(validate_dir, ignore_errors=True)
    r = run_measured([PYTHON, "-m", "bench.workers", "validate", str(manifest), str(validate_dir)], env=child_env())
    shutil.rmtree(validate_dir, ignore_errors=True)
    if r["returncode"] != 0:
        return {"error": r["output"][-800:]}
    w = last_json_line(r["output"])
    log(f"  validation: {r['wall_s']} s wall, {r['cpu_s']} s CPU, peak RSS {r['peak_rss_mb']} MB")
    return {
        "wall_s": r["wall_s"],
        "cpu_s": r["cpu_s"],
        "peak_rss_mb": r["peak_rss_mb"],
        "validate_s": w["stages_s"]["validate"],
        "success": w["success"],
        "first_failure": (w["failures"] or [None])[0],
    }


# ====================================================================================== 3. end to end
def _timings(output: str) -> dict[str, float]:
    """Seconds per stage from the run's last line, ``took extract 0.7 s, validate 5.2 s, build 2 min 5 s``
    (stages skipped as unchanged are absent)."""
    for line in reversed(output.splitlines()):
        if line.startswith("took "):
            out = {}
            for name, minutes, sec in re.findall(r"(\w+) (?:(\d+) min )?([\d.]+) s", line[5:]):
                out[name] = round(int(minutes or 0) * 60 + float(sec), 2)
            return out
    return {}


def _first_error(output: str) -> str | None:
    for line in output.splitlines():
        if line.strip().startswith("error:"):
            return line.strip()[:300]
    return None


def _marts_index(data_dir: Path) -> dict[str, str]:
    p = data_dir / "marts" / "_index.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _run_record(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "returncode": r["returncode"],
        "wall_s": r["wall_s"],
        "stages_s": _timings(r["output"]),
        "peak_rss_mb": r["peak_rss_mb"],
        "peak_rss_tree_sampled_mb": r["peak_rss_tree_sampled_mb"],
        "error": _first_error(r["output"]) if r["returncode"] else None,
    }


def bench_e2e(tables_dir: Path, work: Path, quick: bool) -> tuple[dict[str, Any], Path]:
    from tools.snapshot.server import SnapshotServer

    data = work / "e2e-sweden"
    shutil.rmtree(data, ignore_errors=True)
    with SnapshotServer(tables_dir) as server:  # SCB's limits: 150,000 cells, 30 calls / 10 s
        env = child_env(REGIONSTAT_DATA_DIR=str(data), REGIONSTAT_API_URL=server.url, REGIONSTAT_REGION_SET="sweden")
        log("e2e: regionstat run, all-Sweden synthetic snapshot, fresh data dir")
        full = run_measured([REGIONSTAT, "run"], env=env)
        full_data = server.stats.data_requests
        full_429 = server.stats.responses_429
        marts_full = _marts_index(data)
        log(f"  full run: {full['wall_s']} s, rc {full['returncode']}, peak RSS {full['peak_rss_mb']} MB")
        log("e2e: incremental run, nothing changed")
        incr = run_measured([REGIONSTAT, "run"], env=env)
        incr_data = server.stats.data_requests - full_data
        incr_429 = server.stats.responses_429 - full_429
        marts_incr = _marts_index(data)
        log(f"  incremental run: {incr['wall_s']} s, rc {incr['returncode']}, {incr_data} data requests")
    baseline = None
    if not quick:
        base_dir = work / "e2e-ostergotland"
        shutil.rmtree(base_dir, ignore_errors=True)
        log("e2e: peer: regionstat run on the bundled Östergötland snapshot (the default)")
        b = run_measured([REGIONSTAT, "run"], env=child_env(REGIONSTAT_DATA_DIR=str(base_dir)))
        baseline = _run_record(b)
        shutil.rmtree(base_dir, ignore_errors=True)
    full_rec = {**_run_record(full), "data_requests": full_data, "responses_429": full_429, "marts": len(marts_full)}
    incr_rec = {**_run_record(incr), "data_requests": incr_data, "responses_429": incr_429}
    peak = max(full["peak_rss_mb"], incr["peak_rss_mb"], full["peak_rss_tree_sampled_mb"])
    goals = {
        "full run < 180 s": {
            "value": full["wall_s"],
            "target": 180,
            "pass": full["returncode"] == 0 and full["wall_s"] < 180,
        },
        "incremental run < 5 s (idle 2-core machine)": {
            "value": incr["wall_s"],
            "target": 5,
            "pass": incr["returncode"] == 0 and incr["wall_s"] < 5,
        },
        "incremental <= 0.10x full": {
            "value": round(incr["wall_s"] / full["wall_s"], 3),
            "target": 0.10,
            "pass": incr["returncode"] == 0 and incr["wall_s"] <= 0.10 * full["wall_s"],
        },
        "incremental skips dbt, publish and report": {
            "value": sorted(set(incr_rec["stages_s"]) & {"build", "publish", "report"}),
            "target": [],
            "pass": not set(incr_rec["stages_s"]) & {"build", "publish", "report"},
        },
        "incremental data requests == 0": {"value": incr_data, "target": 0, "pass": incr_data == 0},
        "peak RSS < 1.5 GB": {"value": peak, "target": 1536, "pass": peak < 1536},
    }
    summary = {
        "full_wall_s": full["wall_s"],
        "incremental_wall_s": incr["wall_s"],
        "peak_rss_mb": peak,
        "full_over_goal": round(full["wall_s"] / 180, 3),
        "incremental_over_goal": round(incr["wall_s"] / 5, 3),
        "peak_rss_over_goal": round(peak / 1536, 3),
        "incremental_over_full": round(incr["wall_s"] / full["wall_s"], 3),
        "sweden_over_ostergotland": round(full["wall_s"] / baseline["wall_s"], 2) if baseline else None,
        "incremental_data_requests": incr_data,
        "marts_identical_after_incremental": bool(marts_full) and marts_full == marts_incr,
    }
    return (
        {
            "config": {
                "snapshot": str(tables_dir),
                "region_set": "sweden",
                "command": "regionstat run",
                "server_limits": "150,000 cells, 30 calls / 10 s (SCB's)",
                "synthetic": True,
            },
            "full": full_rec,
            "incremental": incr_rec,
            "peer_ostergotland_full": baseline,
            "summary": summary,
            "goals": goals,
        },
        data,
    )


# ====================================================================================== 4. dbt and DagBag
def bench_dbt_dags(tables_dir: Path, work: Path, data: Path | None, quick: bool) -> dict[str, Any]:
    from tools.snapshot.server import SnapshotServer

    if data is None or not (data / "warehouse.duckdb").exists():
        data = work / "dbt-sweden"
        shutil.rmtree(data, ignore_errors=True)
        log("dbt_dags: setting up an all-Sweden warehouse (regionstat run --no-docs, not measured)")
        with SnapshotServer(tables_dir) as server:
            env = child_env(
                REGIONSTAT_DATA_DIR=str(data), REGIONSTAT_API_URL=server.url, REGIONSTAT_REGION_SET="sweden"
            )
            setup = run_measured([REGIONSTAT, "run", "--no-docs"], env=env)
            if setup["returncode"]:
                raise RuntimeError(f"setup run failed: {_first_error(setup['output'])}")
    env = child_env(REGIONSTAT_DATA_DIR=str(data), REGIONSTAT_REGION_SET="sweden")
    out: dict[str, Any] = {}
    for command in ("parse", "build"):
        log(f"dbt_dags: dbt {command} on the all-Sweden warehouse")
        r = run_measured([PYTHON, "-m", "bench.workers", "dbt", command, str(data)], env=env)
        rec = last_json_line(r["output"]) if r["returncode"] == 0 else {"error": r["output"][-800:]}
        rec.update(wall_s=r["wall_s"], peak_rss_mb=r["peak_rss_mb"])
        out[f"dbt_{command}"] = rec
        log(f"  dbt {command}: {rec.get('elapsed_s')} s in-process, {r['wall_s']} s wall")
    airflow_home = work / "airflow-home"
    airflow_home.mkdir(parents=True, exist_ok=True)
    log("dbt_dags: DagBag of dags/ (fresh process, throwaway AIRFLOW_HOME)")
    r = run_measured(
        [PYTHON, "-m", "bench.workers", "dagbag", str(ROOT / "dags")],
        env=child_env(AIRFLOW_HOME=str(airflow_home), AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags")),
    )
    bag = last_json_line(r["output"]) if r["returncode"] == 0 else {"error": r["output"][-800:]}
    bag.update(wall_s=r["wall_s"], peak_rss_mb=r["peak_rss_mb"])
    out["dagbag"] = bag
    log(f"  DagBag: cold {bag.get('parse_cold_s')} s, warm {bag.get('parse_warm_s')} s")
    build, parse = out["dbt_build"], out["dbt_parse"]
    summary = {
        "dbt_build_s": build.get("elapsed_s"),
        "dbt_build_nodes_ok": build.get("passed"),
        "dbt_build_over_dbt_parse": round(build["elapsed_s"] / parse["elapsed_s"], 2)
        if build.get("elapsed_s") and parse.get("elapsed_s")
        else None,
        "dagbag_parse_cold_s": bag.get("parse_cold_s"),
        "dagbag_parse_warm_s": bag.get("parse_warm_s"),
        "dagbag_cold_over_import_airflow": round(bag["parse_cold_s"] / bag["import_airflow_s"], 2)
        if bag.get("parse_cold_s") and bag.get("import_airflow_s")
        else None,
        "dagbag_import_errors": len(bag.get("import_errors") or {}),
    }
    goals = {
        "dbt build succeeds": {"value": build.get("success"), "target": True, "pass": bool(build.get("success"))},
        "DagBag has no import errors": {
            "value": summary["dagbag_import_errors"],
            "target": 0,
            "pass": "error" not in bag and summary["dagbag_import_errors"] == 0,
        },
    }
    return {
        "config": {"warehouse": "all-Sweden synthetic (from the e2e run when run together)"},
        **out,
        "summary": summary,
        "goals": goals,
    }


# ====================================================================================== 5. Airflow vs regionstat run
AIRFLOW_GOAL = 1.5  # issue 16: `airflow dags test` of ingest + transform <= 1.5x `regionstat run`
AIRFLOW_DAGS = ("regionstat_ingest", "regionstat_transform")


def _marts_bytes(data_dir: Path) -> dict[str, bytes]:
    """Every published mart's Parquet file (and ``_index.json``), name -> bytes."""
    marts = data_dir / "marts"
    return {p.name: p.read_bytes() for p in sorted(marts.glob("*.parquet"))} if marts.is_dir() else {}


def _task_durations(env: dict[str, str], dag_id: str, run_id: str | None) -> list[dict[str, Any]]:
    """Each task instance of the run with its state and seconds (Airflow's own ``duration``), slowest first."""
    from regionstat.cli.airflow_local import metadata_query

    if run_id is None:
        return []
    rows = metadata_query(
        env,
        "select task_id, map_index, state, duration from task_instance where dag_id = ? and run_id = ?",
        (dag_id, run_id),
    )
    tasks = [
        {
            "task": task_id + (f"[{map_index}]" if map_index is not None and map_index >= 0 else ""),
            "state": state,
            "seconds": round(float(duration), 2) if duration is not None else None,
        }
        for task_id, map_index, state, duration in rows
    ]
    return sorted(tasks, key=lambda t: -(t["seconds"] or 0))


def bench_airflow(work: Path) -> dict[str, Any]:
    """``airflow dags test`` of the ingest DAG then the transform DAG vs ``regionstat run`` on the same data: the
    bundled offline Östergötland snapshot, each in a fresh data dir (Airflow in a throwaway AIRFLOW_HOME), every
    command a fresh measured process. Both must publish byte-identical marts."""
    from regionstat.cli.airflow_local import airflow_env, airflow_exe, latest_run, setup

    run_dirs = [work / "airflow-ratio-run-before", work / "airflow-ratio-run-after"]
    af_dir, home = work / "airflow-ratio-dags", work / "airflow-ratio-home"
    for stale in (*run_dirs, af_dir, home):
        shutil.rmtree(stale, ignore_errors=True)

    def regionstat_run(data_dir: Path, when: str) -> dict[str, Any]:
        """The same work as the two DAGs: marts, report, GX Data Docs and dbt docs (the transform's build_docs).
        ``regionstat run`` writes no dbt docs, so the peer is ``regionstat run --no-docs`` then ``regionstat docs``
        (dbt docs + GX Data Docs); wall and CPU are the two commands' sums."""
        log(f"airflow: regionstat run --no-docs + regionstat docs ({when} the DAGs), offline snapshot, fresh dir")
        env = child_env(REGIONSTAT_DATA_DIR=str(data_dir))
        r = run_measured([REGIONSTAT, "run", "--no-docs"], env=env)
        d = run_measured([REGIONSTAT, "docs"], env=env) if not r["returncode"] else r
        for cmd, x in (("regionstat run --no-docs", r), ("regionstat docs", d)):
            if x["returncode"]:
                why = _first_error(x["output"]) or x["output"][-400:]
                raise RuntimeError(f"{cmd} exited {x['returncode']}: {why}")
        wall, cpu = round(r["wall_s"] + d["wall_s"], 3), round((r["cpu_s"] or 0) + (d["cpu_s"] or 0), 3)
        log(f"  regionstat run --no-docs: {r['wall_s']} s wall, {r['cpu_s']} s CPU, peak RSS {r['peak_rss_mb']} MB")
        log(f"  regionstat docs: {d['wall_s']} s wall, {d['cpu_s']} s CPU; together {wall} s wall, {cpu} s CPU")
        return {
            **_run_record(r),
            "wall_s": wall,
            "cpu_s": cpu,
            "peak_rss_mb": max(r["peak_rss_mb"] or 0, d["peak_rss_mb"] or 0),
            "run_no_docs": {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"]},
            "docs": {"wall_s": d["wall_s"], "cpu_s": d["cpu_s"], "peak_rss_mb": d["peak_rss_mb"]},
        }

    # the peer runs before and after the DAGs, and the ratio is against the mean of the two: on a shared machine
    # the load drifts over the minutes the DAGs take, and one side alone would catch it at a different level
    runs = [regionstat_run(run_dirs[0], "before")]

    base = {k: v for k, v in child_env().items() if not k.startswith(("AIRFLOW", "REGIONSTAT_"))}
    env = airflow_env(home=home, data_dir=af_dir, base=base)
    t0 = time.perf_counter()
    env = setup(env, echo=None)  # db migrate, pool, reserialize: once per AIRFLOW_HOME, not per run (unmeasured)
    setup_s = round(time.perf_counter() - t0, 2)
    log(f"  airflow setup (not measured): {setup_s} s")
    dags: dict[str, Any] = {}
    for dag_id in AIRFLOW_DAGS:
        log(f"airflow: airflow dags test {dag_id}")
        d = run_measured([airflow_exe(), "dags", "test", dag_id], env=env)
        run_id, state, counts, failed = latest_run(env, dag_id)
        if d["returncode"] or state != "success":
            tail = " | ".join(d["output"].strip().splitlines()[-3:])[-400:]
            raise RuntimeError(
                f"airflow dags test {dag_id} exited {d['returncode']}, run {state}"
                + (f", failed tasks {', '.join(failed)}" if failed else "")
                + f": {tail}"
            )
        dags[dag_id] = {
            "wall_s": d["wall_s"],
            "cpu_s": d["cpu_s"],
            "peak_rss_mb": d["peak_rss_mb"],
            "peak_rss_tree_sampled_mb": d["peak_rss_tree_sampled_mb"],
            "run_id": run_id,
            "task_states": counts,
            "tasks": _task_durations(env, dag_id, run_id),
        }
        log(f"  {dag_id}: {d['wall_s']} s wall, {d['cpu_s']} s CPU, peak RSS {d['peak_rss_mb']} MB, {counts}")
    runs.append(regionstat_run(run_dirs[1], "after"))
    run_wall = round(sum(r["wall_s"] for r in runs) / len(runs), 3)
    run_cpu = round(sum(r["cpu_s"] or 0 for r in runs) / len(runs), 3)
    af_wall = round(sum(d["wall_s"] for d in dags.values()), 3)
    af_cpu = round(sum(d["cpu_s"] or 0 for d in dags.values()), 3)
    ratio = round(af_wall / run_wall, 3)
    marts_run, marts_af = _marts_bytes(run_dirs[0]), _marts_bytes(af_dir)
    same = bool(marts_run) and marts_run == marts_af == _marts_bytes(run_dirs[1])
    differing = sorted(n for n in set(marts_run) | set(marts_af) if marts_run.get(n) != marts_af.get(n))
    log(f"  airflow / regionstat run: {ratio}x wall; marts identical: {same}")
    shutil.rmtree(home / "logs", ignore_errors=True)
    return {
        "config": {
            "snapshot": "bundled offline snapshot (tools/snapshot/tables, Östergötland, real SCB figures)",
            "regionstat_run": "regionstat run --no-docs, then regionstat docs (dbt docs + GX Data Docs: the same "
            "outputs as the two DAGs), in a fresh data dir, once before and once after the DAGs; wall and CPU are the "
            "two commands' sums and the peer figure is the mean of the two",
            "airflow": "airflow dags test regionstat_ingest, then airflow dags test regionstat_transform (which also "
            "writes GX Data Docs and dbt docs), fresh data dir, throwaway AIRFLOW_HOME (SQLite, LocalExecutor "
            "settings of regionstat.cli.airflow_local); `setup` (db migrate, pool, reserialize) once, unmeasured",
            "measured": "each command a fresh process: wall, CPU (user + system), its own peak RSS",
        },
        "regionstat_run": runs,
        "airflow_setup_s": setup_s,
        "airflow_dags": dags,
        "summary": {
            "regionstat_run_wall_s": run_wall,
            "regionstat_run_cpu_s": run_cpu,
            "regionstat_run_wall_s_before_after": [r["wall_s"] for r in runs],
            "airflow_wall_s": af_wall,
            "airflow_cpu_s": af_cpu,
            "airflow_ingest_wall_s": dags[AIRFLOW_DAGS[0]]["wall_s"],
            "airflow_transform_wall_s": dags[AIRFLOW_DAGS[1]]["wall_s"],
            "airflow_over_regionstat_run": ratio,
            "airflow_cpu_over_regionstat_run_cpu": round(af_cpu / run_cpu, 3) if run_cpu else None,
            "regionstat_run_peak_rss_mb": max(r["peak_rss_mb"] or 0 for r in runs),
            "airflow_peak_rss_mb": max(d["peak_rss_mb"] or 0 for d in dags.values()),
            "marts": len(marts_run) - ("_index.json" in marts_run),
            "marts_identical": same,
            "marts_differing": differing,
        },
        "goals": {
            f"airflow dags test ingest + transform <= {AIRFLOW_GOAL}x regionstat run": {
                "value": ratio,
                "target": AIRFLOW_GOAL,
                "pass": ratio <= AIRFLOW_GOAL,
            },
            "airflow and regionstat run publish identical marts": {"value": same, "target": True, "pass": same},
        },
    }


# ====================================================================================== driver
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    return str(v)


def print_summary(results: dict[str, dict[str, Any]]) -> None:
    lines = [("benchmark", "metric", "value")]
    for name, res in results.items():
        for key, value in (res.get("summary") or {}).items():
            if isinstance(value, dict):
                for k2, v2 in value.items():
                    if isinstance(v2, list):
                        v2 = len(v2)
                    lines.append((name, f"{key}.{k2}", _fmt(v2)))
            else:
                lines.append((name, key, _fmt(value)))
        for goal, g in (res.get("goals") or {}).items():
            lines.append((name, f"GOAL {goal}", f"{_fmt(g['value'])} -> {'pass' if g['pass'] else 'FAIL'}"))
    w0 = max(len(r[0]) for r in lines)
    w1 = max(len(r[1]) for r in lines)
    print()
    for i, (a, b, c) in enumerate(lines):
        print(f"{a:<{w0}}  {b:<{w1}}  {c}")
        if i == 0:
            print("-" * (w0 + w1 + 16))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", action="append", choices=BENCHMARKS, help="run only this benchmark (repeatable)")
    p.add_argument("--quick", action="store_true", help="fewer repeats and profiles (a smoke run)")
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the JSON results go (default bench/results)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (data dirs, payload)")
    args = p.parse_args(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b in args.only]
    t0 = time.perf_counter()
    log("synthetic all-Sweden snapshot ...")
    tables_dir = ensure_snapshot()
    log(f"  {tables_dir}")
    work = Path(tempfile.mkdtemp(prefix="regionstat-bench-"))
    results: dict[str, dict[str, Any]] = {}
    failed = False
    e2e_data: Path | None = None
    try:
        for name in chosen:
            b0 = time.perf_counter()
            load_before = [round(x, 2) for x in os.getloadavg()]
            try:
                if name == "requests":
                    res = bench_requests(tables_dir, args.quick)
                elif name == "extract_calls":
                    res = bench_extract_calls(tables_dir, work)
                elif name == "decode":
                    res = bench_decode(work, args.quick)
                elif name == "scaling":
                    res = bench_scaling(work, args.quick)
                elif name == "inbox":
                    res = _bench_inbox(args.quick)
                elif name == "e2e":
                    res, e2e_data = bench_e2e(tables_dir, work, args.quick)
                elif name == "airflow":
                    res = bench_airflow(work)
                else:
                    res = bench_dbt_dags(tables_dir, work, e2e_data, args.quick)
            except Exception as exc:
                log(f"{name} FAILED: {type(exc).__name__}: {exc}")
                failed = True
                continue
            res["elapsed_s"] = round(time.perf_counter() - b0, 1)
            res["quick"] = args.quick
            res["loadavg_at_start"] = load_before  # 1/5/15-min load: other work on the machine skews timings
            path = write_result(name, res, args.out)
            results[name] = res
            log(f"{name}: {res['elapsed_s']} s -> {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    finally:
        if args.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_summary(results)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; results in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
