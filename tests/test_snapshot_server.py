"""The snapshot PxWeb v2 server over real HTTP on loopback: endpoints, errors, limits, faults, real numbers."""

from __future__ import annotations

import json
import math
import time

import pytest
import requests

from tools.snapshot.server import Faults, SnapshotServer, main

BOM = b"\xef\xbb\xbf"
OSTERGOTLAND = ["0509", "0512", "0513", "0560", "0561", "0562", "0563", "0580", "0581", "0582", "0583", "0584", "0586"]


def body(resp: requests.Response) -> dict:
    assert resp.content.startswith(BOM), "SCB-like JSON bodies start with a UTF-8 BOM"
    return json.loads(resp.content.decode("utf-8-sig"))


def get_data(server: SnapshotServer, table: str, **selection: str) -> requests.Response:
    params = {f"valuecodes[{k}]": v for k, v in selection.items()}
    return requests.get(f"{server.url}/tables/{table}/data", params=params, timeout=30)


def post_data(server: SnapshotServer, table: str, selection: dict[str, list[str]], **params: str):
    payload = {"selection": [{"variableCode": k, "valueCodes": v} for k, v in selection.items()]}
    return requests.post(f"{server.url}/tables/{table}/data", json=payload, params=params, timeout=30)


def cell(doc: dict, **codes: str) -> float | None:
    """Value of one cell of a JSON-stat2 dataset by codes (every dimension of size > 1 must be given)."""
    idx = 0
    for dim, size in zip(doc["id"], doc["size"], strict=True):
        index = doc["dimension"][dim]["category"]["index"]
        pos = index[codes[dim]] if dim in codes else 0
        idx = idx * size + pos
    return doc["value"][idx]


def assert_shape(doc: dict) -> None:
    assert doc["class"] == "dataset" and doc["version"] == "2.0"
    assert len(doc["id"]) == len(doc["size"]) == len(doc["dimension"])
    assert math.prod(doc["size"]) == len(doc["value"])
    for dim, size in zip(doc["id"], doc["size"], strict=True):
        index = doc["dimension"][dim]["category"]["index"]
        assert sorted(index.values()) == list(range(size))
        assert set(doc["dimension"][dim]["category"]["label"]) == set(index)
    for k, sym in doc.get("status", {}).items():
        assert doc["value"][int(k)] is None and sym == ".."


