"""Issue 13 items 4 and 6: the offline snapshot says what it covers, and catalogue selections hold against
SCB's real (recorded) metadata. Real HTTP to the snapshot server on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extract.pipeline import extract_all
from regionstat.settings import Settings


def test_snapshot_metadata_publishes_coverage(snapshot_server) -> None:
    """The snapshot lists the regions it holds per table; SCB's own metadata fields stay as recorded."""
    import requests

    doc = json.loads(requests.get(f"{snapshot_server.url}/tables/TAB638/metadata", timeout=30).content)
    coverage = doc["extension"]["regionstat"]["coverage"]
    assert sorted(coverage["Region"]) == [
        "00", "05", "0509", "0512", "0513", "0560", "0561", "0562", "0563", "0580", "0581", "0582", "0583", "0584",
        "0586",
    ]  # fmt: skip
    assert "px" in doc["extension"]  # SCB's own extension untouched


def test_region_set_beyond_the_snapshot_fails_up_front_pointing_to_live(tmp_path: Path) -> None:
    """REGIONSTAT_REGION_SET=sweden offline: no batch of nulls lands; each table says what is missing."""
    settings = Settings(data_dir=tmp_path, region_set="sweden")
    results = {
        r.source_name: r for r in extract_all(["population_tab638", "commuting_totals_tab5839"], settings=settings)
    }
    pop = results["population_tab638"]
    assert pop.status == "failed"
    assert pop.message.startswith(
        "table TAB638: the offline snapshot has no Region data for 297 of the 312 regions region set 'sweden' asks for"
    )
    assert "use --live" in pop.message
    assert results["commuting_totals_tab5839"].message.startswith(
        "table TAB5839: the offline snapshot has no Region data for 277 of the 290 regions"
    )
    assert not list((tmp_path / "landing").rglob("*.parquet"))


@pytest.mark.parametrize("region_set", ["ostergotland"])
def test_covered_region_set_lands_every_table(tmp_path: Path, region_set: str) -> None:
    results = extract_all(
        ["population_tab638", "land_area_tab628"], settings=Settings(data_dir=tmp_path, region_set=region_set)
    )
    assert [r.status for r in results] == ["landed", "landed"]


# -- check-catalogue against SCB's recorded metadata (real HTTP) ------------------------------------------

RECORDED = Path(__file__).resolve().parent.parent / "reference" / "data" / "scb_v2_metadata"


@pytest.fixture(scope="module")
def recorded_api():
    """A tiny PxWeb v2 stand-in serving SCB's recorded metadata files (``<TABLE>_metadata_sv.json``) as they were
    fetched: ``/config``, ``/tables/{id}/metadata``; 404 for other tables, 400 for a codelist (its values were not
    recorded). Real HTTP on loopback."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qsl, urlsplit

    config = {
        "apiVersion": "2.0.0",
        "appVersion": "recorded-metadata",
        "languages": [{"id": "sv", "label": "Svenska"}],
        "defaultLanguage": "sv",
        "maxDataCells": 150000,
        "maxCallsPerTimeWindow": 30,
        "timeWindow": 10,
        "license": "CC0",
        "defaultDataFormat": "json-stat2",
        "dataFormats": ["json-stat2"],
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json; charset=UTF-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            route = parts.path.removeprefix("/api/v2/").strip("/").split("/")
            params = dict(parse_qsl(parts.query))
            if route == ["config"]:
                return self._send(200, json.dumps(config).encode())
            path = RECORDED / f"{route[1]}_metadata_sv.json" if len(route) == 3 and route[2] == "metadata" else None
            problem = ("application/problem+json", {"type": "about:blank", "title": "Not Found", "status": 404})
            if path is None or not path.exists():
                return self._send(404, json.dumps(problem[1]).encode(), problem[0])
            if any(k.lower().startswith("codelist[") for k in params):
                bad = {"title": "Bad Request", "status": 400, "detail": "codelist values were not recorded"}
                return self._send(400, json.dumps(bad).encode(), problem[0])
            return self._send(200, path.read_bytes())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v2"
    server.shutdown()
    server.server_close()


def _check(url: str, tmp_path: Path, catalogue_path: Path | None = None) -> list[str]:
    from extract.catalogue_check import check_catalogue
    from extract.pipeline import make_client
    from regionstat.catalogue import load_catalogue

    catalogue = load_catalogue(catalogue_path)
    settings = Settings(data_dir=tmp_path, api_url=url)
    found = check_catalogue(make_client(url, settings, catalogue), catalogue, catalogue.region_set())
    return [str(m).replace(url, "<api>") for m in found]


def test_catalogue_selections_hold_against_scbs_recorded_metadata(recorded_api: str, tmp_path: Path) -> None:
    """Every recorded table accepts the catalogue's selections (explicit totals included); the others are named."""
    assert _check(recorded_api, tmp_path) == [
        "LandarealTatortN (localities): no such table at this API",
        "LandarealTatortN (localities_2018): no such table at this API",
        "TAB3204 (employment_by_sector): no such table at this API",
        "TAB1830 (commuting_flows): no such table at this API",
        "TAB3267 (commuting_totals_tab3267): no such table at this API",
    ]


