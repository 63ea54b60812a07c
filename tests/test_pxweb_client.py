"""PxWebClient over real HTTP against the bundled snapshot server."""

from __future__ import annotations

import math
import multiprocessing
import socket
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from extract.pxweb import PxWebClient, RetryPolicy
from extract.ratelimit import SlidingWindowLimiter
from regionstat.errors import (
    ApiUnavailableError,
    InvalidSelectionError,
    NonEliminableVariableError,
    TableNotFoundError,
    TooManyCellsError,
    UnknownValueCodeError,
    UnknownVariableError,
)
from tools.snapshot.server import Faults

FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05, connect_timeout=2, read_timeout=10)
POP = {"Region": "05*", "Alder": "*", "Kon": "*", "ContentsCode": "BE0101N1", "Tid": "top(5)"}  # 14280 cells


def _client(server, data_dir: Path, **kw) -> PxWebClient:
    return PxWebClient(server.url, state_dir=data_dir / ".state", retry=kw.pop("retry", FAST), **kw)


def _cell(t: pa.Table, **codes: str):
    hit = [r for r in t.to_pylist() if all(r[k] == v for k, v in codes.items())]
    assert len(hit) == 1, hit
    return hit[0]["value"]


def test_contract_example(snapshot_server, data_dir: Path) -> None:
    client = PxWebClient(snapshot_server.url)  # default state dir: $REGIONSTAT_DATA_DIR/.state
    t = client.fetch("TAB638", {"Region": ["0580", "0581"], "ContentsCode": ["BE0101N1"], "Tid": "top(2)"})
    assert t.column_names == ["Region", "ContentsCode", "Tid", "value", "status"]
    assert t.schema.types == [pa.string()] * 3 + [pa.float64(), pa.string()]
    assert t.column("Region").to_pylist() == ["0580", "0580", "0581", "0581"]
    assert t.column("Tid").to_pylist() == ["2023", "2024"] * 2  # top(n) on time = the latest periods
    assert t.column("value").null_count == 0
    s = client.last_fetch_stats
    assert (s.requests, s.cells, s.lower_bound, s.get_requests) == (1, 4, 1, 1)
    assert s.eliminated == ["Civilstand", "Alder", "Kon"]
    assert (data_dir / ".state" / "ratelimit" / "127.0.0.1.json").exists()
    info = client.table_info("TAB638")
    assert info.updated and info.last_period == "2024"
    assert client.config.max_data_cells == 150_000
    assert client.metadata("TAB638") is client.metadata("TAB638")  # cached
    en = client.fetch("TAB638", {"Region": "0580", "ContentsCode": "BE0101N1", "Tid": "2024"}, lang="en", labels=True)
    assert en.column("Region_label").to_pylist() == ["Linköping"]


def test_real_commuting_values(snapshot_server, data_dir: Path) -> None:
    client = _client(snapshot_server, data_dir)
    t = client.fetch("TAB5839", {"Region": ["0580"], "ContentsCode": ["00000548", "00000546"], "Tid": "2021"})
    assert "Kon" not in t.column_names  # eliminated
    assert _cell(t, ContentsCode="00000548") == 11792
    assert _cell(t, ContentsCode="00000546") == 69141


def test_chunked_fetch_equals_unchunked(make_snapshot_server, data_dir: Path) -> None:
    big = make_snapshot_server()
    small = make_snapshot_server(max_data_cells=2000, max_calls=1000)
    whole = _client(big, data_dir).fetch("TAB638", POP)
    client = _client(small, data_dir)
    chunked = client.fetch("TAB638", POP)
    assert whole.num_rows == 14 * 102 * 2 * 5
    assert chunked.equals(whole)
    s = client.last_fetch_stats
    assert s.requests == small.stats.data_requests == s.chunks
    assert s.requests <= 1.1 * math.ceil(whole.num_rows / 2000)
    assert small.stats.max_cells_in_a_request <= 2000
    assert big.stats.data_requests == 1
    # a large code list goes by POST, and gives the same result
    post = PxWebClient(big.url, state_dir=data_dir / ".state", retry=FAST, get_url_limit=200)
    assert post.fetch("TAB638", POP).equals(whole)
    assert post.last_fetch_stats.post_requests == 1