# ----------------------------------------------------------------------------------------------- endpoints
def test_config(snapshot_server):
    r = requests.get(f"{snapshot_server.url}/config", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=UTF-8"
    cfg = body(r)
    assert cfg["apiVersion"].startswith("2.")
    assert cfg["maxDataCells"] == 150_000 and cfg["maxCallsPerTimeWindow"] == 30 and cfg["timeWindow"] == 10
    assert {lang["id"] for lang in cfg["languages"]} == {"sv", "en"} and cfg["defaultLanguage"] == "sv"
    assert cfg["license"] == "CC0" and cfg["sourceReferences"] and "json-stat2" in cfg["dataFormats"]


def test_tables_listing_query_and_paging(snapshot_server):
    doc = body(requests.get(f"{snapshot_server.url}/tables", timeout=10))
    ids = {t["id"] for t in doc["tables"]}
    assert {
        "TAB638",
        "TAB5557",
        "TAB628",
        "TAB5839",
        "TAB3266",
        "TAB3267",
        "TAB3204",
        "TAB1830",
        "LandarealTatortN",
    } <= ids
    synthetic = {t["id"] for t in doc["tables"] if "synthetic" in t["tags"]}
    assert synthetic == {"TAB3204", "TAB1830", "LandarealTatortN_SYNTHETIC2018"}
    page = body(requests.get(f"{snapshot_server.url}/tables", params={"pageSize": 4, "pageNumber": 3}, timeout=10))
    assert page["page"]["totalElements"] == len(ids) and page["page"]["totalPages"] == math.ceil(len(ids) / 4)
    assert len(page["tables"]) == len(ids) - 8
    found = body(requests.get(f"{snapshot_server.url}/tables", params={"query": "pendlare"}, timeout=10))
    assert {t["id"] for t in found["tables"]} == {"TAB5839", "TAB3266", "TAB3267"}


def test_table_info(snapshot_server):
    doc = body(requests.get(f"{snapshot_server.url}/tables/TAB638", timeout=10))
    assert doc["id"] == "TAB638" and doc["language"] == "sv"
    assert doc["updated"] == "2025-02-21T07:00:00Z"
    assert (doc["firstPeriod"], doc["lastPeriod"]) == ("1968", "2024")
    assert doc["variableNames"][0] == "region" and len(doc["variableNames"]) == 6
    assert {link["rel"] for link in doc["links"]} >= {"self", "metadata", "data"}


def test_metadata_real_and_synthetic(snapshot_server):
    meta = body(requests.get(f"{snapshot_server.url}/tables/TAB638/metadata", timeout=10))
    assert meta["value"] == [] and meta["size"] == [312, 4, 102, 2, 2, 57]
    assert len(meta["dimension"]["Region"]["category"]["index"]) == 312
    assert meta["dimension"]["Civilstand"]["extension"]["elimination"] is True
    en = body(requests.get(f"{snapshot_server.url}/tables/TAB638/metadata", params={"lang": "en"}, timeout=10))
    assert en["label"].startswith("Population")
    for tid in ("TAB3204", "TAB1830"):
        m = body(requests.get(f"{snapshot_server.url}/tables/{tid}/metadata", timeout=10))
        assert m["label"].startswith("SYNTHETIC") and "SYNTHETIC" in m["note"][0]
        assert m["extension"]["regionstat"]["synthetic"] is True
    od = body(requests.get(f"{snapshot_server.url}/tables/TAB1830/metadata", timeout=10))
    assert od["size"] == [290, 290, 2, 1, 5]
    assert list(od["dimension"]["ContentsCode"]["category"]["index"]) == ["000001RX"]


# ----------------------------------------------------------------------------------------------- real data
def test_real_numbers(snapshot_server):
    pop = body(get_data(snapshot_server, "TAB638", Region="0580,05,00", ContentsCode="BE0101N1", Tid="2024"))
    assert_shape(pop)
    assert pop["id"] == ["Region", "ContentsCode", "Tid"]  # Civilstand, Alder, Kon summed away
    assert cell(pop, Region="0580") == 168035
    assert cell(pop, Region="05") == 472446
    assert cell(pop, Region="00") > 10_000_000
    ckm = body(
        get_data(
            snapshot_server,
            "TAB5557",
            Region="0580",
            Civilstand="SC",
            Alder="TotSA",
            ContentsCode="000007ME",
            Tid="2025",
        )
    )
    assert ckm["value"] == [168714]
    com = body(get_data(snapshot_server, "TAB5839", Region="0580", Kon="4", ContentsCode="00000548", Tid="2021"))
    assert com["value"] == [11792]
    land = body(get_data(snapshot_server, "TAB628", Region="0580", ContentsCode="BE0101U3", Tid="top(1)"))
    assert land["value"] == [1433.8]


def test_missing_cells_are_null_with_status(snapshot_server):
    doc = body(get_data(snapshot_server, "TAB5839", Region="0580,0114", ContentsCode="*", Tid="2021"))
    assert_shape(doc)
    assert doc["size"] == [2, 3, 1]
    assert cell(doc, Region="0580", ContentsCode="00000547") is None  # in-commuters are not in our data
    assert cell(doc, Region="0114", ContentsCode="00000546") is None
    assert cell(doc, Region="0580", ContentsCode="00000546") == 69141
    assert len(doc["status"]) == 4


def test_post_equals_get_and_csv(snapshot_server):
    sel = {"Region": ["0580", "0581"], "ContentsCode": ["BE0101N1"], "Tid": ["range(2020,2022)"]}
    posted = body(post_data(snapshot_server, "TAB638", sel))
    got = body(get_data(snapshot_server, "TAB638", Region="0580,0581", ContentsCode="BE0101N1", Tid="range(2020,2022)"))
    assert posted == got and posted["size"] == [2, 1, 3]
    r = post_data(snapshot_server, "TAB638", sel, outputFormat="csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "Region,ContentsCode,Tid,value" and len(lines) == 7
    assert "0580,BE0101N1,2021,165527" in lines


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("top(2)", ["2023", "2024"]),
        ("bottom(2)", ["1968", "1969"]),
        ("from(2022)", ["2022", "2023", "2024"]),
        ("to(1969)", ["1968", "1969"]),
        ("range(2001,2003)", ["2001", "2002", "2003"]),
        ("202*", None),
        ("top(2,1)", ["2022", "2023"]),
    ],
)
def test_expressions_on_time(snapshot_server, expr, expected):
    doc = body(get_data(snapshot_server, "TAB638", Region="0580", ContentsCode="BE0101N1", Tid=expr))
    years = list(doc["dimension"]["Tid"]["category"]["index"])
    assert years == (expected or [str(y) for y in range(2020, 2025)])