def test_check_catalogue_reports_every_mismatch(recorded_api: str, tmp_path: Path) -> None:
    """Wrong codes (SCB spells TAB5557's total sex 'TotSa'), unknown variables, codelists and a mandatory variable
    left out: each one reported with table, variable and code, all in one run."""
    import yaml

    from regionstat.catalogue import CATALOGUE_PATH

    raw = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    by_table: dict = {}
    for source in raw["sources"]:  # the first source of each table (TAB638 also feeds population_by_age)
        by_table.setdefault(source["table"], source)
    by_table["TAB5557"]["selection"]["Kon"] = ["TotSA"]
    by_table["TAB638"]["selection"]["Region"] = {"codelist": "agg_RegionLA2018", "values": "*"}
    by_table["TAB628"]["selection"]["Kön"] = ["1+2"]
    by_table["TAB628"]["selection"]["Region"] = {"codelist": "agg_RegionNope", "values": "*"}
    del by_table["TAB5839"]["selection"]["Tid"]
    raw["sources"] = [s for s in raw["sources"] if s["table"] in ("TAB638", "TAB5557", "TAB628", "TAB5839")]
    raw["series"] = [s for s in raw["series"] if s["source_table"] in ("TAB638", "TAB5557", "TAB628", "TAB5839")]
    raw.pop("dbt_sources", None)
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert _check(recorded_api, tmp_path, path) == [
        "TAB638 (population_tab638) Region: codelist 'agg_RegionLA2018' is offered, but its values could not be "
        "read: GET <api>/tables/TAB638/metadata failed with HTTP 400: codelist values were not recorded",
        "TAB5557 (population_tab5557) Kon 'TotSA': variable 'Kon' has no value code 'TotSA'",
        "TAB628 (land_area_tab628) Region: codelist 'agg_RegionNope' not offered (has: vs_RegionKommun07EjAggr, "
        "vs_RegionLän99EjAggr, vs_RegionRiket99)",
        "TAB628 (land_area_tab628) Kön: no such variable (has: Region, Kon, ContentsCode, Tid)",
        "TAB5839 (commuting_totals_tab5839) Tid: not selected, and SCB does not allow eliminating it",
    ]


