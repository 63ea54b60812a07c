"""Municipal file source: discovery, PX/CSV/XLSX readers, column mapping and schema drift."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from extract.files import (
    RefusedFileError,
    discover,
    file_sha256,
    load_file_entries,
    read_file,
    read_file_source,
    scan_inbox,
)
from regionstat.errors import FileSourceError
from tests.conftest import REFERENCE_DATA

LKPG = REFERENCE_DATA / "linkoping_kommun_px"
COMMUTING_COLUMNS = ["flow_type", "district", "area", "period", "value", "status"]


@pytest.fixture(scope="module")
def entries() -> dict[str, dict]:
    # as dicts, so tests can vary an entry (read_file_source takes a FileSource or its dict form)
    return {e.name: dataclasses.asdict(e) for e in load_file_entries()}


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    d = tmp_path / "data" / "inbox" / "commuting"
    d.mkdir(parents=True)
    return d


def cell(table: pa.Table, **where: str) -> dict:
    mask = None
    for col, val in where.items():
        m = pc.equal(table[col], val)
        mask = m if mask is None else pc.and_(mask, m)
    rows = table.filter(mask).to_pylist()
    assert len(rows) == 1, (where, rows)
    return rows[0]


def landing_types_ok(t: pa.Table) -> None:
    for f in t.schema:
        expected = pa.float64() if f.name == "value" else pa.string()
        assert f.type == expected, f


# -- catalogue + discovery -----------------------------------------------------------------------------------


def test_catalogue_entries_map_to_real_px_variables(entries: dict[str, dict]) -> None:
    from extract.px import read_px

    pe12 = entries["linkoping_commuting_districts"]["columns"]
    assert list(pe12) == [v.name for v in read_px(LKPG / "PE12.px").variables]
    assert list(pe12.values()) == ["flow_type", "district", "area", "period"]
    fo05 = entries["linkoping_day_population_by_sector"]["columns"]
    assert list(fo05) == [v.name for v in read_px(LKPG / "FO05.px").variables]
    assert list(fo05.values()) == ["period", "district", "sex", "sni_group"]


def test_discover_pairs_files_with_entries(inbox: Path, entries: dict[str, dict]) -> None:
    shutil.copy(LKPG / "PE12.px", inbox / "PE12.px")
    shutil.copy(LKPG / "FO05.px", inbox / "FO05_2025.PX")
    (inbox / "kinda_commuting_2024.csv").write_text("flow_type,district,area,period,value\n", encoding="utf-8")
    (inbox / ".DS_Store").write_bytes(b"x")
    (inbox / "~$commuting.xlsx").write_bytes(b"lock")
    (inbox / "sub").mkdir()
    found = discover(inbox, list(entries.values()))
    assert [(p.name, e["name"]) for p, e in found] == [
        ("FO05_2025.PX", "linkoping_day_population_by_sector"),
        ("PE12.px", "linkoping_commuting_districts"),
        ("kinda_commuting_2024.csv", "municipal_commuting_csv"),
    ]


def test_discover_unknown_file_lists_patterns(inbox: Path, entries: dict[str, dict]) -> None:
    (inbox / "budget_2024.xlsx").write_bytes(b"x")
    with pytest.raises(FileSourceError) as ei:
        discover(inbox, list(entries.values()))
    msg = str(ei.value)
    assert "budget_2024.xlsx" in msg and "matches no catalogue file pattern" in msg
    for pattern in ("PE12*.px", "FO05*.px", "*commuting*.csv", "*commuting*.xlsx"):
        assert pattern in msg


def test_discover_missing_inbox_is_empty(tmp_path: Path, entries: dict[str, dict]) -> None:
    assert discover(tmp_path / "nope", list(entries.values())) == []


def test_file_sha256(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(b"abc")
    assert file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# -- PX sources ----------------------------------------------------------------------------------------------


def test_pe12_px_source(entries: dict[str, dict]) -> None:
    t = read_file_source(LKPG / "PE12.px", entries["linkoping_commuting_districts"])
    # the municipality comes from the catalogue entry: districts of two municipalities never collide
    assert t.column_names == ["flow_type", "district", "area", "period", "municipality", "value", "status"]
    assert t["municipality"].unique().to_pylist() == ["0580"]
    landing_types_ok(t)
    assert t.num_rows == 3 * 75 * 5 * 31
    for period, n in {"2004": 8_575, "2018": 11_626, "2021": 11_792}.items():
        assert cell(t, flow_type="Ut", district="0580", area="Annan", period=period)["value"] == n
    assert pc.sum(pc.equal(t["status"], "-")).as_py() == 4_618


def test_fo05_px_source(entries: dict[str, dict]) -> None:
    t = read_file_source(LKPG / "FO05.px", entries["linkoping_day_population_by_sector"])
    assert t.column_names == ["period", "district", "sex", "sni_group", "municipality", "value", "status"]
    landing_types_ok(t)
    assert t.num_rows == 17 * 75 * 3 * 17
    assert set(t["sex"].unique().to_pylist()) == {"Män", "Kvinnor", "Tot"}
    total = cell(t, period="2024", district="0580", sex="Tot", sni_group="100")["value"]
    men = cell(t, period="2024", district="0580", sex="Män", sni_group="100")["value"]
    women = cell(t, period="2024", district="0580", sex="Kvinnor", sni_group="100")["value"]
    assert total > 90_000 and abs(men + women - total) <= 5


def test_renamed_px_variable_is_schema_drift(tmp_path: Path, entries: dict[str, dict]) -> None:
    raw = (LKPG / "PE12.px").read_bytes().replace(b'"stadsdel"', b'"omr\xe5de_kod"')
    p = tmp_path / "PE12_2025.px"
    p.write_bytes(raw)
    with pytest.raises(FileSourceError) as ei:
        read_file_source(p, entries["linkoping_commuting_districts"])
    msg = str(ei.value)
    assert str(p) in msg and "'stadsdel'" in msg and "missing" in msg and "'område_kod'" in msg


def test_extra_px_variable_is_schema_drift(entries: dict[str, dict]) -> None:
    entry = dict(entries["linkoping_commuting_districts"])
    entry["columns"] = {k: v for k, v in entry["columns"].items() if k != "typ"}
    with pytest.raises(FileSourceError, match="undeclared source variable 'typ'"):
        read_file_source(LKPG / "PE12.px", entry)


# -- CSV -------------------------------------------------------------------------------------------------------

CSV_BODY = "flow_type,district,area,period,value\nUt,0580,Annan,2021,11792\nIn,0580,Annan,2021,..\nUt,110,Annan,2021,\n"


def test_csv_source(tmp_path: Path, entries: dict[str, dict]) -> None:
    p = tmp_path / "lkpg_commuting.csv"
    p.write_text(CSV_BODY, encoding="utf-8")
    t = read_file_source(p, entries["municipal_commuting_csv"])
    assert t.column_names == COMMUTING_COLUMNS
    landing_types_ok(t)
    assert t.to_pylist() == [
        {"flow_type": "Ut", "district": "0580", "area": "Annan", "period": "2021", "value": 11792.0, "status": None},
        {"flow_type": "In", "district": "0580", "area": "Annan", "period": "2021", "value": None, "status": ".."},
        {"flow_type": "Ut", "district": "110", "area": "Annan", "period": "2021", "value": None, "status": None},
    ]


def test_csv_semicolon_bom_crlf_decimal_comma(tmp_path: Path, entries: dict[str, dict]) -> None:
    p = tmp_path / "commuting_sv.csv"
    text = "flow_type;district;area;period;value\r\nUt;0580;Annan;2021;11 792\r\nIn;0580;Samma;2021;1,5\r\n"
    p.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    t = read_file_source(p, entries["municipal_commuting_csv"])
    assert t.column_names == COMMUTING_COLUMNS
    assert t["value"].to_pylist() == [11792.0, 1.5]
    assert t["district"].to_pylist() == ["0580", "0580"]


def test_csv_same_shape_as_px(tmp_path: Path, entries: dict[str, dict]) -> None:
    px_t = read_file_source(LKPG / "PE12.px", entries["linkoping_commuting_districts"])
    p = tmp_path / "pe12_commuting.csv"
    lines = ["flow_type,district,area,period,value"]
    for r in px_t.slice(0, 200).to_pylist():
        v = r["status"] if r["status"] else f"{r['value']:.0f}"
        lines.append(f"{r['flow_type']},{r['district']},{r['area']},{r['period']},{v}")
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    csv_t = read_file_source(p, entries["municipal_commuting_csv"])
    px_t = px_t.drop_columns(["municipality"])  # a constant of the PE12 entry; the generic CSV entry names none
    assert csv_t.schema == px_t.schema
    assert csv_t.equals(px_t.slice(0, 200))


def test_csv_text_value_names_line_and_column(tmp_path: Path, entries: dict[str, dict]) -> None:
    p = tmp_path / "bad_commuting.csv"
    p.write_text(CSV_BODY + "In,110,Annan,2021,elva\n", encoding="utf-8")
    with pytest.raises(FileSourceError) as ei:
        read_file_source(p, entries["municipal_commuting_csv"])
    assert ei.value.line == 5
    msg = str(ei.value)
    assert f"{p} line 5:" in msg and "'value'" in msg and "'elva'" in msg and "not a number" in msg


def test_csv_short_row(tmp_path: Path, entries: dict[str, dict]) -> None:
    p = tmp_path / "short_commuting.csv"
    p.write_text(CSV_BODY + "In,110,2021,3\n", encoding="utf-8")
    with pytest.raises(FileSourceError, match=r"line 5: row has 4 fields, the header has 5"):
        read_file_source(p, entries["municipal_commuting_csv"])


def test_csv_missing_column(tmp_path: Path, entries: dict[str, dict]) -> None:
    p = tmp_path / "drift_commuting.csv"
    p.write_text(CSV_BODY.replace("district,", "stadsdel,", 1), encoding="utf-8")
    with pytest.raises(FileSourceError) as ei:
        read_file_source(p, entries["municipal_commuting_csv"])
    assert "'district' missing" in str(ei.value) and ei.value.line == 1


def test_csv_encodings_detected(tmp_path: Path, entries: dict[str, dict]) -> None:
    body = CSV_BODY + "Ut,110,Område,2021,4\n"
    for encoding, expected in [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("cp1252", "cp1252"),
        ("latin-1", "cp1252"),  # the same bytes for every Swedish letter
    ]:
        p = tmp_path / f"{encoding}_commuting.csv"
        p.write_bytes(
            body.replace("Område", "Område \u2013 ö").encode(encoding, "replace")
            if encoding == "cp1252"
            else body.encode(encoding)
        )
        read = read_file(p, entries["municipal_commuting_csv"])
        assert read.encoding == expected, encoding
        assert "Område" in read.table["area"].to_pylist()[-1]
    e = tmp_path / "empty_commuting.csv"
    e.write_bytes(b"")
    with pytest.raises(FileSourceError, match="empty"):
        read_file_source(e, entries["municipal_commuting_csv"])


def test_csv_bom_only_oversized_field_and_utf16(tmp_path: Path, entries: dict[str, dict]) -> None:
    entry = entries["municipal_commuting_csv"]
    p = tmp_path / "bom_commuting.csv"
    p.write_bytes(b"\xef\xbb\xbf\n\n  \n")
    with pytest.raises(FileSourceError, match="no header line"):
        read_file_source(p, entry)
    p.write_bytes((CSV_BODY + "In,110," + "x" * 200_000 + ",2021,4\n").encode())
    with pytest.raises(FileSourceError, match=r"line 5: a field is longer than 131,072 characters"):
        read_file_source(p, entry)
    p.write_bytes(CSV_BODY.encode("utf-16"))
    with pytest.raises(FileSourceError, match="UTF-16"):
        read_file_source(p, entry)


def test_header_only_and_control_characters_refused(tmp_path: Path, entries: dict[str, dict]) -> None:
    entry = entries["municipal_commuting_csv"]
    p = tmp_path / "x_commuting.csv"
    p.write_text("flow_type,district,area,period,value\n\n", encoding="utf-8")
    with pytest.raises(FileSourceError, match="header only"):
        read_file_source(p, entry)
    p.write_text(CSV_BODY + "In,1\x0010,Annan,2021,4\n", encoding="utf-8")
    with pytest.raises(FileSourceError) as ei:
        read_file_source(p, entry)
    assert ei.value.line == 5 and "'1\\x0010'" in str(ei.value) and "control character" in str(ei.value)


def test_limits_from_the_catalogue_entry(tmp_path: Path, entries: dict[str, dict]) -> None:
    p = tmp_path / "x_commuting.csv"
    p.write_text(CSV_BODY, encoding="utf-8")
    small = {**entries["municipal_commuting_csv"], "limits": {"max_rows": 2}}
    with pytest.raises(FileSourceError, match=r"line 4: more than 2 data rows"):
        read_file_source(p, small)
    tiny = {**entries["municipal_commuting_csv"], "limits": {"max_file_bytes": 10}}
    with pytest.raises(FileSourceError, match="over the limit"):
        read_file_source(p, tiny)


def test_symlink_and_fifo_refused_unopened(tmp_path: Path, inbox: Path, entries: dict[str, dict]) -> None:
    import os

    secret = tmp_path / "secret.txt"
    secret.write_text("root:SECRET-FIRST-LINE\n")
    (inbox / "PE12.px").symlink_to(secret)
    os.mkfifo(inbox / "FO05.px")
    found = dict(scan_inbox(inbox, list(entries.values())))
    for name in ("PE12.px", "FO05.px"):
        assert isinstance(found[inbox / name], RefusedFileError)
    assert "symbolic link" in str(found[inbox / "PE12.px"]) and "SECRET" not in str(found[inbox / "PE12.px"])
    assert "FIFO" in str(found[inbox / "FO05.px"])
    with pytest.raises(RefusedFileError):  # reading it directly refuses too (O_NOFOLLOW), never blocks on the FIFO
        read_file_source(inbox / "FO05.px", entries["linkoping_day_population_by_sector"])
    with pytest.raises(RefusedFileError):
        read_file_source(inbox / "PE12.px", entries["linkoping_commuting_districts"])
    assert file_sha256(inbox / "FO05.px") == file_sha256(inbox / "FO05.px")  # an identity without opening it


# -- XLSX ------------------------------------------------------------------------------------------------------


def _xlsx(path: Path, rows: list[list[object]]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Pendling"
    for r in rows:
        ws.append(r)
    wb.create_sheet("Other").append(["ignored"])
    wb.save(path)
    return path


XLSX_ROWS: list[list[object]] = [
    ["flow_type", "district", "area", "period", "value"],
    ["Ut", "0580", "Annan", 2021, 11792],
    ["In", "0580", "Annan", "2021", ".."],
    [None, None, None, None, None],
    ["Ut", 110, "Samma", 2021, 12.5],
]


def test_xlsx_source(tmp_path: Path, entries: dict[str, dict]) -> None:
    p = _xlsx(tmp_path / "commuting_2021.xlsx", XLSX_ROWS)
    t = read_file_source(p, entries["municipal_commuting_xlsx"])
    assert t.column_names == COMMUTING_COLUMNS
    landing_types_ok(t)
    assert t["period"].to_pylist() == ["2021", "2021", "2021"]
    assert t["district"].to_pylist() == ["0580", "0580", "110"]
    assert t["value"].to_pylist() == [11792.0, None, 12.5]
    assert t["status"].to_pylist() == [None, "..", None]


def test_xlsx_title_row_above_header_is_skipped(tmp_path: Path, entries: dict[str, dict]) -> None:
    rows = [["Pendling Linköping 2021"], [], *XLSX_ROWS]
    p = _xlsx(tmp_path / "titled_commuting.xlsx", rows)
    t = read_file_source(p, entries["municipal_commuting_xlsx"])
    assert t.num_rows == 3 and t["value"].to_pylist()[0] == 11792.0


def test_xlsx_extra_header_row_without_real_header(tmp_path: Path, entries: dict[str, dict]) -> None:
    # Two header rows (Swedish labels above English codes), English row renamed: no row has all declared columns.
    rows = [
        ["Typ", "Stadsdel", "Område", "År", "Antal"],
        ["flow_type", "district", "area", "year", "value"],
        *XLSX_ROWS[1:],
    ]
    p = _xlsx(tmp_path / "twoheads_commuting.xlsx", rows)
    with pytest.raises(FileSourceError) as ei:
        read_file_source(p, entries["municipal_commuting_xlsx"])
    msg = str(ei.value)
    assert str(p) in msg and "'period'" in msg and "missing" in msg and ei.value.line == 2


def test_xlsx_text_value_names_row(tmp_path: Path, entries: dict[str, dict]) -> None:
    rows = [["Titel"], *XLSX_ROWS, ["Ut", "111", "Annan", 2021, "n/a"]]
    p = _xlsx(tmp_path / "bad_commuting.xlsx", rows)
    with pytest.raises(FileSourceError) as ei:
        read_file_source(p, entries["municipal_commuting_xlsx"])
    assert ei.value.line == 7 and "'n/a'" in str(ei.value)


def test_xlsx_not_a_workbook(tmp_path: Path, entries: dict[str, dict]) -> None:
    p = tmp_path / "broken_commuting.xlsx"
    p.write_bytes(b"not a zip")
    with pytest.raises(FileSourceError, match="cannot open as XLSX"):
        read_file_source(p, entries["municipal_commuting_xlsx"])


def test_unsupported_suffix(tmp_path: Path, entries: dict[str, dict]) -> None:
    p = tmp_path / "commuting.json"
    p.write_text("{}")
    with pytest.raises(FileSourceError, match="unsupported file type"):
        read_file_source(p, entries["municipal_commuting_csv"])


def test_catalogue_filesource_objects_work_too(inbox: Path) -> None:
    from regionstat.catalogue import load_catalogue

    files = list(load_catalogue().files)
    shutil.copy(LKPG / "PE12.px", inbox / "PE12.px")
    [(path, entry)] = discover(inbox, files)
    assert entry.name == "linkoping_commuting_districts"
    t = read_file_source(path, entry)
    assert t.column_names == [*COMMUTING_COLUMNS[:4], "municipality", "value", "status"]
    assert cell(t, flow_type="Ut", district="0580", area="Annan", period="2021")["value"] == 11_792