def test_wildcard_and_star(snapshot_server):
    doc = body(get_data(snapshot_server, "TAB638", Region="05*", ContentsCode="BE0101N1", Tid="2024"))
    assert list(doc["dimension"]["Region"]["category"]["index"]) == ["05", *OSTERGOTLAND]
    regions = body(get_data(snapshot_server, "TAB638", Region="*", ContentsCode="BE0101N1", Tid="2024"))
    assert regions["size"] == [312, 1, 1] and sum(v is not None for v in regions["value"]) == 15


# ------------------------------------------------------------------------------------------- elimination
def test_elimination_by_sum_and_by_value_code(snapshot_server):
    by_sex = body(
        get_data(
            snapshot_server,
            "TAB1830",
            Bostadskommun="0580",
            Arbetsstallekommun="0581",
            Kon="1,2",
            ContentsCode="*",
            Tid="2021",
        )
    )
    total = body(
        get_data(
            snapshot_server, "TAB1830", Bostadskommun="0580", Arbetsstallekommun="0581", ContentsCode="*", Tid="2021"
        )
    )
    assert "Kon" not in total["id"]  # no eliminationValueCode: summed over Kon and dropped
    assert total["value"] == [sum(by_sex["value"])]
    emp = body(
        get_data(snapshot_server, "TAB3204", Region="05," + ",".join(OSTERGOTLAND), ContentsCode="000002XH", Tid="2024")
    )
    assert_shape(emp)
    # SNI2007 and Kon have eliminationValueCode (A-U+US, 1+2): kept with one category
    assert list(emp["dimension"]["SNI2007"]["category"]["index"]) == ["A-U+US"]
    assert list(emp["dimension"]["Kon"]["category"]["index"]) == ["1+2"]
    assert emp["value"][0] == sum(emp["value"][1:])  # county = sum of its municipalities


def test_synthetic_employment_is_consistent(snapshot_server):
    doc = body(
        get_data(
            snapshot_server,
            "TAB3204",
            Region="0580",
            SNI2007="*",
            Kon="1,2,1+2",
            ContentsCode="000002XH,000002XI",
            Tid="2024",
        )
    )
    assert_shape(doc)
    assert "status" not in doc  # every cell of a generated region is present
    day_total = cell(doc, SNI2007="A-U+US", Kon="1+2", ContentsCode="000002XH")
    night_total = cell(doc, SNI2007="A-U+US", Kon="1+2", ContentsCode="000002XI")
    groups = [c for c in doc["dimension"]["SNI2007"]["category"]["index"] if c != "A-U+US"]
    assert sum(cell(doc, SNI2007=g, Kon="1+2", ContentsCode="000002XH") for g in groups) == day_total
    assert day_total > night_total  # Linköping is a net in-commuting municipality
    men = cell(doc, SNI2007="Q", Kon="1", ContentsCode="000002XH")
    women = cell(doc, SNI2007="Q", Kon="2", ContentsCode="000002XH")
    assert women > 2 * men
    nat = body(get_data(snapshot_server, "TAB3204", Region="00", ContentsCode="000002XH", Tid="2024"))
    assert abs(nat["value"][0] - 5_260_643) < 50  # calibrated to the real national 2024 total


def test_synthetic_od_matches_real_commuting_totals(snapshot_server):
    real = body(
        get_data(
            snapshot_server,
            "TAB5839",
            Region=",".join(OSTERGOTLAND),
            Kon="4",
            ContentsCode="00000546,00000548",
            Tid="2020,2021",
        )
    )
    od = body(
        post_data(
            snapshot_server,
            "TAB1830",
            {
                "Bostadskommun": OSTERGOTLAND,
                "Arbetsstallekommun": ["*"],
                "ContentsCode": ["*"],
                "Tid": ["2020", "2021"],
            },
        )
    )
    assert_shape(od)
    assert od["size"] == [13, 290, 1, 2]
    for res in OSTERGOTLAND:
        for year in ("2020", "2021"):
            stay = cell(real, Region=res, ContentsCode="00000546", Tid=year)
            out = cell(real, Region=res, ContentsCode="00000548", Tid=year)
            row = [
                cell(od, Bostadskommun=res, Arbetsstallekommun=w, Tid=year)
                for w in od["dimension"]["Arbetsstallekommun"]["category"]["index"]
            ]
            assert sum(row) == stay + out
            assert cell(od, Bostadskommun=res, Arbetsstallekommun=res, Tid=year) == stay