def test_check_catalogue_cli_against_the_snapshot(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from regionstat.cli.main import main

    assert main(["check-catalogue"]) == 0
    out = capsys.readouterr().out
    assert "discover: LandarealTatortN (localities, localities_2018) is not a confirmed v2 id" in out
    assert "discover:   LandarealTatortN: Folkmängd och landareal i tätorter" in out
    assert "to verify live: TAB3204" not in out  # its codes are settled in the catalogue


@pytest.fixture
def recording_api():
    """Serves SCB's recorded TAB638 metadata and records every request (method, path, query pairs, body); data
    requests get a 400 problem, so a test sees exactly what the client sent. Real HTTP on loopback."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qsl, urlsplit

    seen: list[tuple[str, str, list[tuple[str, str]], bytes]] = []
    config = {"apiVersion": "2.0.0", "maxDataCells": 150000, "maxCallsPerTimeWindow": 30, "timeWindow": 10}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, method: str) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((method, parts.path, parse_qsl(parts.query), body))
            if parts.path.endswith("/config"):
                status, payload = 200, json.dumps(config).encode()
            elif parts.path.endswith("/tables/TAB638/metadata"):
                status, payload = 200, (RECORDED / "TAB638_metadata_sv.json").read_bytes()
            else:
                status, payload = (
                    400,
                    json.dumps({"title": "Bad Request", "status": 400, "detail": "recorded"}).encode(),
                )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v2", seen
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_codelists_and_valuecodes_are_sent_as_the_spec_says(recording_api, tmp_path: Path, method: str) -> None:
    """GET: ``valuecodes[VAR]`` and ``codelist[VAR]`` (deepObject); POST: ``codelist`` in the selection item; the
    metadata is read with the codelist applied."""
    from extract.pxweb import PxWebClient
    from regionstat.errors import PxWebError

    url, seen = recording_api
    client = PxWebClient(url, state_dir=tmp_path, get_url_limit=10 if method == "POST" else 2000)
    selection = {"Region": ["05"], "Alder": ["tot"], "ContentsCode": ["BE0101N1"], "Tid": ["2024"]}
    with pytest.raises(PxWebError):
        client.fetch("TAB638", selection, codelists={"Region": "vs_RegionLän07"})
    metadata = [q for m, p, q, _ in seen if p.endswith("/metadata")]
    assert ("codelist[Region]", "vs_RegionLän07") in metadata[0]
    data = [(m, q, b) for m, p, q, b in seen if p.endswith("/data")]
    sent_method, query, body = data[0]
    assert sent_method == method
    if method == "GET":
        assert ("valuecodes[Region]", "05") in query and ("codelist[Region]", "vs_RegionLän07") in query
        assert not any(k.startswith("valueCodes") for k, _ in query)
    else:
        items = {i["variableCode"]: i for i in json.loads(body)["selection"]}
        assert items["Region"] == {"variableCode": "Region", "codelist": "vs_RegionLän07", "valueCodes": ["05"]}
        assert "codelist" not in items["Alder"]


def test_totals_left_to_elimination_are_named(recorded_api: str, tmp_path: Path) -> None:
    """The catalogue before explicit totals: each total SCB's metadata offers is named with its real code."""
    import yaml

    from extract.catalogue_check import elimination_notes
    from extract.pipeline import make_client
    from regionstat.catalogue import CATALOGUE_PATH, load_catalogue

    raw = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    by_table: dict = {}
    for source in raw["sources"]:  # the first source of each table (TAB638 also feeds population_by_age)
        by_table.setdefault(source["table"], source)
    del by_table["TAB638"]["selection"]["Alder"], by_table["TAB5557"]["selection"]["Kon"]
    del by_table["TAB628"]["selection"]["Kon"]
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    catalogue = load_catalogue(path)
    client = make_client(recorded_api, Settings(data_dir=tmp_path, api_url=recorded_api), catalogue)
    assert elimination_notes(client, catalogue, catalogue.region_set()) == [
        "TAB638 (population_tab638) Alder: eliminated, but the table has the total 'tot' to select explicitly",
        "TAB5557 (population_tab5557) Kon: eliminated, but the table has the total 'TotSa' to select explicitly",
        "TAB628 (land_area_tab628) Kon: eliminated, but the table has the total '1+2' to select explicitly",
    ]
    # the catalogue as it is leaves none of them to elimination
    current = load_catalogue()
    assert (
        elimination_notes(
            make_client(recorded_api, Settings(data_dir=tmp_path), current), current, current.region_set()
        )
        == []
    )


# -- TAB3204 Fodelseregion and v2-id discovery (issue 13) -------------------------------------------------


def _catalogue_of(tmp_path: Path, tables: set[str], edit=None) -> Path:
    """The bundled catalogue cut down to ``tables`` (their series too), optionally edited per source."""
    import yaml

    from regionstat.catalogue import CATALOGUE_PATH

    raw = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    raw["sources"] = [s for s in raw["sources"] if s["table"] in tables]
    raw["series"] = [s for s in raw["series"] if s["source_table"] in tables]
    raw.pop("dbt_sources", None)
    for source in raw["sources"]:
        if edit:
            edit(source)
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_tab3204_selects_its_birth_region_total(snapshot_server, tmp_path: Path) -> None:
    """The catalogue names Fodelseregion's total; the snapshot lists only that code (it holds totals only), so a
    selection of SCB's in/ut is reported offline, and leaving the variable out is named as an elimination."""
    from extract.catalogue_check import check_catalogue, elimination_notes
    from extract.pipeline import make_client
    from regionstat.catalogue import load_catalogue

    url = snapshot_server.url
    current = load_catalogue()
    assert current.source("employment_by_sector").selection["Fodelseregion"] == ["tot"]
    client = make_client(url, Settings(data_dir=tmp_path, api_url=url), current)
    meta = client.metadata("TAB3204")
    assert meta.variable("Fodelseregion").codes == ("tot",) and meta.variable("Fodelseregion").elimination
    assert any("carries the total (tot, 'totalt') only" in note for note in meta.raw["note"])
    assert check_catalogue(client, current, current.region_set()) == []

    def born_abroad(source: dict) -> None:
        source["selection"]["Fodelseregion"] = ["ut"]

    abroad = load_catalogue(_catalogue_of(tmp_path, {"TAB3204"}, born_abroad))
    assert [str(m) for m in check_catalogue(client, abroad, abroad.region_set())] == [
        "TAB3204 (employment_by_sector) Fodelseregion 'ut': variable 'Fodelseregion' has no value code 'ut'"
    ]

    def eliminated(source: dict) -> None:
        del source["selection"]["Fodelseregion"]

    before = load_catalogue(_catalogue_of(tmp_path, {"TAB3204"}, eliminated))
    assert elimination_notes(client, before, before.region_set()) == [
        "TAB3204 (employment_by_sector) Fodelseregion: eliminated, but the table has the total 'tot' to select "
        "explicitly"
    ]
    # the selected total returns exactly the figures elimination returned
    sel = {"Region": ["0580", "05"], "SNI2007": "*", "Kon": ["1", "2"], "ContentsCode": ["000002XH"], "Tid": ["2024"]}
    total = client.fetch("TAB3204", {**sel, "Fodelseregion": ["tot"]})
    assert set(total.column("Fodelseregion").to_pylist()) == {"tot"}
    assert total.column("value").to_pylist() == client.fetch("TAB3204", sel).column("value").to_pylist()


def test_discovery_lists_the_table_search_candidates(snapshot_server, tmp_path: Path) -> None:
    """Sources with `discover:` get the API's /tables?query= hits, each checked against their selections."""
    from extract.catalogue_check import discover_tables
    from extract.pipeline import make_client
    from regionstat.catalogue import load_catalogue

    catalogue = load_catalogue()
    assert [s.name for s in catalogue.sources if s.discover] == ["localities", "localities_2018"]
    client = make_client(snapshot_server.url, Settings(data_dir=tmp_path, api_url=snapshot_server.url), catalogue)
    found = discover_tables(client, catalogue, catalogue.region_set())
    assert [line for d in found for line in d.lines()] == [
        "LandarealTatortN (localities, localities_2018) is not a confirmed v2 id; GET /tables?query=tätort "
        "landareal: 2 table(s)",
        "  LandarealTatortN: Folkmängd och landareal i tätorter efter tätort, tabellinnehåll och år (2023-2023; "
        "variables: tätort, tabellinnehåll, år); fits localities; not localities_2018 (Tid '2018': variable 'Tid' "
        "has no value code '2018')",
        "  LandarealTatortN_SYNTHETIC2018: SYNTHETIC: Folkmängd och landareal i tätorter 2018 (avgränsning 2018) "
        "(2018-2018; variables: tätort, tabellinnehåll, år); not localities (Tid '2023': variable 'Tid' has no "
        "value code '2023'); fits localities_2018",
        "  set the right id as `table:` of localities, localities_2018 (and `source_table:` of their series) in the "
        "catalogue, drop `discover`/`verify_live`, run `regionstat generate`",
    ]
    assert [c.fits for c in found[0].candidates] == [["localities"], ["localities_2018"]]
    first = discover_tables(client, catalogue, catalogue.region_set(), limit=1)[0]
    assert first.lines()[0].endswith(": 1 of 2 table(s)") and len(first.candidates) == 1
    # the server filters by every word of the query: no table is about both tätorter and pendlare
    assert client.search_tables("tätort pendlare") == ([], 0)


def test_discovery_against_an_api_without_table_search(recorded_api: str, tmp_path: Path) -> None:
    """A failed search is one line naming the query and why; the catalogue check itself is unaffected."""
    from extract.catalogue_check import discover_tables
    from extract.pipeline import make_client
    from regionstat.catalogue import load_catalogue

    catalogue = load_catalogue()
    client = make_client(recorded_api, Settings(data_dir=tmp_path, api_url=recorded_api), catalogue)
    [found] = discover_tables(client, catalogue, catalogue.region_set())
    assert found.candidates == () and found.error and "/tables failed with HTTP 404" in found.error
    assert found.lines() == [
        "LandarealTatortN (localities, localities_2018) is not a confirmed v2 id; GET /tables?query=tätort "
        f"landareal failed: {found.error}"
    ]