def test_faults_429_503_truncation_end_in_correct_data(make_snapshot_server, data_dir: Path) -> None:
    clean = make_snapshot_server(max_data_cells=2000, max_calls=1000)
    expected = _client(clean, data_dir).fetch("TAB638", POP)
    for faults in (
        Faults(rate_limit_every=2, retry_after=0),
        Faults(unavailable_every=2, retry_after=0),
        Faults(truncate_every=2),
        Faults(fail_first_n=3, retry_after=0),
    ):
        server = make_snapshot_server(max_data_cells=2000, max_calls=1000, faults=faults)
        client = _client(server, data_dir)
        got = client.fetch("TAB638", POP)
        assert got.equals(expected), faults
        assert client.last_fetch_stats.retries > 0, faults


def test_retry_after_is_honoured(make_snapshot_server, data_dir: Path) -> None:
    server = make_snapshot_server(faults=Faults(rate_limit_every=1, retry_after=1))
    client = _client(server, data_dir, retry=RetryPolicy(max_attempts=2, base_delay=0.01))
    client.metadata("TAB5839")
    t0 = time.monotonic()
    with pytest.raises(ApiUnavailableError, match="429"):
        client.fetch("TAB5839", {"Region": "0580", "ContentsCode": "*", "Tid": "2021"})
    assert time.monotonic() - t0 >= 0.95  # waited Retry-After: 1 before the second attempt


def test_clear_errors_and_no_data_requests(snapshot_server, data_dir: Path) -> None:
    client = _client(snapshot_server, data_dir)
    with pytest.raises(TableNotFoundError, match="TAB0000"):
        client.fetch("TAB0000", {"Region": "0580"})
    with pytest.raises(UnknownValueCodeError, match=r"TAB638.*'Region'.*'9999'"):
        client.fetch("TAB638", {"Region": ["0580", "9999"], "ContentsCode": "BE0101N1", "Tid": "2024"})
    with pytest.raises(UnknownVariableError, match=r"TAB638.*'Kommun'"):
        client.fetch("TAB638", {"Kommun": "0580", "ContentsCode": "BE0101N1", "Tid": "2024"})
    with pytest.raises(NonEliminableVariableError, match=r"TAB638.*'Tid'"):
        client.fetch("TAB638", {"Region": "0580", "ContentsCode": "BE0101N1"})
    with pytest.raises(InvalidSelectionError, match=r"range.*'Tid'.*comes after"):
        client.fetch("TAB638", {"ContentsCode": "BE0101N1", "Tid": "range(2024,2020)"})
    with pytest.raises(TooManyCellsError):
        client.fetch("TAB638", {"Region": "*", "Alder": "*", "ContentsCode": "*", "Tid": "*"}, max_requests=5)
    assert snapshot_server.stats.data_requests == 0


def test_api_unavailable(data_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = PxWebClient(
        f"http://127.0.0.1:{port}/api/v2",
        state_dir=data_dir / ".state",
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, connect_timeout=1),
    )
    with pytest.raises(ApiUnavailableError, match=r"TAB638.*unavailable.*after 3 attempts"):
        client.metadata("TAB638")


def test_selection_expressions(snapshot_server, data_dir: Path) -> None:
    client = _client(snapshot_server, data_dir)
    r = client.resolve(
        "TAB638",
        {
            "Region": "range(0580,0582)",
            "ContentsCode": "*",
            "Tid": "bottom(2)",
            "Alder": "[to(2)]",
            "Kon": ["2", "1", "2"],
        },
    )
    q = r.as_query()
    assert q["Region"] == ["0580", "0581", "0582"]
    assert q["Tid"] == ["1968", "1969"]
    assert q["Alder"] == ["0", "1", "2"]
    assert q["Kon"] == ["1", "2"]  # metadata order, no duplicates
    assert client.resolve("TAB638", {"ContentsCode": "BE0101N1", "Tid": "from(2023)"}).as_query()["Tid"] == [
        "2023",
        "2024",
    ]
    assert client.resolve("TAB638", {"ContentsCode": "BE0101N1", "Tid": "top(2,1)"}).as_query()["Tid"] == [
        "2022",
        "2023",
    ]
    assert snapshot_server.stats.data_requests == 0


