"""Runs that end and say why: per-request deadlines, retried resets, retry budgets, and per-table isolation.

Fault drills use the snapshot server's fault injection over real HTTP. Deadlines in these tests are small
(1-2 s) so the drills finish; they assert on the outcome (the run ends, naming the table), never on how fast.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from extract.pipeline import extract_all, extract_source, retry_policy
from extract.pxweb import PxWebClient, RetryPolicy
from regionstat.batches import latest_batch
from regionstat.catalogue import load_catalogue
from regionstat.cli.main import main
from regionstat.errors import PxWebError
from regionstat.settings import Settings
from tools.snapshot.server import Faults, SnapshotServer

pytestmark = [pytest.mark.xdist_group("runs")]

SELECTION = {"Region": ["0580", "0581", "05"], "ContentsCode": ["BE0101N1"], "Tid": "*"}
N_SOURCES = len(load_catalogue().sources)
QUICK = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, request_deadline=1.5)


def _client(server: SnapshotServer, retry: RetryPolicy = QUICK) -> PxWebClient:
    return PxWebClient(server.url, state_dir=False, retry=retry)


@pytest.fixture(scope="module")
def expected() -> object:
    with SnapshotServer() as server:
        return _client(server).fetch("TAB638", SELECTION)


# ------------------------------------------------------------------------------------ client: resets, deadlines
def test_connection_reset_mid_body_is_retried_and_succeeds(make_snapshot_server, expected) -> None:
    server = make_snapshot_server(faults=Faults(reset_every=2))
    client = _client(server)
    got = client.fetch("TAB638", SELECTION, max_requests=1)
    got_again = client.fetch("TAB638", SELECTION)  # the 2nd data call is reset, then retried
    assert got.equals(expected) and got_again.equals(expected)
    assert server.stats.reset_responses == 1 and client.last_fetch_stats.retries == 1


def test_connection_reset_every_time_fails_naming_the_table(make_snapshot_server) -> None:
    server = make_snapshot_server(faults=Faults(reset_every=1))
    with pytest.raises(PxWebError) as info:
        _client(server).fetch("TAB638", SELECTION)
    msg = str(info.value)
    assert "\n" not in msg and "table TAB638" in msg and "after 3 attempts" in msg, msg
    assert "IncompleteRead" in msg or "Connection broken" in msg or "reset" in msg.lower(), msg
    assert server.stats.reset_responses == 3


@pytest.mark.parametrize(
    "faults",
    [
        Faults(hang_every=1),
        Faults(trickle_every=1, trickle_seconds=0.2),
        Faults(trickle_every=1, trickle_seconds=0.2, trickle_headers=True),
    ],
    ids=["server never answers", "server trickles the body", "server trickles even its headers"],
)
def test_request_deadline_ends_a_stuck_request(make_snapshot_server, faults: Faults) -> None:
    server = make_snapshot_server(faults=faults)
    client = _client(server, RetryPolicy(max_attempts=2, base_delay=0.01, request_deadline=1.0))
    with pytest.raises(PxWebError) as info:
        client.fetch("TAB638", SELECTION)
    msg = str(info.value)
    assert "\n" not in msg and "table TAB638" in msg, msg
    assert "within the 1 s request deadline" in msg and "after 2 attempts" in msg, msg
    assert server.stats.hung_requests + server.stats.trickled_responses == 2
    if faults.trickle_headers:  # given up while the headers (~90 bytes) were still arriving, not after them
        assert 0 < server.stats.trickled_bytes < 2 * 40, server.stats.trickled_bytes


def test_trickle_once_then_answer_is_retried(make_snapshot_server, expected) -> None:
    server = make_snapshot_server(faults=Faults(trickle_every=2, trickle_seconds=0.2))
    client = _client(server, RetryPolicy(max_attempts=3, base_delay=0.01, request_deadline=1.0))
    assert client.fetch("TAB638", SELECTION).equals(expected)
    assert client.fetch("TAB638", SELECTION).equals(expected)  # data call 2 trickles, call 3 answers
    assert server.stats.trickled_responses == 1


def test_table_retry_budget_caps_retries_over_all_requests(make_snapshot_server) -> None:
    server = make_snapshot_server(max_data_cells=20, faults=Faults(unavailable_every=2, retry_after=0))
    client = _client(server, RetryPolicy(max_attempts=6, base_delay=0.01, table_retry_budget=2))
    with client.retry_budget(), pytest.raises(PxWebError) as info:
        client.fetch("TAB638", SELECTION)  # 9 chunks; every 2nd call is a 503: the 3rd retry is one too many
    msg = str(info.value)
    assert "table TAB638: gave up after 2 retries (the table's retry budget)" in msg and "HTTP 503" in msg, msg
    assert server.stats.responses_503 == 3


# ------------------------------------------------------------------------------------ settings and catalogue
def test_limits_come_from_catalogue_then_source_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from regionstat.catalogue import load_catalogue

    catalogue = load_catalogue()
    default = retry_policy(Settings(), catalogue)
    assert (default.request_deadline, default.max_attempts, default.table_retry_budget) == (
        catalogue.http["request_deadline_seconds"],
        catalogue.http["max_attempts"],
        catalogue.http["table_retry_budget"],
    )
    monkeypatch.setenv("REGIONSTAT_REQUEST_DEADLINE_SECONDS", "2.5")
    monkeypatch.setenv("REGIONSTAT_MAX_ATTEMPTS", "2")
    policy = retry_policy(Settings.from_env(), catalogue)
    assert (policy.request_deadline, policy.max_attempts) == (2.5, 2)
    assert policy.table_retry_budget == catalogue.http["table_retry_budget"]
    monkeypatch.setenv("REGIONSTAT_MAX_ATTEMPTS", "two")
    from regionstat.errors import RegionstatError

    with pytest.raises(RegionstatError, match="REGIONSTAT_MAX_ATTEMPTS='two'"):
        Settings.from_env()


# ------------------------------------------------------------------------------------ per-table isolation
def test_one_unavailable_table_does_not_stop_the_others(make_snapshot_server, tmp_path: Path) -> None:
    server = make_snapshot_server(faults=Faults(unavailable_every=1, retry_after=0, only_tables=frozenset({"TAB628"})))
    settings = Settings(data_dir=tmp_path / "data", api_url=server.url, http={"max_attempts": 2})
    results = extract_all(settings=settings)
    by_status = {r.source_name: r.status for r in results}
    assert by_status.pop("land_area_tab628") == "failed"
    assert set(by_status.values()) == {"landed"} and len(by_status) == N_SOURCES - 1
    failed = next(r for r in results if r.status == "failed")
    assert "table TAB628" in failed.message and "HTTP 503" in failed.message and "\n" not in failed.message
    assert latest_batch(settings, "land_area", "land_area_tab628") is None


def test_unreachable_api_fails_every_table_quickly_and_clearly(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(data_dir=tmp_path / "data", api_url=f"http://127.0.0.1:{port}/api/v2", http={"max_attempts": 2})
    results = extract_all(settings=settings)
    assert {r.status for r in results} == {"failed"} and len(results) == N_SOURCES
    assert "unavailable" in results[0].message and "TAB638" in results[0].message
    assert all(r.table_id in r.message for r in results)
    assert all("not attempted" in r.message for r in results[1:])


@pytest.mark.parametrize(
    "faults",
    [
        Faults(hang_every=1, only_tables=frozenset({"TAB5839"})),
        Faults(trickle_every=1, trickle_seconds=0.5, only_tables=frozenset({"TAB5839"})),
    ],
    ids=["hanging", "trickling"],
)
def test_extract_cli_stuck_table_ends_with_one_line_naming_it(
    faults: Faults,
    make_snapshot_server,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = make_snapshot_server(faults=faults)
    monkeypatch.setenv("REGIONSTAT_REQUEST_DEADLINE_SECONDS", "2")
    monkeypatch.setenv("REGIONSTAT_MAX_ATTEMPTS", "2")
    assert main(["extract", "--api-url", server.url]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert err[0].startswith(f"error: 1 of {N_SOURCES} source(s) not loaded: commuting_totals_tab5839 (failed)"), (
        captured.err
    )
    assert "TAB5839" in err[1] and "2 s request deadline" in err[1], err[1]
    assert captured.out.count("landed") >= N_SOURCES - 1
    assert server.stats.hung_requests + server.stats.trickled_responses == 2


@pytest.mark.slow
def test_run_loads_the_others_and_exits_non_zero_naming_the_failed_table(
    make_snapshot_server, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = make_snapshot_server(faults=Faults(unavailable_every=1, retry_after=0, only_tables=frozenset({"TAB3267"})))
    monkeypatch.setenv("REGIONSTAT_MAX_ATTEMPTS", "2")
    assert main(["run", "--no-docs", "--api-url", server.url]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert err[0] == f"error: 1 of {N_SOURCES} source(s) not loaded: commuting_totals_tab3267 (failed)", captured.err
    assert "TAB3267" in err[1] and "HTTP 503" in err[1]
    assert "publish:" in captured.out  # the run went on to build and publish the others
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        loaded = {r[0] for r in con.execute("select source_name from ops.loads where status = 'loaded'").fetchall()}
        series = con.execute(
            "select min(year), max(year) from marts.mart_commuting_totals_series where municipality_code = '0580'"
        ).fetchone()
    assert len(loaded) == N_SOURCES - 1 and "commuting_totals_tab3267" not in loaded
    assert series == (2004, 2021)  # the 1993-2003 table is missing, the rest is there


def test_extract_source_retry_budget_is_per_table(make_snapshot_server, tmp_path: Path) -> None:
    server = make_snapshot_server(max_data_cells=300, faults=Faults(unavailable_every=2, retry_after=0))
    settings = Settings(data_dir=tmp_path / "data")
    client = _client(server, RetryPolicy(max_attempts=6, base_delay=0.01, table_retry_budget=1))
    with pytest.raises(PxWebError, match="table TAB638: gave up after 1 retries"):
        extract_source("population_tab638", settings=settings, client=client, base_url=server.url)
    # the next table starts with a fresh budget
    res = extract_source("land_area_tab628", settings=settings, client=client, base_url=server.url)
    assert res.status == "landed"


def test_a_batch_that_cannot_be_loaded_does_not_stop_the_others(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from expectations.validate import validate_pending

    settings = Settings.from_env()
    extract_all(["population_tab638", "land_area_tab628"], settings=settings)
    assert all(o.success for o in validate_pending(settings, build_docs=False))
    bad = latest_batch(settings, "land_area", "land_area_tab628")
    bad.parquet_path.write_bytes(b"PAR1 damaged on disk after validation")
    assert main(["load"]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert err[0] == "error: 1 of 2 source(s) not loaded: land_area_tab628 (failed)", captured.err
    assert str(bad.parquet_path) in err[1] and "raw.land_area" in err[1]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        ledger = dict(con.execute("select source_name, status from ops.loads").fetchall())
        population = con.execute("select count(*) from raw.population").fetchone()[0]
        land_area = con.execute("select count(*) from raw.land_area").fetchone()[0]
    assert ledger == {"population_tab638": "loaded", "land_area_tab628": "failed"}
    assert population > 0 and land_area == 0
