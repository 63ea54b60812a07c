"""A local PxWebApi 2.0 server over the bundled snapshot (stdlib `http.server`, no extra dependencies).

    with SnapshotServer() as server:            # 127.0.0.1, ephemeral port, SCB's limits
        requests.get(server.url + "/tables/TAB638/metadata")

Endpoints under `/api/v2`: `GET /config`, `GET /tables`, `GET /tables/{id}`, `GET /tables/{id}/metadata`,
`GET|POST /tables/{id}/data` (json-stat2 and csv). JSON bodies start with a UTF-8 BOM like SCB's; errors are
`application/problem+json` (RFC 7807, the spec's `Problem`).

Behaviour choices (SCB's where known, documented where we had to choose):
- Table search: `GET /tables?query=WORDS` keeps the tables whose id, label or variable names contain every word
  (case-insensitive substrings; SCB's own search ranks by relevance), paged by `pageNumber`/`pageSize`.
- Rate limit: a sliding window of `max_calls` calls per `time_window` seconds over *all* endpoints (SCB limits
  calls per IP, not only data calls); `rate_limit_scope="data"` counts only data calls. A call over the limit
  gets 429 with `Retry-After` (whole seconds until the oldest call leaves the window) and is not counted.
- Too many cells: 403 problem (the spec's `ErrorResponse403`, "Forbidden"), checked before any work.
- Elimination: a variable left out of the selection with `elimination: true` is fixed to its
  `eliminationValueCode` when it has one (the dimension stays in the response with that one category),
  otherwise it is summed over the facts and dropped from the response; with `elimination: false` → 400
  "mandatory". An empty selection (no variables at all) applies a default selection (first ContentsCode value,
  last time period, other non-eliminable variables' first value).
- Expressions: `*`, `top(n[,offset])`, `bottom(n[,offset])`, `range(a,b)`, `from(x)`, `to(x)` and wildcards
  (`05*`, `?`) in codes. For the time variable `top(n)` means the n latest periods, `bottom(n)` the n earliest;
  for other variables `top` takes from the start of the list and `bottom` from the end. Output categories are
  always in metadata order.
- Cells not in the snapshot's facts are `null` with status `..`. Facts that do not carry a dimension are totals
  over it: selecting that dimension's total code alone (its `eliminationValueCode`, else its only code labelled
  "total…", e.g. TAB638 `Alder` `tot`) returns them.
- Fact layers: a table's `facts.parquet` may be joined by finer `facts.<name>.parquet` files (e.g. TAB638's ages
  for one year). A query is answered from the first layer (facts.parquet, then the others by name) whose
  dimensions cover every dimension the response keeps (or select just its total); summed-away dimensions are
  summed within that layer. So totals come from the total series and age cells from the age layer, never a mix,
  and nothing is invented.
- Coverage: `GET /tables/{id}/metadata` adds `extension.regionstat.coverage`, per fact dimension the codes that
  have at least one value (SCB never sends it); the extract refuses a region set the snapshot does not cover.
- `outputFormat=csv`: long form with codes, one column per response dimension, then `value` (`..` when
  missing). SCB's csv is a pivot with texts; clients should use json-stat2.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import functools
import io
import json
import math
import re
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
import orjson
import pyarrow.parquet as pq

from tools.snapshot import TABLES_DIR

BOM = b"\xef\xbb\xbf"
API_PREFIX = "/api/v2"
LANGUAGES = [{"id": "sv", "label": "Svenska"}, {"id": "en", "label": "English"}]


# ------------------------------------------------------------------------------------------------ public types
@dataclass(frozen=True)
class Faults:
    """Injected faults, counted over data calls that pass the rate limiter (1-based call numbers).

    rate_limit_every=N: every Nth data call → 429 with Retry-After (`retry_after` seconds).
    unavailable_every=N: every Nth data call → 503 problem.
    truncate_every=N: every Nth data call → 200 whose body is cut in half (Content-Length of the cut body,
        so the client receives invalid JSON rather than a connection error).
    fail_first_n=N: the first N data calls → 503.
    delay_seconds: sleep before answering each data call.
    reset_every=N: every Nth data call → 200 with the full Content-Length, half the body, then the connection is
        reset (the client sees a connection broken mid-body, requests' ChunkedEncodingError).
    hang_every=N: every Nth data call is accepted and never answered (until the server stops).
    trickle_every=N: every Nth data call → 200 whose body is sent one byte every `trickle_seconds`
        (`trickle_headers`: the status line and headers too).
    only_tables: when given, faults apply to (and count) only data calls for these table ids.
    """

    rate_limit_every: int = 0
    unavailable_every: int = 0
    truncate_every: int = 0
    delay_seconds: float = 0.0
    fail_first_n: int = 0
    retry_after: int = 1
    reset_every: int = 0
    hang_every: int = 0
    trickle_every: int = 0
    trickle_seconds: float = 20.0
    trickle_headers: bool = False
    only_tables: frozenset[str] = frozenset()


@dataclass
class ServerStats:
    """Counters (thread-safe through the server's lock; read them between requests)."""

    requests_total: int = 0
    config_requests: int = 0
    tables_requests: int = 0
    table_requests: int = 0
    metadata_requests: int = 0
    data_requests: int = 0  # every data call received, including ones answered with an error
    data_responses_ok: int = 0
    cells_served: int = 0
    max_cells_in_a_request: int = 0
    cells_per_request: list[int] = field(default_factory=list)  # one entry per successful data response
    responses_429: int = 0
    responses_403: int = 0
    responses_503: int = 0
    truncated_responses: int = 0
    reset_responses: int = 0
    hung_requests: int = 0
    trickled_responses: int = 0
    trickled_bytes: int = 0  # bytes a trickling response got out before the client gave up
    status_counts: dict[int, int] = field(default_factory=dict)


class ProblemError(Exception):
    def __init__(self, status: int, detail: str, *, title: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or {
            400: "Bad Request",
            403: "Forbidden",
            404: "Not Found",
            405: "Method Not Allowed",
            429: "Too Many Requests",
            503: "Service Unavailable",
        }.get(status, "Error")
        self.headers = headers or {}


# ---------------------------------------------------------------------------------------------- table store
class Table:
    """One snapshot table: metadata plus facts as integer category positions (vectorised lookups)."""

    def __init__(self, directory: Path):
        self.id = directory.name
        self.dir = directory
        self.meta: dict = json.loads((directory / "metadata.json").read_text(encoding="utf-8-sig"))
        en = directory / "metadata_en.json"
        self.meta_en: dict | None = json.loads(en.read_text(encoding="utf-8-sig")) if en.exists() else None
        self.dims: list[str] = list(self.meta["id"])
        self.codes: dict[str, list[str]] = {}
        self.pos: dict[str, dict[str, int]] = {}
        for d in self.dims:
            index = self.meta["dimension"][d]["category"]["index"]
            codes = sorted(index, key=index.get)
            self.codes[d] = codes
            self.pos[d] = {c: i for i, c in enumerate(codes)}
        role_time = self.meta.get("role", {}).get("time") or []
        self.time_dim = role_time[0] if role_time else None
        self.metric_dims = set(self.meta.get("role", {}).get("metric") or [])
        extra = sorted(p for p in directory.glob("facts.*.parquet"))
        self.layers = [FactLayer(self, directory / "facts.parquet"), *(FactLayer(self, p) for p in extra)]
        prov = directory / "provenance.json"
        self.provenance = json.loads(prov.read_text(encoding="utf-8")) if prov.exists() else {}

    def ext(self, dim: str) -> dict:
        return self.meta["dimension"][dim].get("extension") or {}

    def metadata(self, lang: str) -> dict:
        return self.meta_en if (lang == "en" and self.meta_en is not None) else self.meta

    def published_metadata(self, lang: str) -> dict:
        """``GET /tables/{id}/metadata``: the metadata plus ``extension.regionstat.coverage`` (what the snapshot
        actually holds; SCB never sends it). Data responses keep the plain metadata's extension."""
        doc = self.metadata(lang)
        ext = dict(doc.get("extension") or {})
        ext["regionstat"] = {**(ext.get("regionstat") or {}), "coverage": self.coverage}
        return {**doc, "extension": ext}

    @functools.cached_property
    def coverage(self) -> dict[str, list[str]]:
        """Per non-time, non-content fact dimension: the codes (metadata order) with at least one non-null fact.

        A client asking for a code outside it would get only nulls (``..``); the extract refuses up front instead
        and points to the live API. Dimensions the facts do not carry are not listed (they are not restricted).
        """
        held: dict[str, set[int]] = {}
        for layer in self.layers:  # a code held in any fact layer is covered
            has_value = ~np.isnan(layer.value)
            for d in layer.dims:
                if d == self.time_dim or d in self.metric_dims:
                    continue
                held.setdefault(d, set()).update(int(i) for i in np.unique(layer.pos[d][has_value]))
        return {d: [self.codes[d][i] for i in sorted(positions)] for d, positions in held.items()}

    @property
    def synthetic(self) -> bool:
        return bool(self.provenance.get("synthetic", False))


class FactLayer:
    """One facts file of a table: the dimensions it covers, as integer category positions, and its values."""

    def __init__(self, table: Table, path: Path):
        facts = pq.read_table(path)
        self.name = path.name
        self.dims = [d for d in table.dims if d in facts.column_names]
        self.pos: dict[str, np.ndarray] = {}
        for d in self.dims:
            col = facts.column(d).combine_chunks().dictionary_encode()
            dictionary = col.dictionary.to_pylist()
            lookup = np.array([table.pos[d][c] for c in dictionary], dtype=np.int64)
            self.pos[d] = lookup[col.indices.to_numpy(zero_copy_only=False)]
        self.value = facts.column("value").to_numpy(zero_copy_only=False).astype(np.float64)
        status = facts.column("status").to_pylist() if "status" in facts.column_names else []
        self.status = np.array(status, dtype=object) if any(s is not None for s in status) else None


class TableStore:
    def __init__(self, tables_dir: Path):
        self.dir = Path(tables_dir)
        self._tables: dict[str, Table] = {}
        self._lock = threading.Lock()
        index = self.dir / "index.json"
        if index.exists():
            self.index = json.loads(index.read_text(encoding="utf-8"))["tables"]
        else:
            self.index = [{"id": p.name} for p in sorted(self.dir.iterdir()) if (p / "metadata.json").exists()]
        self.ids = {t["id"].upper(): t["id"] for t in self.index}

    def get(self, table_id: str) -> Table:
        real = self.ids.get(table_id.upper())
        if real is None:
            raise ProblemError(404, f"Table with id {table_id} can not be found")
        with self._lock:
            table = self._tables.get(real)
            if table is None:
                table = self._tables[real] = Table(self.dir / real)
            return table


# ------------------------------------------------------------------------------------------------ selection
_EXPR = re.compile(r"^\s*(top|bottom|range|from|to)\s*\((.*)\)\s*$", re.IGNORECASE)


def split_codes(text: str) -> list[str]:
    """Split a comma-separated valueCodes string, keeping commas inside parentheses (range(a,b))."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return [s for s in out if s]


def _code_pos(table: Table, dim: str, code: str) -> int:
    code = code.strip()
    if code not in table.pos[dim]:
        raise ProblemError(400, f"Value {code} is not a valid value code for variable {dim} in table {table.id}")
    return table.pos[dim][code]


def _bad_expression(table: Table, dim: str, expr: str, why: str) -> ProblemError:
    return ProblemError(400, f"Selection expression {expr} for variable {dim} in table {table.id} is invalid: {why}")


def _select_expression(table: Table, dim: str, item: str, fn: str, args: list[str], chosen: np.ndarray) -> None:
    """Mark the positions of one ``top/bottom/range/from/to(...)`` expression in ``chosen``."""
    n = len(chosen)
    if fn in ("top", "bottom"):
        try:
            count = int(args[0])
            offset = int(args[1]) if len(args) > 1 else 0
        except (ValueError, IndexError):
            raise _bad_expression(table, dim, item, "expected integer arguments") from None
        if count < 0 or offset < 0 or len(args) > 2:
            raise _bad_expression(table, dim, item, "expected top(n) or top(n,offset) with n, offset >= 0")
        from_end = (fn == "top") == (dim == table.time_dim)  # for time, top(n) = the n latest periods
        sl = list(range(n))
        if from_end:
            sl = sl[::-1]
        for p in sl[offset : offset + count]:
            chosen[p] = True
    elif fn == "range":
        if len(args) != 2:
            raise _bad_expression(table, dim, item, "expected range(from,to)")
        a, b = _code_pos(table, dim, args[0]), _code_pos(table, dim, args[1])
        chosen[min(a, b) : max(a, b) + 1] = True
    else:
        if len(args) != 1:
            raise _bad_expression(table, dim, item, f"expected {fn}(code)")
        p = _code_pos(table, dim, args[0])
        if fn == "from":
            chosen[p:] = True
        else:
            chosen[: p + 1] = True


def resolve_values(table: Table, dim: str, items: list[str]) -> np.ndarray:
    """Positions (metadata order, unique) selected by a list of codes/expressions for one variable."""
    codes = table.codes[dim]
    chosen = np.zeros(len(codes), dtype=bool)
    for raw_item in items:
        item = raw_item.strip()
        if item == "*":
            chosen[:] = True
        elif m := _EXPR.match(item):
            _select_expression(table, dim, item, m.group(1).lower(), [a.strip() for a in m.group(2).split(",")], chosen)
        elif "*" in item or "?" in item:
            hits = [i for i, c in enumerate(codes) if fnmatch.fnmatchcase(c, item)]
            if not hits:
                raise ProblemError(400, f"Value {item} matches no value code of variable {dim} in table {table.id}")
            chosen[hits] = True
        else:
            chosen[_code_pos(table, dim, item)] = True
    return np.flatnonzero(chosen)


def resolve_selection(table: Table, raw: dict[str, list[str]]) -> list[tuple[str, np.ndarray | None, str]]:
    """Per table dimension: (dim, positions or None when summed away, mode in {'select','fixed','sum'})."""
    lower = {d.lower(): d for d in table.dims}
    selected: dict[str, list[str]] = {}
    for var, items in raw.items():
        dim = var if var in table.pos else lower.get(var.lower())
        if dim is None:
            raise ProblemError(
                400, f"Variable {var} does not exist in table {table.id} (variables: {', '.join(table.dims)})"
            )
        if items:
            selected.setdefault(dim, []).extend(items)
    default = not raw
    out = []
    for d in table.dims:
        ext = table.ext(d)
        if d in selected:
            positions = resolve_values(table, d, selected[d])
            if positions.size == 0:
                raise ProblemError(400, f"The selection for variable {d} in table {table.id} selects no values")
            out.append((d, positions, "select"))
        elif ext.get("elimination"):
            evc = ext.get("eliminationValueCode")
            if evc and evc in table.pos[d]:
                out.append((d, np.array([table.pos[d][evc]]), "fixed"))
            else:
                out.append((d, None, "sum"))
        elif default:
            n = len(table.codes[d])
            p = n - 1 if d == table.time_dim else 0
            out.append((d, np.array([p]), "select"))
        else:
            raise ProblemError(
                400,
                f"Variable {d} is mandatory in table {table.id} and cannot be eliminated; "
                "select at least one value for it",
            )
    return out


# ---------------------------------------------------------------------------------------------------- cube
def total_code(table: Table, dim: str) -> str | None:
    """The dimension's total: its ``eliminationValueCode``, else its only code labelled 'total…'/'totalt…'."""
    evc = table.ext(dim).get("eliminationValueCode")
    if evc in table.pos[dim]:
        return str(evc)
    labels = table.meta["dimension"][dim]["category"].get("label") or {}
    totals = [c for c in table.codes[dim] if str(labels.get(c, "")).lower().startswith("total")]
    return totals[0] if len(totals) == 1 else None


def _is_total_selection(table: Table, dim: str, positions: np.ndarray) -> bool:
    code = total_code(table, dim)
    return code is not None and len(positions) == 1 and table.codes[dim][int(positions[0])] == code


def build_cube(table: Table, sel: list[tuple[str, np.ndarray | None, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Dense values (NaN = missing) and a boolean 'present' mask over the output dims, C order."""
    out_dims = [(d, p) for d, p, mode in sel if mode != "sum"]
    sizes = [len(p) for _, p in out_dims]
    ncells = int(np.prod(sizes, dtype=np.int64)) if sizes else 1
    strides = np.ones(len(sizes), dtype=np.int64)
    for i in range(len(sizes) - 2, -1, -1):
        strides[i] = strides[i + 1] * sizes[i + 1]
    values = np.full(ncells, np.nan)
    present = np.zeros(ncells, dtype=bool)
    # the first fact layer that covers every output dimension answers. A layer without a dimension holds totals
    # over it, so it also answers a request for just that dimension's total (TAB638's facts carry no age:
    # `Alder: tot` asks for exactly them; single ages come from the age layer); none covers: nothing can match
    layer = next(
        (f for f in table.layers if all(d in f.dims or _is_total_selection(table, d, p) for d, p in out_dims)),
        None,
    )
    if layer is None or len(layer.value) == 0:
        return values, present
    nrows = len(layer.value)
    fact_dims = set(layer.dims)
    mask = np.ones(nrows, dtype=bool)
    flat = np.zeros(nrows, dtype=np.int64)
    out_index = {d: i for i, (d, _) in enumerate(out_dims)}
    for d, positions, mode in sel:
        if mode == "sum" or d not in fact_dims:
            continue
        mapping = np.full(len(table.codes[d]), -1, dtype=np.int64)
        mapping[positions] = np.arange(len(positions))
        m = mapping[layer.pos[d]]
        mask &= m >= 0
        flat += np.where(m >= 0, m, 0) * strides[out_index[d]]
    flat = flat[mask]
    vals = layer.value[mask]
    if any(mode == "sum" and d in fact_dims for d, _, mode in sel):
        ok = ~np.isnan(vals)
        sums = np.bincount(flat[ok], weights=vals[ok], minlength=ncells)
        hit = np.bincount(flat[ok], minlength=ncells) > 0
        values[hit] = sums[hit]
        present = hit
    else:
        values[flat] = vals
        present[flat] = ~np.isnan(vals)
    return values, present


def _restrict(obj: Any, keep: set[str]) -> Any:
    if isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj):
        return {k: v for k, v in obj.items() if k in keep}
    return obj


#: dimension extension keys that map category codes to values (restricted to the selected codes)
_PER_CODE_EXTENSIONS = frozenset(
    {
        "refperiod",
        "measuringType",
        "priceType",
        "adjustment",
        "alternativeText",
        "basePeriod",
        "categoryNoteMandatory",
    }
)


def _response_dimension(src: dict, d: str, codes: list[str]) -> dict:
    """One dimension of a data response: the metadata's, restricted to the selected codes (in that order)."""
    keep = set(codes)
    cat_src = src.get("category", {})
    cat = {
        "index": {c: i for i, c in enumerate(codes)},
        "label": {c: cat_src.get("label", {}).get(c, c) for c in codes},
    }
    for key in ("unit", "note", "child"):
        if key in cat_src:
            sub = _restrict(cat_src[key], keep)
            if sub:
                cat[key] = sub
    dim = {"label": src.get("label", d)}
    if src.get("note"):
        dim["note"] = src["note"]
    dim["category"] = cat
    ext = {
        k: _restrict(v, keep) if k in _PER_CODE_EXTENSIONS else v
        for k, v in (src.get("extension") or {}).items()
        if k != "codelists"
    }
    if ext:
        dim["extension"] = ext
    if src.get("link"):
        dim["link"] = src["link"]
    return dim


def jsonstat_response(table: Table, lang: str, sel, values: np.ndarray, present: np.ndarray) -> dict:
    meta = table.metadata(lang)
    out_dims = [(d, p) for d, p, mode in sel if mode != "sum"]
    dimension = {
        d: _response_dimension(meta["dimension"][d], d, [table.codes[d][i] for i in positions])
        for d, positions in out_dims
    }
    ids = [d for d, _ in out_dims]
    role = {k: [d for d in v if d in ids] for k, v in (meta.get("role") or {}).items()}
    doc: dict[str, Any] = {
        "version": "2.0",
        "class": "dataset",
        "label": meta.get("label"),
        "source": meta.get("source"),
        "updated": meta.get("updated"),
    }
    if meta.get("note"):
        doc["note"] = meta["note"]
    doc["role"] = {k: v for k, v in role.items() if v}
    doc["id"] = ids
    doc["size"] = [len(p) for _, p in out_dims]
    doc["dimension"] = dimension
    if meta.get("extension"):
        doc["extension"] = meta["extension"]
    doc["value"] = _value_list(values, present)
    missing = np.flatnonzero(~present)
    if missing.size:
        doc["status"] = dict.fromkeys(missing.astype(str).tolist(), "..")
    return doc


def _value_list(values: np.ndarray, present: np.ndarray) -> list:
    vals = np.where(present, values, 0.0)
    if np.all(vals == np.round(vals)) and (vals.size == 0 or np.abs(vals).max() < 2**53):
        obj = vals.astype(np.int64).astype(object)
    else:
        obj = vals.astype(object)
    obj[~present] = None
    return obj.tolist()


def csv_response(table: Table, sel, values: np.ndarray, present: np.ndarray) -> bytes:
    out_dims = [(d, p) for d, p, mode in sel if mode != "sum"]
    sizes = [len(p) for _, p in out_dims]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([*[d for d, _ in out_dims], "value"])
    code_cols = []
    n = values.size
    for i, (d, positions) in enumerate(out_dims):
        codes = np.array([table.codes[d][p] for p in positions], dtype=object)
        inner = int(np.prod(sizes[i + 1 :], dtype=np.int64))
        outer = int(np.prod(sizes[:i], dtype=np.int64))
        code_cols.append(np.tile(np.repeat(codes, inner), outer) if n else codes[:0])
    text = [f"{v:.15g}" if ok else ".." for v, ok in zip(values.tolist(), present.tolist(), strict=True)]
    w.writerows(zip(*code_cols, text, strict=True))
    return BOM + buf.getvalue().encode("utf-8")


# -------------------------------------------------------------------------------------------------- server
class SnapshotServer:
    """The snapshot PxWeb v2 server. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        tables_dir: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_data_cells: int = 150_000,
        max_calls: int = 30,
        time_window: int = 10,
        faults: Faults | None = None,
        rate_limit_scope: str = "all",
        verbose: bool = False,
    ):
        if rate_limit_scope not in ("all", "data"):
            raise ValueError("rate_limit_scope must be 'all' or 'data'")
        self.store = TableStore(Path(tables_dir) if tables_dir else TABLES_DIR)
        self.host = host
        self.port = port
        self.max_data_cells = int(max_data_cells)
        self.max_calls = int(max_calls)
        self.time_window = int(time_window)
        self.rate_limit_scope = rate_limit_scope
        self.verbose = verbose
        self._faults = faults or Faults()
        self._lock = threading.Lock()
        self._calls: deque[float] = deque()
        self._data_calls = 0
        self.stats = ServerStats()
        self._httpd: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()  # wakes handlers that hang or trickle on purpose
        self._thread: threading.Thread | None = None

    # -- lifecycle
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    def start(self) -> SnapshotServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        handler = type("Handler", (_Handler,), {"server_ref": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="snapshot-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def serve_forever(self) -> None:
        self.start()
        try:
            while self._thread and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def __enter__(self) -> SnapshotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- knobs
    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> None:
        """Replace the faults (and restart fault counting): set_faults(Faults(...)) or set_faults(truncate_every=2)."""
        with self._lock:
            self._faults = replace(faults or Faults(), **changes) if changes else (faults or Faults())
            self._data_calls = 0

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = ServerStats()
            self._calls.clear()
            self._data_calls = 0

    # -- accounting
    def _count(self, kind: str) -> None:
        with self._lock:
            s = self.stats
            s.requests_total += 1
            attr = {
                "config": "config_requests",
                "tables": "tables_requests",
                "table": "table_requests",
                "metadata": "metadata_requests",
                "data": "data_requests",
            }.get(kind)
            if attr:
                setattr(s, attr, getattr(s, attr) + 1)

    def _record_status(self, status: int) -> None:
        with self._lock:
            s = self.stats
            s.status_counts[status] = s.status_counts.get(status, 0) + 1
            if status == 429:
                s.responses_429 += 1
            elif status == 403:
                s.responses_403 += 1
            elif status == 503:
                s.responses_503 += 1

    def _rate_limit(self, kind: str) -> None:
        if self.rate_limit_scope == "data" and kind != "data":
            return
        now = time.monotonic()
        with self._lock:
            while self._calls and self._calls[0] <= now - self.time_window:
                self._calls.popleft()
            if len(self._calls) >= self.max_calls:
                wait = max(1, math.ceil(self._calls[0] + self.time_window - now))
                raise ProblemError(
                    429,
                    f"You have reached the threshold for request limiting: {self.max_calls} "
                    f"calls per {self.time_window} seconds",
                    headers={"Retry-After": str(wait)},
                )
            self._calls.append(now)

    def _data_fault(self, table_id: str) -> tuple[str | None, Faults]:
        """Applies per-call faults; returns (body mode: truncate|reset|hang|trickle|None, faults)."""
        with self._lock:
            f = self._faults
            if f.only_tables and table_id.upper() not in {t.upper() for t in f.only_tables}:
                return None, f
            self._data_calls += 1
            n = self._data_calls
        if f.delay_seconds > 0:
            time.sleep(f.delay_seconds)
        if f.fail_first_n and n <= f.fail_first_n:
            raise ProblemError(
                503,
                f"Injected fault: data call {n} of the first {f.fail_first_n} fails",
                headers={"Retry-After": str(f.retry_after)},
            )
        if f.rate_limit_every and n % f.rate_limit_every == 0:
            raise ProblemError(
                429,
                f"Injected fault: every {f.rate_limit_every}th data call is rate limited",
                headers={"Retry-After": str(f.retry_after)},
            )
        if f.unavailable_every and n % f.unavailable_every == 0:
            raise ProblemError(
                503,
                f"Injected fault: every {f.unavailable_every}th data call is unavailable",
                headers={"Retry-After": str(f.retry_after)},
            )
        for mode, every in (
            ("hang", f.hang_every),
            ("trickle", f.trickle_every),
            ("reset", f.reset_every),
            ("truncate", f.truncate_every),
        ):
            if every and n % every == 0:
                return mode, f
        return None, f

    def _record_fault(self, mode: str) -> None:
        with self._lock:
            attr = {"reset": "reset_responses", "hang": "hung_requests", "trickle": "trickled_responses"}[mode]
            setattr(self.stats, attr, getattr(self.stats, attr) + 1)

    def _record_cells(self, cells: int, truncated: bool) -> None:
        with self._lock:
            s = self.stats
            s.data_responses_ok += 1
            s.cells_served += cells
            s.max_cells_in_a_request = max(s.max_cells_in_a_request, cells)
            s.cells_per_request.append(cells)
            if truncated:
                s.truncated_responses += 1

    # -- endpoints (return (status, content type, body bytes, extra headers))
    def config(self) -> dict:
        return {
            "apiVersion": "2.0.0",
            "appVersion": "regionstat-snapshot-1.0",
            "languages": LANGUAGES,
            "defaultLanguage": "sv",
            "maxDataCells": self.max_data_cells,
            "maxCallsPerTimeWindow": self.max_calls,
            "timeWindow": self.time_window,
            "license": "CC0",
            "sourceReferences": [
                {
                    "language": "sv",
                    "text": "Källa: SCB (offline-ögonblicksbild i regionstat; vissa tabeller är syntetiska)",
                },
                {
                    "language": "en",
                    "text": "Source: Statistics Sweden (regionstat offline snapshot; some tables are synthetic)",
                },
            ],
            "defaultDataFormat": "json-stat2",
            "dataFormats": ["json-stat2", "csv"],
            "features": [{"id": "CORS", "params": [{"key": "enabled", "value": "false"}]}],
        }

    def table_info(self, table: Table, lang: str, base: str) -> dict:
        meta = table.metadata(lang)
        periods = table.codes[table.time_dim] if table.time_dim else []
        tags = []
        if table.synthetic:
            tags.append("synthetic")
        if table.provenance.get("metadata_reconstructed"):
            tags.append("reconstructed-metadata")
        href = f"{base}/tables/{table.id}"
        return {
            "type": "Table",
            "id": table.id,
            "label": meta.get("label"),
            "description": "",
            "updated": meta.get("updated"),
            "firstPeriod": periods[0] if periods else None,
            "lastPeriod": periods[-1] if periods else None,
            "category": "public",
            "variableNames": [meta["dimension"][d].get("label", d) for d in table.dims],
            "discontinued": False,
            "source": meta.get("source"),
            "subjectCode": (meta.get("extension") or {}).get("px", {}).get("subject-code", ""),
            "timeUnit": "Annual",
            "tags": tags,
            "paths": [],
            "links": [
                {"rel": "self", "hreflang": lang, "href": f"{href}?lang={lang}"},
                {"rel": "metadata", "hreflang": lang, "href": f"{href}/metadata?lang={lang}"},
                {"rel": "data", "hreflang": lang, "href": f"{href}/data?lang={lang}&outputFormat=json-stat2"},
            ],
        }

    def tables(self, params: dict[str, str], lang: str, base: str) -> dict:
        query = (params.get("query") or "").strip().lower()
        try:
            page = max(1, int(params.get("pageNumber") or 1))
            size = max(1, int(params.get("pageSize") or 20))
        except ValueError:
            raise ProblemError(400, "pageNumber and pageSize must be positive integers") from None
        items = []
        for entry in self.store.index:
            t = self.store.get(entry["id"])
            info = self.table_info(t, lang, base)
            hay = " ".join([t.id, info["label"] or "", *info["variableNames"], *t.dims]).lower()
            if query and not all(word in hay for word in query.split()):
                continue
            items.append(info)
        total = len(items)
        pages = max(1, math.ceil(total / size))
        chunk = items[(page - 1) * size : page * size]
        links = [
            {"rel": "self", "hreflang": lang, "href": f"{base}/tables?lang={lang}&pageNumber={page}&pageSize={size}"}
        ]
        if page < pages:
            links.append(
                {
                    "rel": "next",
                    "hreflang": lang,
                    "href": f"{base}/tables?lang={lang}&pageNumber={page + 1}&pageSize={size}",
                }
            )
        return {
            "language": lang,
            "tables": chunk,
            "page": {"pageNumber": page, "pageSize": size, "totalElements": total, "totalPages": pages, "links": links},
            "links": links,
        }

    def data(self, table: Table, raw: dict[str, list[str]], lang: str, fmt: str) -> tuple[bytes, str, int]:
        sel = resolve_selection(table, raw)
        cells = 1
        for _, p, mode in sel:
            if mode != "sum":
                cells *= len(p)
        if cells > self.max_data_cells:
            raise ProblemError(
                403,
                f"The query resulted in {cells} cells, which exceeds the number of allowed "
                f"cells ({self.max_data_cells})",
            )
        values, present = build_cube(table, sel)
        if fmt == "csv":
            return csv_response(table, sel, values, present), "text/csv; charset=UTF-8", cells
        doc = jsonstat_response(table, lang, sel, values, present)
        return BOM + orjson.dumps(doc), "application/json; charset=UTF-8", cells


def _parse_valuecodes(pairs: list[tuple[str, str]]) -> tuple[dict[str, list[str]], dict[str, str]]:
    sel: dict[str, list[str]] = {}
    other: dict[str, str] = {}
    for key, value in pairs:
        m = re.fullmatch(r"valuecodes\[(.+)\]", key, flags=re.IGNORECASE)
        if m:
            sel.setdefault(m.group(1), []).extend(split_codes(value))
            continue
        if re.fullmatch(r"codelist\[(.+)\]", key, flags=re.IGNORECASE):
            raise ProblemError(400, "Codelists are not supported by the regionstat snapshot server")
        other[key] = value
    return sel, other


def _parse_post_body(body: bytes) -> dict[str, list[str]]:
    if not body.strip():
        return {}
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProblemError(400, f"The request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("selection", []), list):
        raise ProblemError(400, "The request body must be an object with a 'selection' array")
    sel: dict[str, list[str]] = {}
    for item in doc.get("selection") or []:
        if not isinstance(item, dict) or "variableCode" not in item:
            raise ProblemError(400, "Every selection item needs 'variableCode' and 'valueCodes'")
        if item.get("codelist"):
            raise ProblemError(400, "Codelists are not supported by the regionstat snapshot server")
        codes = item.get("valueCodes") or []
        if isinstance(codes, str):
            codes = split_codes(codes)
        sel.setdefault(str(item["variableCode"]), []).extend(str(c) for c in codes)
    return sel


def _route_kind(route: list[str]) -> str:
    if route == ["config"]:
        return "config"
    if route == ["tables"]:
        return "tables"
    if len(route) == 2 and route[0] == "tables":
        return "table"
    if len(route) == 3 and route[0] == "tables" and route[2] in ("metadata", "data"):
        return route[2]
    return "other"


class _Handler(BaseHTTPRequestHandler):
    server_ref: SnapshotServer
    protocol_version = "HTTP/1.1"
    server_version = "regionstat-snapshot/1.0"
    disable_nagle_algorithm = True  # small keep-alive responses otherwise stall ~40 ms on delayed ACKs

    def log_message(self, format: str, *args: Any) -> None:
        if self.server_ref.verbose:
            sys.stderr.write("snapshot: " + (format % args) + "\n")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _send(
        self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None, *, truncate: bool = False
    ) -> None:
        if truncate:
            body = body[: len(body) // 2]
        self.server_ref._record_status(status)  # before the client can see the response
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _problem(self, exc: ProblemError) -> None:
        doc = {
            "type": "about:blank",
            "title": exc.title,
            "status": exc.status,
            "detail": exc.detail,
            "instance": self.path,
        }
        self._send(exc.status, "application/problem+json; charset=UTF-8", BOM + orjson.dumps(doc), exc.headers)

    def _handle(self, method: str) -> None:
        srv = self.server_ref
        body = b""
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = self.rfile.read(length)
        try:
            parts = urlsplit(self.path)
            path = unquote(parts.path).rstrip("/")
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            if not path.startswith(API_PREFIX):
                raise ProblemError(404, f"No resource at {parts.path}; the API is under {API_PREFIX}")
            route = [r for r in path[len(API_PREFIX) :].split("/") if r]
            kind = _route_kind(route)
            srv._count(kind)
            srv._rate_limit(kind)
            if kind == "data":
                self._data(route[1], method, pairs, body)
                return
            if method != "GET":
                raise ProblemError(405, f"{method} is not allowed on {parts.path}")
            _, params = _parse_valuecodes(pairs)
            lang = self._lang(params)
            base = f"http://{srv.host}:{srv.port}{API_PREFIX}"
            if kind == "config":
                doc = srv.config()
            elif kind == "tables":
                doc = srv.tables(params, lang, base)
            elif kind == "table":
                doc = srv.table_info(srv.store.get(route[1]), lang, base)
                doc["language"] = lang
            elif kind == "metadata":
                doc = srv.store.get(route[1]).published_metadata(lang)
            else:
                raise ProblemError(404, f"No resource at {parts.path}")
            self._send(200, "application/json; charset=UTF-8", BOM + orjson.dumps(doc))
        except ProblemError as exc:
            self._problem(exc)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # a bug: answer 500 as a problem rather than dropping the connection
            self._problem(ProblemError(500, f"{type(exc).__name__}: {exc}", title="Internal Server Error"))

    def _lang(self, params: dict[str, str]) -> str:
        lang = (params.get("lang") or "sv").lower()
        if lang not in ("sv", "en"):
            raise ProblemError(400, f"Language {lang} is not supported (sv, en)")
        return lang

    def _data(self, table_id: str, method: str, pairs: list[tuple[str, str]], body: bytes) -> None:
        srv = self.server_ref
        selection, params = _parse_valuecodes(pairs)
        table = srv.store.get(table_id)
        lang = self._lang(params)
        if method == "POST":
            selection = _parse_post_body(body) if body else selection
        elif method != "GET":
            raise ProblemError(405, f"{method} is not allowed on data")
        fmt = (params.get("outputFormat") or params.get("outputformat") or "json-stat2").lower()
        if fmt not in ("json-stat2", "csv"):
            raise ProblemError(400, f"outputFormat {fmt} is not supported by the snapshot server (json-stat2, csv)")
        mode, faults = srv._data_fault(table.id)
        if mode == "hang":  # accepted, never answered
            srv._record_fault(mode)
            srv._stopping.wait()
            self.close_connection = True
            return
        payload, ctype, cells = srv.data(table, selection, lang, fmt)
        srv._record_cells(cells, mode == "truncate")
        if mode in ("reset", "trickle"):
            srv._record_fault(mode)
            self._send_faulty(ctype, payload, mode, faults)
            return
        self._send(200, ctype, payload, truncate=mode == "truncate")

    def _send_faulty(self, ctype: str, body: bytes, mode: str, faults: Faults) -> None:
        """Headers promise the whole body; then either half of it and a connection reset, or a slow trickle."""
        self.server_ref._record_status(200)
        self.close_connection = True
        if mode == "trickle" and faults.trickle_headers:
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
            self._trickle(head.encode("latin-1") + body, faults.trickle_seconds)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "reset":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            # SO_LINGER 0: close sends RST, as a dropped proxy or a crashed upstream does
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        self._trickle(body, faults.trickle_seconds)

    def _trickle(self, data: bytes, seconds: float) -> None:
        srv = self.server_ref
        for i in range(len(data)):
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            with srv._lock:
                srv.stats.trickled_bytes += 1
            if srv._stopping.wait(seconds):
                return


# ------------------------------------------------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="regionstat snapshot serve",
        description="Serve the bundled offline snapshot of SCB tables as a PxWebApi 2.0 API "
        "(GET /config, /tables, /tables/{id}, /tables/{id}/metadata, GET|POST /tables/{id}/data). "
        "Some tables are synthetic (TAB3204, TAB1830): see their metadata note.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8099, help="port (default 8099; 0 = any free port)")
    p.add_argument("--tables-dir", default=None, help="snapshot tables directory (default: the bundled one)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    _add_limit_arguments(p.add_argument_group("limits (SCB's by default)"))
    _add_fault_arguments(p.add_argument_group("fault injection (data calls only)"))
    return p


def _add_limit_arguments(p: argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--max-data-cells",
        type=int,
        default=150_000,
        help="maxDataCells: larger data requests get 403 (default 150000, as SCB)",
    )
    p.add_argument(
        "--max-calls",
        type=int,
        default=30,
        help="maxCallsPerTimeWindow: more calls in the window get 429 + Retry-After (default 30)",
    )
    p.add_argument("--time-window", type=int, default=10, help="timeWindow in seconds (default 10)")
    p.add_argument(
        "--rate-limit-scope",
        choices=["all", "data"],
        default="all",
        help="which calls count towards the limit (default all, like SCB)",
    )


#: ``--<name>-every N`` faults: what happens to every Nth data call (0 = off)
EVERY_NTH_FAULTS = {
    "rate-limit": "gets 429 with Retry-After",
    "unavailable": "gets 503",
    "truncate": "gets a body cut in half",
}
#: the same, for a connection that goes wrong mid-way
EVERY_NTH_STREAM_FAULTS = {
    "reset": "sends half its body, then resets the connection",
    "hang": "is accepted and never answered",
    "trickle": "sends its body one byte per --trickle-seconds",
}


def _add_every_nth(p: argparse._ArgumentGroup, faults: dict[str, str]) -> None:
    for name, what in faults.items():
        help_ = f"fault: every Nth data call {what} (0 = off)"
        p.add_argument(f"--{name}-every", type=int, default=0, metavar="N", help=help_)


def _add_fault_arguments(p: argparse._ArgumentGroup) -> None:
    _add_every_nth(p, EVERY_NTH_FAULTS)
    p.add_argument("--fail-first", type=int, default=0, metavar="N", help="fault: the first N data calls get 503")
    _add_every_nth(p, EVERY_NTH_STREAM_FAULTS)
    p.add_argument(
        "--trickle-seconds", type=float, default=20.0, metavar="SECONDS", help="pause between trickled bytes (20)"
    )
    p.add_argument("--trickle-headers", action="store_true", help="trickle the status line and headers too")
    p.add_argument(
        "--only-table",
        action="append",
        default=[],
        metavar="TABLE",
        help="apply the faults only to data calls for this table id (repeatable; default: every table)",
    )
    p.add_argument(
        "--delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="fault: sleep this long before answering each data call",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    faults = Faults(
        rate_limit_every=args.rate_limit_every,
        unavailable_every=args.unavailable_every,
        truncate_every=args.truncate_every,
        delay_seconds=args.delay,
        fail_first_n=args.fail_first,
        reset_every=args.reset_every,
        hang_every=args.hang_every,
        trickle_every=args.trickle_every,
        trickle_seconds=args.trickle_seconds,
        trickle_headers=args.trickle_headers,
        only_tables=frozenset(args.only_table),
    )
    try:
        server = SnapshotServer(
            args.tables_dir,
            host=args.host,
            port=args.port,
            max_data_cells=args.max_data_cells,
            max_calls=args.max_calls,
            time_window=args.time_window,
            faults=faults,
            rate_limit_scope=args.rate_limit_scope,
            verbose=args.verbose,
        )
        server.start()
    except OSError as exc:
        print(f"snapshot server could not start on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(server.url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
