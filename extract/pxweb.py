"""PxWeb API v2 client: config-driven chunking, shared rate limit, retries, fast JSON-stat2 -> Arrow.

    from extract.pxweb import PxWebClient
    client = PxWebClient("https://statistikdatabasen.scb.se/api/v2")   # reads GET /config lazily
    t = client.fetch("TAB638", {"Region": ["0580", "0581"], "ContentsCode": ["BE0101N1"], "Tid": "top(2)"})

``fetch`` returns a ``pyarrow.Table``: one string column per selected variable (value codes, metadata order),
``value`` float64 (null where missing) and ``status`` string (symbol or null). Selections are resolved against
the table's metadata before any data request (see ``extract.selection``), split by ``extract.chunking`` so no
request exceeds ``maxDataCells``, and the chunks are stitched back into the cube's row-major order, so a chunked
fetch equals the unchunked one.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import math
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import numpy as np
import orjson
import pyarrow as pa
import requests
import requests.adapters
import urllib3
import urllib3.connection

from extract.chunking import ChunkPlan, plan_chunks
from extract.jsonstat import (
    Cube,
    CubeAssembly,
    InvalidJSONError,
    code_index_arrays,
    decode_jsonstat2,
    loads,
    parse_cube,
)
from extract.ratelimit import SlidingWindowLimiter
from extract.selection import ResolvedSelection, TableMetadata, resolve_selection
from regionstat.errors import (
    ApiUnavailableError,
    PxWebError,
    ResponseError,
    TableNotFoundError,
)

__all__ = [
    "ApiConfig",
    "FetchStats",
    "PxWebClient",
    "RetryPolicy",
    "TableInfo",
    "decode_jsonstat2",
]

log = logging.getLogger(__name__)

USER_AGENT = "regionstat-pxweb/0.1 (+https://github.com/; python-requests)"
GET_URL_LIMIT = 2000  # longer queries go as POST


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter: delay_k = uniform(0.5, 1) * min(max_delay, base * 2**k).

    ``request_deadline``: seconds one HTTP request may take in all (connect, waiting for the answer, the whole
    body), because requests' ``read_timeout`` applies per socket read and a server that trickles a byte now and
    then would otherwise hold a run forever. ``table_retry_budget``: retries allowed over every request made for
    one table (see ``PxWebClient.retry_budget``), so a flaky table cannot multiply ``max_attempts`` by its chunks.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0  # cap on a server's Retry-After
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    request_deadline: float = 300.0
    table_retry_budget: int = 20

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * (2 ** max(attempt - 1, 0))) * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class ApiConfig:
    """The parsed ``GET /config``."""

    max_data_cells: int
    max_calls_per_time_window: int
    time_window: int
    default_language: str
    languages: tuple[str, ...]
    api_version: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ApiConfig:
        return cls(
            max_data_cells=int(doc.get("maxDataCells") or 0),
            max_calls_per_time_window=int(doc.get("maxCallsPerTimeWindow") or 30),
            time_window=int(doc.get("timeWindow") or 10),
            default_language=str(doc.get("defaultLanguage") or "sv"),
            languages=tuple(lang.get("id", "") for lang in doc.get("languages") or []),
            api_version=str(doc.get("apiVersion") or ""),
            raw=doc,
        )


@dataclass(frozen=True)
class TableInfo:
    """``GET /tables/{id}``: what the pipeline needs for freshness checks."""

    id: str
    label: str
    updated: str | None
    first_period: str | None
    last_period: str | None
    variable_names: tuple[str, ...]
    discontinued: bool | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, table_id: str, doc: Mapping[str, Any]) -> TableInfo:
        return cls(
            id=str(doc.get("id") or table_id),
            label=str(doc.get("label") or ""),
            updated=doc.get("updated"),
            first_period=doc.get("firstPeriod"),
            last_period=doc.get("lastPeriod"),
            variable_names=tuple(doc.get("variableNames") or ()),
            discontinued=doc.get("discontinued"),
            raw=doc,
        )


@dataclass
class FetchStats:
    """What one ``fetch`` cost. ``requests`` = data requests that returned data (one per chunk);
    ``http_calls`` = every HTTP call made during the fetch (metadata, retries, config included)."""

    table_id: str
    cells: int = 0
    lower_bound: int = 0
    chunks: int = 0
    requests: int = 0
    http_calls: int = 0
    retries: int = 0
    rate_limit_wait_s: float = 0.0
    get_requests: int = 0
    post_requests: int = 0
    rows: int = 0
    elapsed_s: float = 0.0
    selection: dict[str, list[str]] = field(default_factory=dict, repr=False)
    eliminated: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Counters(threading.local):
    def __init__(self) -> None:
        self.http_calls = 0
        self.retries = 0
        self.waited = 0.0
        self.get = 0
        self.post = 0
        self.budget: int | None = None  # retries left for the current table (None: no budget active)
        self.budget_size = 0


class _DeadlineExceeded(Exception):
    """One HTTP request took longer than ``RetryPolicy.request_deadline`` (retried like a timeout)."""


#: What a broken connection looks like, whichever layer notices it first: requests (connect, headers),
#: urllib3 (reading the body: reset or closed mid-body, IncompleteRead) or the socket itself.
_TRANSIENT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    urllib3.exceptions.DecodeError,
    ConnectionError,
    TimeoutError,
    _DeadlineExceeded,
)
BODY_READ_SIZE = 1 << 16

#: the monotonic deadline of the request this thread is making (read by the connection while it waits)
_REQUEST_DEADLINE = threading.local()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes a recv() blocked on a server that sends a byte now and then


class _DeadlineMixin:
    """Waiting for the status line and headers: a timer shuts the socket at the request's deadline.

    The socket timeout applies per read, so a server trickling its headers one byte at a time would otherwise
    never time out; the body is bounded by ``_read_body``.
    """

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        at = getattr(_REQUEST_DEADLINE, "at", None)
        if at is None or self.sock is None:
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]
        timer = threading.Timer(max(at - time.monotonic(), 0.0), _shutdown, (self.sock,))
        timer.daemon = True
        timer.start()
        try:
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]
        finally:
            timer.cancel()


class _DeadlineHTTPConnection(_DeadlineMixin, urllib3.connection.HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineMixin, urllib3.connection.HTTPSConnection):
    pass


class _DeadlineHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connections that honour ``_REQUEST_DEADLINE`` while waiting for headers."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


class PxWebClient:
    """Client for a PxWeb API v2 base URL (``.../api/v2``).

    ``state_dir``: where the shared rate-limit window lives (default ``$REGIONSTAT_DATA_DIR/.state`` or
    ``./data/.state``); ``False`` keeps it in memory (this process only). ``lang``: default language for
    labels (codes are the keys either way). ``max_data_cells`` / ``max_calls`` / ``time_window`` override what
    ``/config`` says (e.g. to be gentler than the published limits).
    """

    def __init__(
        self,
        base_url: str,
        *,
        lang: str | None = None,
        state_dir: str | os.PathLike[str] | bool | None = None,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        max_data_cells: int | None = None,
        max_calls: int | None = None,
        time_window: float | None = None,
        get_url_limit: int = GET_URL_LIMIT,
    ):
        self.base_url = base_url.rstrip("/")
        self.lang = lang
        self.retry = retry or RetryPolicy()
        if session is None:
            session = requests.Session()
            for prefix in ("http://", "https://"):
                session.mount(prefix, _DeadlineAdapter())
        self.session = session
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        self.session.headers["Accept"] = "application/json"
        self.get_url_limit = get_url_limit
        self._overrides = {"max_data_cells": max_data_cells, "max_calls": max_calls, "time_window": time_window}
        host = urlsplit(self.base_url).hostname or "localhost"
        if state_dir is None or state_dir is True:
            from regionstat.settings import Settings

            state: Path | None = Settings.from_env().state_dir
        elif state_dir is False:
            state = None
        else:
            state = Path(state_dir)
        try:
            self.limiter = SlidingWindowLimiter(host, max_calls or 30, time_window or 10, state_dir=state)
        except OSError as exc:  # read-only data dir: fall back to this process only
            log.warning("rate-limit state dir %s not writable (%s); limiting in this process only", state, exc)
            self.limiter = SlidingWindowLimiter(host, max_calls or 30, time_window or 10, state_dir=None)
        if max_calls is not None and time_window is not None:
            self.limiter.configure(max_calls, time_window)
        self._config: ApiConfig | None = None
        self._meta_cache: dict[tuple[str, str | None, tuple[tuple[str, str], ...]], TableMetadata] = {}
        self._lock = threading.Lock()
        self._counters = _Counters()
        self.call_log: list[float] = []  # wall-clock send time of every HTTP call this client made
        self.last_fetch_stats: FetchStats | None = None

    # ------------------------------------------------------------------------------------------ plumbing
    def __enter__(self) -> PxWebClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def __repr__(self) -> str:
        return f"PxWebClient({self.base_url!r})"

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    @staticmethod
    def _retry_after(resp: requests.Response) -> float | None:
        value = resp.headers.get("Retry-After")
        if not value:
            return None
        try:
            return max(float(value), 0.0)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                return max(when.timestamp() - time.time(), 0.0)
            except (TypeError, ValueError):
                return None

    @staticmethod
    def _problem_detail(content: bytes) -> str:
        try:
            doc = loads(content)
            if isinstance(doc, Mapping):
                return str(doc.get("detail") or doc.get("title") or "")[:300]
        except ResponseError:
            pass
        return content[:200].decode("utf-8", "replace").strip().lstrip("\ufeff")

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        table_id: str | None = None,
        parse: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """One logical call with retries. Returns parsed JSON (or ``parse(body)``: the data path hands the bytes
        to the cube decoder, which never builds the value list); raises typed errors. A body that is not JSON
        (truncated in transit) is retried."""
        url = self._url(path)
        policy = self.retry
        last = ""
        for attempt in range(1, policy.max_attempts + 1):
            if attempt > 1:
                self._counters.retries += 1
                self._spend_retry(table_id, last)
            with self.limiter.call() as waited:
                self._counters.waited += waited
                self._counters.http_calls += 1
                if method == "POST":
                    self._counters.post += 1
                elif path.endswith("/data"):
                    self._counters.get += 1
                with self._lock:
                    self.call_log.append(time.time())
                deadline = time.monotonic() + policy.request_deadline
                _REQUEST_DEADLINE.at = deadline
                try:
                    resp = self.session.request(
                        method,
                        url,
                        params=params,
                        data=body,
                        headers={"Content-Type": "application/json"} if body is not None else None,
                        timeout=(
                            min(policy.connect_timeout, policy.request_deadline),
                            min(policy.read_timeout, policy.request_deadline),
                        ),
                        stream=True,
                    )
                    try:
                        content = _read_body(resp, deadline, policy.request_deadline)
                    except BaseException:
                        resp.close()  # a half-read connection cannot be reused
                        raise
                    resp.raw.release_conn()  # fully read: back to the pool for keep-alive
                except _TRANSIENT as exc:
                    resp = None
                    if isinstance(exc, _DeadlineExceeded) or time.monotonic() >= deadline:
                        last = (
                            str(exc)
                            if isinstance(exc, _DeadlineExceeded)
                            else _deadline_reason(policy.request_deadline, None)
                        )
                    else:
                        last = _short_reason(exc)
                finally:
                    _REQUEST_DEADLINE.at = None
            if resp is None:
                log.info("%s %s failed (%s), attempt %d/%d", method, url, last, attempt, policy.max_attempts)
                self._backoff(attempt)
                continue
            status = resp.status_code
            if status == 200:
                try:
                    return parse(content) if parse is not None else loads(content, what=f"{method} {path}")
                except InvalidJSONError as exc:
                    last = f"truncated or invalid JSON body ({len(content):,} bytes)"
                    log.info("%s %s: %s, attempt %d/%d", method, url, exc, attempt, policy.max_attempts)
                    self._backoff(attempt)
                    continue
            if status == 429:
                wait = self._retry_after(resp)
                wait = min(wait, policy.max_retry_after) if wait is not None else policy.delay(attempt)
                last = f"HTTP 429 (rate limited, Retry-After {wait:g}s)"
                log.info("%s %s: %s, attempt %d/%d", method, url, last, attempt, policy.max_attempts)
                self.limiter.penalise(wait)
                continue
            if status >= 500 or status == 408:
                last = f"HTTP {status} {self._problem_detail(content)}".strip()
                log.info("%s %s: %s, attempt %d/%d", method, url, last, attempt, policy.max_attempts)
                ra = self._retry_after(resp)
                if ra is not None:
                    self.limiter.penalise(min(ra, policy.max_retry_after))
                else:
                    self._backoff(attempt)
                continue
            detail = self._problem_detail(content)
            if status == 404 and table_id is not None:
                raise TableNotFoundError(table_id, self.base_url)
            if status == 403 and table_id is not None:
                raise PxWebError(
                    f"table {table_id}: request refused (403): {detail}", table_id=table_id, status_code=403
                )
            what = f"table {table_id}: " if table_id else ""
            raise PxWebError(
                f"{what}{method} {url} failed with HTTP {status}: {detail}", table_id=table_id, status_code=status
            )
        if last.startswith("truncated"):
            raise ResponseError(
                f"{'table ' + table_id + ': ' if table_id else ''}{method} {url}: {last} "
                f"after {policy.max_attempts} attempts",
                table_id=table_id,
            )
        raise ApiUnavailableError(self.base_url, f"{last} after {policy.max_attempts} attempts", table_id=table_id)

    def _backoff(self, attempt: int) -> None:
        if attempt < self.retry.max_attempts:
            time.sleep(self.retry.delay(attempt))

    @contextlib.contextmanager
    def retry_budget(self, retries: int | None = None) -> Iterator[None]:
        """Allow at most ``retries`` (default ``RetryPolicy.table_retry_budget``) retries in the block, summed
        over every request: the pipeline wraps each table in one budget."""
        c = self._counters
        saved = (c.budget, c.budget_size)
        c.budget = c.budget_size = self.retry.table_retry_budget if retries is None else retries
        try:
            yield
        finally:
            c.budget, c.budget_size = saved

    def _spend_retry(self, table_id: str | None, last: str) -> None:
        """Take one retry from the table's budget, or give up naming the table and the last error."""
        c = self._counters
        if c.budget is None:
            return
        if c.budget <= 0:
            what = f"table {table_id}: " if table_id else f"{self.base_url}: "
            raise PxWebError(
                f"{what}gave up after {c.budget_size} retries (the table's retry budget); last error: {last}",
                table_id=table_id,
            )
        c.budget -= 1

    # ------------------------------------------------------------------------------------------ endpoints
    @property
    def config(self) -> ApiConfig:
        """``GET /config`` (fetched once, lazily); also sets the rate limiter's window."""
        return self._load_config()

    def _load_config(self, table_id: str | None = None) -> ApiConfig:
        if self._config is None:
            cfg = ApiConfig.from_json(self._request("GET", "config", table_id=table_id))
            o = self._overrides
            if o["max_data_cells"] is not None:
                cfg = _replace(cfg, max_data_cells=int(o["max_data_cells"]))
            if o["max_calls"] is not None:
                cfg = _replace(cfg, max_calls_per_time_window=int(o["max_calls"]))
            if o["time_window"] is not None:
                cfg = _replace(cfg, time_window=o["time_window"])
            self.limiter.configure(cfg.max_calls_per_time_window, cfg.time_window)
            self._config = cfg
        return self._config

    def _lang_params(self, lang: str | None) -> dict[str, str]:
        lang = lang or self.lang
        return {"lang": lang} if lang else {}

    def table_info(self, table_id: str, *, lang: str | None = None) -> TableInfo:
        """``GET /tables/{id}``: label, ``updated``, first/last period, variable names."""
        self._load_config(table_id)  # the limiter learns the window first
        doc = self._request("GET", f"tables/{table_id}", params=self._lang_params(lang), table_id=table_id)
        return TableInfo.from_json(table_id, doc)

    def search_tables(self, query: str, *, lang: str | None = None, limit: int = 20) -> tuple[list[TableInfo], int]:
        """``GET /tables?query=``: the first ``limit`` tables the API's search finds for ``query`` (its order), and
        how many it found in all (``page.totalElements``). Finds a table's v2 id from words of its title."""
        self._load_config()
        params = {**self._lang_params(lang), "query": query, "pageNumber": "1", "pageSize": str(max(1, limit))}
        doc = self._request("GET", "tables", params=params)
        tables = [TableInfo.from_json(str(t.get("id") or ""), t) for t in doc.get("tables") or []][:limit]
        total = (doc.get("page") or {}).get("totalElements")
        return tables, int(total) if isinstance(total, int) else len(tables)

    def metadata(
        self, table_id: str, *, lang: str | None = None, codelists: Mapping[str, str] | None = None
    ) -> TableMetadata:
        """``GET /tables/{id}/metadata`` parsed (cached per table, language and codelists).

        ``codelists`` (variable -> codelist id, e.g. ``{"Region": "agg_RegionLA2018"}``) asks for the metadata
        with those codelists applied (``codelist[VAR]=ID``, as the spec's deepObject): the variable's codes are
        then the codelist's (e.g. LA regions instead of municipalities).
        """
        applied = tuple(sorted((codelists or {}).items()))
        key = (table_id, lang or self.lang, applied)
        cached = self._meta_cache.get(key)
        if cached is not None:
            return cached
        self._load_config(table_id)
        params = {**self._lang_params(lang), **{f"codelist[{v}]": c for v, c in applied}}
        doc = self._request("GET", f"tables/{table_id}/metadata", params=params, table_id=table_id)
        meta = TableMetadata.from_jsonstat(table_id, doc)
        self._meta_cache[key] = meta
        return meta

    def resolve(
        self, table_id: str, selection: Mapping[str, Any] | None, *, lang: str | None = None
    ) -> ResolvedSelection:
        """Resolve a selection against the table's metadata (no data request)."""
        return resolve_selection(self.metadata(table_id, lang=lang), selection)

    def plan(self, table_id: str, selection: Mapping[str, Any] | None, *, lang: str | None = None) -> ChunkPlan:
        """The chunk plan ``fetch`` would use (no data request)."""
        resolved = self.resolve(table_id, selection, lang=lang)
        return plan_chunks(resolved.sizes, self.config.max_data_cells, table_id=table_id)

    # ------------------------------------------------------------------------------------------ data
    def _data_request(
        self,
        table_id: str,
        query: dict[str, list[str]],
        lang: str | None,
        codelists: Mapping[str, str] | None = None,
    ) -> Cube:
        codelists = codelists or {}
        params = {"outputFormat": "json-stat2", **self._lang_params(lang)}
        use_post = any("," in c or c.startswith("[") for codes in query.values() for c in codes)
        if not use_post:
            get_params = dict(params)
            for var, codes in query.items():
                get_params[f"valuecodes[{var}]"] = ",".join(codes)  # the spec's spelling (deepObject)
                if var in codelists:
                    get_params[f"codelist[{var}]"] = codelists[var]
            if len(self._url(f"tables/{table_id}/data")) + 1 + len(urlencode(get_params)) > self.get_url_limit:
                use_post = True
            else:
                return self._request(
                    "GET", f"tables/{table_id}/data", params=get_params, table_id=table_id, parse=parse_cube
                )
        body = orjson.dumps(
            {
                "selection": [
                    {"variableCode": v, **({"codelist": codelists[v]} if v in codelists else {}), "valueCodes": c}
                    for v, c in query.items()
                ]
            }
        )
        return self._request(
            "POST", f"tables/{table_id}/data", params=params, body=body, table_id=table_id, parse=parse_cube
        )

    def fetch(
        self,
        table_id: str,
        selection: Mapping[str, Any] | None = None,
        *,
        lang: str | None = None,
        labels: bool = False,
        max_requests: int | None = None,
        codelists: Mapping[str, str] | None = None,
    ) -> pa.Table:
        """Fetch a selection as an Arrow table (see the module docstring for the shape).

        ``labels=True`` adds a ``<variable>_label`` string column after each code column (in ``lang``).
        ``max_requests`` refuses (TooManyCellsError) plans that need more data requests than that.
        """
        return self.fetch_assembly(
            table_id, selection, lang=lang, labels=labels, max_requests=max_requests, codelists=codelists
        ).table()

    def fetch_assembly(
        self,
        table_id: str,
        selection: Mapping[str, Any] | None = None,
        *,
        lang: str | None = None,
        labels: bool = False,
        max_requests: int | None = None,
        codelists: Mapping[str, str] | None = None,
    ) -> CubeAssembly:
        """``fetch`` without building the table: every request done, the selection held as values and sparse
        status only; ``.tables()`` yields it slice by slice (what landing streams), ``.table()`` all at once."""
        t0 = time.perf_counter()
        c = self._counters
        start = (c.http_calls, c.retries, c.waited, c.get, c.post)
        stats = FetchStats(table_id)
        self.last_fetch_stats = stats
        try:
            meta = self.metadata(table_id, lang=lang, codelists=codelists)
            resolved = resolve_selection(meta, selection)
            max_cells = self.config.max_data_cells
            plan = plan_chunks(resolved.sizes, max_cells, table_id=table_id, max_requests=max_requests)
            stats.cells = plan.cells
            stats.lower_bound = plan.lower_bound
            stats.chunks = plan.requests
            stats.selection = resolved.as_query()
            stats.eliminated = list(resolved.eliminated)
            log.info(
                "fetch %s: %s cells in %d request(s) (lower bound %d, maxDataCells %s)",
                table_id,
                f"{plan.cells:,}",
                plan.requests,
                plan.lower_bound,
                max_cells,
            )
            assembly = self._fetch_plan(table_id, meta, resolved, plan, lang, labels, stats, codelists)
            stats.rows = assembly.cells
            return assembly
        finally:
            stats.http_calls = c.http_calls - start[0]
            stats.retries = c.retries - start[1]
            stats.rate_limit_wait_s = c.waited - start[2]
            stats.get_requests = c.get - start[3]
            stats.post_requests = c.post - start[4]
            stats.elapsed_s = time.perf_counter() - t0

    def _fetch_plan(
        self,
        table_id: str,
        meta: TableMetadata,
        resolved: ResolvedSelection,
        plan: ChunkPlan,
        lang: str | None,
        labels: bool,
        stats: FetchStats,
        codelists: Mapping[str, str] | None = None,
    ) -> CubeAssembly:
        variables = resolved.variables
        codes = [list(cs) for _, cs in resolved.selected]
        sizes = plan.sizes
        strides = [1] * len(sizes)
        for i in range(len(sizes) - 2, -1, -1):
            strides[i] = strides[i + 1] * sizes[i + 1]
        label_lists = None
        if labels:
            label_lists = []
            for v, cs in zip(variables, codes, strict=True):
                var = meta.variable(v)
                label_lists.append([var.labels[var.position(code)] for code in cs])  # type: ignore[index]
        assembly = CubeAssembly(variables, codes, label_lists, chunks=len(plan.chunks))
        for chunk in plan.chunks:
            query = {v: [codes[d][p] for p in chunk[d]] for d, v in enumerate(variables)}
            cube = self._data_request(table_id, query, lang, codelists)
            stats.requests += 1
            assembly.add(cube, self._global_index(table_id, cube, variables, query, codes, strides))
        if not assembly.covered_exactly_once():
            raise ResponseError(
                f"table {table_id}: chunked responses did not cover the selection exactly once", table_id=table_id
            )
        return assembly

    @staticmethod
    def _global_index(
        table_id: str,
        cube: Cube,
        variables: list[str],
        query: dict[str, list[str]],
        codes: list[list[str]],
        strides: list[int],
    ) -> np.ndarray | None:
        """Map every cell of a chunk response to its row in the whole selection (None: identity)."""
        dims = []
        for dim in cube.dimensions:
            if dim.code not in query:
                if len(dim.codes) != 1:  # an eliminated variable must not multiply the cells
                    raise ResponseError(
                        f"table {table_id}: response has unrequested dimension {dim.code!r} "
                        f"with {len(dim.codes)} values",
                        table_id=table_id,
                    )
                continue
            dims.append(dim)
        if [d.code for d in dims] != [v for v in variables if v in query] or len(dims) != len(variables):
            raise ResponseError(
                f"table {table_id}: response dimensions {[d.code for d in cube.dimensions]} "
                f"do not match the request {variables}",
                table_id=table_id,
            )
        identity = True
        gpos: list[np.ndarray] = []
        for d, dim in enumerate(dims):
            lookup = {c: i for i, c in enumerate(codes[d])}
            try:
                pos = np.array([lookup[c] for c in dim.codes], dtype=np.int64)
            except KeyError as exc:
                raise ResponseError(
                    f"table {table_id}: response has unrequested value {exc.args[0]!r} for {dim.code!r}",
                    table_id=table_id,
                ) from None
            if sorted(dim.codes) != sorted(query[dim.code]):
                raise ResponseError(
                    f"table {table_id}: response values for {dim.code!r} differ from the request", table_id=table_id
                )
            if len(pos) != len(codes[d]) or (pos != np.arange(len(codes[d]))).any():
                identity = False
            gpos.append(pos)
        if identity:
            return None
        sizes = [len(p) for p in gpos]
        local = code_index_arrays(sizes)
        gidx = np.zeros(math.prod(sizes), dtype=np.int64)
        for p, loc, stride in zip(gpos, local, strides, strict=True):
            gidx += p[loc] * stride
        return gidx