def test_limiter_window_with_fake_clock(tmp_path: Path) -> None:
    now = [1000.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    def limiter() -> SlidingWindowLimiter:
        return SlidingWindowLimiter("h", 3, 1.0, state_dir=tmp_path, margin=0.0, sleep=sleep, clock=lambda: now[0])

    a, b = limiter(), limiter()  # two clients (or processes) on one state file
    assert [a.acquire(), b.acquire(), a.acquire()] == [0, 0, 0]
    now[0] += 0.25
    assert b.acquire() == pytest.approx(0.75)  # the 4th call waits for the 1st to leave the window
    assert slept == [pytest.approx(0.75)]


def _window_ok(times: list[float], max_calls: int, window: float) -> bool:
    times = sorted(times)
    return all(times[i + max_calls] - times[i] >= window for i in range(len(times) - max_calls))


def _worker(url: str, state_dir: str, out) -> None:
    client = PxWebClient(url, state_dir=state_dir, retry=FAST)
    for year in ("2019", "2020", "2021"):
        client.fetch("TAB5839", {"Region": "0580", "ContentsCode": "*", "Tid": year})
    out.put(client.call_log)


def test_rate_limit_shared_by_two_processes(make_snapshot_server, data_dir: Path) -> None:
    server = make_snapshot_server(max_calls=5, time_window=2)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(server.url, str(data_dir / ".state"), out)) for _ in range(2)]
    for p in procs:
        p.start()
    logs = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    times = [t for log in logs for t in log]
    assert server.stats.responses_429 == 0, server.stats.status_counts
    assert len(times) == 10  # per process: config, metadata, 3 data calls
    assert server.stats.requests_total == 10
    assert _window_ok(times, 5, 2.0)
    assert max(times) - min(times) >= 2.0


def test_rate_limit_shared_by_threads(make_snapshot_server, data_dir: Path) -> None:
    server = make_snapshot_server(max_calls=4, time_window=1)
    client = _client(server, data_dir)
    client.metadata("TAB5839")  # 2 calls
    errors: list[BaseException] = []

    def run(year: str) -> None:
        try:
            client.fetch("TAB5839", {"Region": "0580", "ContentsCode": "*", "Tid": year})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(y,)) for y in ("2019", "2020", "2021", "2019")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert server.stats.responses_429 == 0
    assert _window_ok(client.call_log, 4, 1.0)


def test_elimination_value_code_dimension_is_dropped(snapshot_server, data_dir: Path) -> None:
    client = _client(snapshot_server, data_dir)
    sel = {"Region": "0580", "ContentsCode": "000002XH", "Tid": "top(1)"}
    t = client.fetch("TAB3204", sel)  # SNI2007 -> A-U+US, Kon -> 1+2 (eliminationValueCode); Fodelseregion summed
    assert t.column_names == ["Region", "ContentsCode", "Tid", "value", "status"]
    assert t.num_rows == 1
    explicit = client.fetch("TAB3204", {**sel, "SNI2007": "A-U+US", "Kon": "1+2", "Fodelseregion": "tot"})
    assert explicit.column("value").to_pylist() == t.column("value").to_pylist()
    assert client.last_fetch_stats.eliminated == []


def test_extract_calls_are_config_metadata_and_data_only(make_snapshot_server, tmp_path: Path) -> None:
    """Every catalogue table costs one metadata call (it carries `updated`) plus its data calls; one /config for
    the run; no GET /tables/{id}. The unchanged rerun costs one metadata call per table and no data call."""
    from extract.pipeline import extract_all
    from regionstat.catalogue import load_catalogue
    from regionstat.settings import Settings

    server = make_snapshot_server()
    settings = Settings(data_dir=tmp_path / "data", api_url=server.url)
    # TAB638's two sources share its metadata call; the snapshot serves localities_2018 from its offline table
    tables = len({s.offline_table or s.table for s in load_catalogue().sources})
    results = extract_all(settings=settings)
    assert all(r.status == "landed" for r in results), [(r.source_name, r.status, r.message) for r in results]
    data_calls = sum(r.requests for r in results)
    s = server.stats
    assert (s.config_requests, s.table_requests, s.metadata_requests) == (1, 0, tables)
    assert s.data_requests == data_calls
    assert s.requests_total == 1 + tables + data_calls

    before = s.requests_total
    rerun = extract_all(settings=settings)
    assert all(r.status == "skipped_fresh" for r in rerun)
    assert server.stats.data_requests == data_calls
    assert server.stats.requests_total - before == 1 + tables