# ------------------------------------------------------------------------------------------------- errors
def test_errors_are_problems(snapshot_server):
    cases = [
        (requests.get(f"{snapshot_server.url}/tables/NOPE123", timeout=10), 404, "NOPE123"),
        (get_data(snapshot_server, "NOPE123", Region="0580"), 404, "NOPE123"),
        (get_data(snapshot_server, "TAB638", Bogus="1", ContentsCode="BE0101N1", Tid="2024"), 400, "Bogus"),
        (get_data(snapshot_server, "TAB638", Region="9999", ContentsCode="BE0101N1", Tid="2024"), 400, "9999"),
        (get_data(snapshot_server, "TAB638", Region="0580", Tid="2024"), 400, "ContentsCode"),
        (get_data(snapshot_server, "TAB638", Region="0580", ContentsCode="BE0101N1", Tid="top(x)"), 400, "top(x)"),
    ]
    for resp, status, needle in cases:
        assert resp.status_code == status, resp.text
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        problem = body(resp)
        assert problem["status"] == status and needle in problem["detail"] and problem["title"]
    assert "mandatory" in body(cases[4][0])["detail"]


def test_too_many_cells_is_403(make_snapshot_server):
    server = make_snapshot_server(max_data_cells=1000)
    assert body(requests.get(f"{server.url}/config", timeout=10))["maxDataCells"] == 1000
    r = get_data(server, "TAB638", Region="*", ContentsCode="*", Tid="from(2022)")  # 312*2*3 = 1872
    assert r.status_code == 403 and "1872" in body(r)["detail"]
    ok = get_data(server, "TAB638", Region="*", ContentsCode="BE0101N1", Tid="from(2022)")  # 936
    assert ok.status_code == 200
    assert server.stats.max_cells_in_a_request == 936 and server.stats.responses_403 == 1


def test_rate_limit_429_with_retry_after(make_snapshot_server):
    server = make_snapshot_server(max_calls=3, time_window=2)
    codes = [requests.get(f"{server.url}/config", timeout=10).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    r = get_data(server, "TAB5839", Region="0580", ContentsCode="*", Tid="*")
    assert r.status_code == 429 and body(r)["status"] == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 2
    assert server.stats.responses_429 == 1
    time.sleep(int(r.headers["Retry-After"]) + 0.05)
    assert get_data(server, "TAB5839", Region="0580", ContentsCode="*", Tid="*").status_code == 200


# ------------------------------------------------------------------------------------------------- faults
def test_fault_injection(make_snapshot_server):
    server = make_snapshot_server(faults=Faults(rate_limit_every=2))
    sel = {"Region": "0580", "ContentsCode": "*", "Tid": "*"}
    statuses = [get_data(server, "TAB5839", **sel).status_code for _ in range(4)]
    assert statuses == [200, 429, 200, 429]
    server.set_faults(Faults(unavailable_every=2))
    r1, r2 = get_data(server, "TAB5839", **sel), get_data(server, "TAB5839", **sel)
    assert (r1.status_code, r2.status_code) == (200, 503) and "Retry-After" in r2.headers
    server.set_faults(Faults(truncate_every=1))
    cut = get_data(server, "TAB5839", **sel)
    assert cut.status_code == 200
    with pytest.raises(ValueError):
        json.loads(cut.content.decode("utf-8-sig", errors="replace"))
    server.set_faults(Faults(fail_first_n=2))
    assert [get_data(server, "TAB5839", **sel).status_code for _ in range(3)] == [503, 503, 200]
    server.set_faults(Faults())
    whole = body(get_data(server, "TAB5839", **sel))
    assert len(cut.content) < len(BOM + json.dumps(whole, ensure_ascii=False).encode()) * 0.75
    assert server.stats.truncated_responses == 1 and server.stats.responses_503 == 3


def test_stats_and_reset(make_snapshot_server):
    server = make_snapshot_server()
    requests.get(f"{server.url}/tables/TAB638/metadata", timeout=10)
    get_data(server, "TAB638", Region="0580,0581", ContentsCode="BE0101N1", Tid="top(3)")
    s = server.stats
    assert (s.metadata_requests, s.data_requests, s.cells_served, s.cells_per_request) == (1, 1, 6, [6])
    server.reset_stats()
    assert server.stats.data_requests == 0 and server.stats.cells_per_request == []


def test_million_cells_in_one_response(make_snapshot_server):
    server = make_snapshot_server(max_data_cells=1_000_000)
    r = post_data(
        server,
        "TAB1830",
        {"Bostadskommun": ["*"], "Arbetsstallekommun": ["*"], "Kon": ["1", "2"], "ContentsCode": ["*"], "Tid": ["*"]},
    )
    assert r.status_code == 200 and server.stats.cells_per_request == [841_000]
    doc = body(r)
    assert len(doc["value"]) == 841_000


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--host",
        "--port",
        "--max-data-cells",
        "--max-calls",
        "--time-window",
        "--rate-limit-every",
        "--unavailable-every",
        "--truncate-every",
        "--delay",
    ):
        assert flag in out