def _read_body(resp: requests.Response, deadline: float, limit: float) -> bytes:
    """The whole body, or ``_DeadlineExceeded`` once ``deadline`` (monotonic) passes.

    Reads with ``read1`` (at most one socket read per call) and shortens the socket timeout to what is left,
    so neither a stalled nor a trickling body can outlast the deadline by more than a moment.
    """
    raw = resp.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    parts: list[bytes] = []
    try:
        _read_parts(raw, sock, deadline, limit, parts)
    finally:
        if sock is not None:  # the pool reuses the connection: no tiny leftover timeout for its next request
            with contextlib.suppress(OSError):
                sock.settimeout(limit)
    received = sum(len(p) for p in parts)
    expected = resp.headers.get("Content-Length")
    if expected and expected.isdigit() and "Content-Encoding" not in resp.headers and received < int(expected):
        raise urllib3.exceptions.ProtocolError(f"Connection broken: IncompleteRead ({received} of {expected} bytes)")
    return b"".join(parts)


def _read_parts(raw: Any, sock: Any, deadline: float, limit: float, parts: list[bytes]) -> None:
    """Append body chunks to ``parts`` until the end of the body; the socket never waits past ``deadline``."""
    received = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _DeadlineExceeded(_deadline_reason(limit, received))
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(left)
        try:
            chunk = raw.read1(BODY_READ_SIZE)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            if time.monotonic() >= deadline:
                raise _DeadlineExceeded(_deadline_reason(limit, received)) from None
            raise
        if not chunk:
            return
        parts.append(chunk)
        received += len(chunk)


def _deadline_reason(limit: float, received: int | None) -> str:
    got = f" ({received:,} bytes received)" if received is not None else " (no answer)"
    return f"no complete response within the {limit:g} s request deadline{got}"


def _short_reason(exc: BaseException) -> str:
    """'connection refused' rather than urllib3's three nested reprs."""
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if m:
        return f"{type(exc).__name__}: {m.group(1).strip()}"
    for needle in ("Read timed out", "Connection aborted", "Connection reset", "IncompleteRead", "Connection broken"):
        if needle in text:
            return f"{type(exc).__name__}: {needle}"
    return f"{type(exc).__name__}: {text[:160]}"


def _replace(cfg: ApiConfig, **changes: Any) -> ApiConfig:
    from dataclasses import replace

    return replace(cfg, **changes)
