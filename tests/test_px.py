"""PX reader: real files (Linköping kommun, SCB examples) and a corpus of broken inputs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from extract.px import read_px
from regionstat.errors import FileSourceError
from tests.conftest import REFERENCE_DATA

LKPG = REFERENCE_DATA / "linkoping_kommun_px"
EXAMPLES = REFERENCE_DATA / "pxweb_examples"
ALL_PX = sorted(LKPG.glob("*.px")) + sorted(EXAMPLES.glob("*.px"))


def cell(table: pa.Table, **where: str) -> dict:
    mask = None
    for col, val in where.items():
        m = pc.equal(table[col], val)
        mask = m if mask is None else pc.and_(mask, m)
    rows = table.filter(mask).to_pylist()
    assert len(rows) == 1, (where, rows)
    return rows[0]


@pytest.fixture(scope="module")
def ksi2242() -> pa.Table:
    return read_px(LKPG / "ksi2242.px").to_arrow()


@pytest.fixture(scope="module")
def pe12() -> pa.Table:
    return read_px(LKPG / "PE12.px").to_arrow()


# -- real files ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ALL_PX, ids=lambda p: p.name)
def test_every_reference_file_reads_in_landing_shape(path: Path) -> None:
    px = read_px(path)
    t = px.to_arrow()
    names = [v.name for v in px.variables]
    assert t.column_names == [*names, "value", "status"]
    assert px.stub + px.heading == names
    assert t.num_rows == len(px) == _prod(px.shape)
    for n in names:
        assert t.schema.field(n).type == pa.string()
    assert t.schema.field("value").type == pa.float64()
    assert t.schema.field("status").type == pa.string()
    # value and status are exclusive: exactly one of them is set per cell
    assert pc.all(pc.xor(pc.is_null(t["value"]), pc.is_null(t["status"]))).as_py()
    # codes are unique per variable, so every row is a distinct key
    assert t.group_by(names).aggregate([]).num_rows == t.num_rows


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def test_ksi2242_population_county_and_linkoping(ksi2242: pa.Table) -> None:
    assert cell(ksi2242, tid="2024", kvartal="Q4", kommun="05", indikator="Befolkning")["value"] == 472_446
    assert cell(ksi2242, tid="2024", kvartal="Q4", kommun="0580", indikator="Befolkning")["value"] == 168_035
    # The four cross-checked county totals of the reference README.
    for year, pop in {"2021": 469_704, "2022": 471_912, "2023": 472_298}.items():
        assert cell(ksi2242, tid=year, kvartal="Q4", kommun="05", indikator="Befolkning")["value"] == pop


def test_ksi2242_structure_and_symbols(ksi2242: pa.Table) -> None:
    px = read_px(LKPG / "ksi2242.px")
    assert px.encoding == "cp1252"
    assert px.stub == ["tid", "kvartal", "kommun"] and px.heading == ["indikator"]
    assert px.decimals == 1
    assert px.variable("kvartal").codes == ["Q1", "Q2", "Q3", "Q4"]
    kommun = px.variable("kommun")
    assert kommun.code_of("Linköping") == "0580"
    assert "Östergötlands län" in kommun.values
    counts = dict(zip(*[c.to_pylist() for c in ksi2242["status"].value_counts().flatten()], strict=True))
    assert counts[".."] == 23_588 and counts["-"] == 147
    assert px.get("CONTENTS") == "KS-indikatorer"
    assert px.get("PRECISION", "indikator", "Sysselsättningsgrad") == "1"


def test_ksi2242_cell_count_matches_its_variables() -> None:
    # speed is measured in `make bench`, not asserted here
    px = read_px(LKPG / "ksi2242.px")
    assert px.to_arrow().num_rows == 101_120


def test_pe12_out_commuting_linkoping(pe12: pa.Table) -> None:
    for year, n in {"2004": 8_575, "2018": 11_626, "2021": 11_792}.items():
        row = cell(pe12, typ="Ut", stadsdel="0580", område="Annan", tid=year)
        assert row["value"] == n and row["status"] is None
    # live and work in the municipality (matches TAB5839 00000546 for 2021)
    assert cell(pe12, typ="Ut", stadsdel="0580", område="Totkn", tid="2021")["value"] == 69_141


def test_pe12_variables() -> None:
    px = read_px(LKPG / "PE12.px")
    assert [v.name for v in px.variables] == ["typ", "stadsdel", "område", "tid"]
    assert px.variable("typ").codes == ["In", "Ut", "Netto"]
    assert px.variable("område").codes == ["Annan", "Samma", "Tot", "Lika", "Totkn"]
    assert px.variable("stadsdel").codes[-1] == "0580"
    assert px.variable("stadsdel").elimination == "Hela kommunen"
    # multi-line continuation strings are joined
    assert px.get("SOURCE").startswith("SCB (OSDB/Östgötadatabasen).  Sammanställning: Statistikgruppen, Analys")
    assert px.get("VALUENOTE", "område", "Pendlar annan kommun").startswith("Antal personer som arbetspendlar")


def test_use_codes_false_gives_value_texts(pe12: pa.Table) -> None:
    t = read_px(LKPG / "PE12.px").to_arrow(use_codes=False)
    assert t["typ"][0].as_py() == "Inpendling"
    assert t["stadsdel"][0].as_py() == "Linköpings norra omland"
    assert pc.equal(t["value"], pe12["value"]).to_pylist() == pc.equal(pe12["value"], pe12["value"]).to_pylist()


def test_fo05_variables() -> None:
    px = read_px(LKPG / "FO05.px")
    assert px.stub == ["tid", "stadsdel"] and px.heading == ["kön", "näringsgren"]
    assert px.variable("kön").codes == ["Män", "Kvinnor", "Tot"]
    assert px.variable("näringsgren").codes[-1] == "100"
    assert px.variable("näringsgren").domain == "snigrupper"
    assert px.get("TITLE") == "Förvärvsarbetande dagbefolkning efter tid, stadsdel, kön och näringsgren."


def test_county_population_example() -> None:
    t = read_px(EXAMPLES / "BE0101N1_county_population_2007_2008.px").to_arrow()
    assert cell(t, region="05", period="2007", sex="1")["value"] == 210_531
    assert cell(t, region="05", period="2007", sex="2")["value"] == 210_278
    px = read_px(EXAMPLES / "BE0101N1_county_population_2007_2008.px")
    period = px.variable("period")
    assert period.is_time and period.timeval == ["TLIST(A1)", "2007", "2008"]
    assert px.variable("region").values[3] == "05 Östergötland county"  # values wrap over several lines


def test_landuse_bilingual_example() -> None:
    px = read_px(EXAMPLES / "TAB005_landuse_municipality_2010_2015.px")
    t = px.to_arrow()
    assert cell(t, region="0580", **{"land use": "911"}, year="2010")["value"] == 142_744
    assert px.language == "en" and px.languages == ["en", "sv"]
    assert px.encoding == "iso8859-1"  # CODEPAGE wins over CHARSET
    region = px.variable("region")
    assert region.code == "REGION"
    assert region.labels["en"][0] == "Sweden" and region.labels["sv"][0] == "Riket"
    assert px.variable("land use").labels["sv"][-1] == "total landareal"
    assert px.get("TITLE", lang="sv").startswith("Markanvändningen i Sverige")
    assert px.get_list("STUB", lang="sv") == ["region", "markanvändning"]
    assert px.get("VALUES", "år", lang="sv") == ["2010", "2015"]
    assert px.symbol_labels["..."] == ".."  # DATASYMBOL3=".." declared
    assert px.get("DATASYMBOLSUM") == "*"
    assert pc.sum(pc.equal(t["status"], "..")).as_py() == 107


def test_datasymbols_come_through_as_status() -> None:
    px = read_px(EXAMPLES / "BE0101F1_datasymbols.px")
    t = px.to_arrow()
    assert px.stub == ["region", "age"] and px.heading == ["period", "sex"]
    women = t.filter(pc.equal(t["sex"], "2")).slice(0, 6).to_pylist()
    assert [r["status"] for r in women] == [".", "..", "...", "....", ".....", "......"]
    assert all(r["value"] is None for r in women)
    assert cell(t, region="00", age="20", period="2003", sex="1")["value"] == 456
    assert cell(t, region="0115", age="22", period="2003", sex="2")["value"] == 23
    assert px.symbol_labels == {
        ".": "one",
        "..": "two",
        "...": "three",
        "....": "four",
        ".....": "five",
        "......": "six",
        "-": "-",
    }
    assert px.get("DATASYMBOLSUM") == "sum"
    assert px.get("CELLNOTE", "*", "20", "*", "men") == "Cellnote 20 year old men"


# -- synthetic but well-formed ---------------------------------------------------------------------------------

MINI = (
    'CHARSET="ANSI";\nLANGUAGE="sv";\nDECIMALS=1;\nMATRIX="T1";\nTITLE="Test; med semikolon";\n'
    'STUB="region";\nHEADING="år","kön";\n'
    'VALUES("region")="Linköping",\n"Norrköping";\nVALUES("år")="2020","2021";\n'
    'VALUES("kön")="män","kvinnor";\nCODES("region")="0580","0581";\nCODES("kön")="1","2";\n'
    'TIMEVAL("år")=TLIST(A1, "2020"-"2021");\nVALUENOTE("region","Linköping")="Note (med parentes)";\n'
    'DATASYMBOLNIL="noll";\n'
    'DATA=\n1.5 2\t3 "-"\n5 ".." 7,8;\n'
)


def test_minimal_ansi_with_tabs_commas_and_symbols() -> None:
    px = read_px(MINI.encode("cp1252"), name="mini.px")
    t = px.to_arrow()
    assert t.column_names == ["region", "år", "kön", "value", "status"]
    assert t["region"].to_pylist() == ["0580"] * 4 + ["0581"] * 4
    assert t["år"].to_pylist() == ["2020", "2020", "2021", "2021"] * 2
    assert t["kön"].to_pylist() == ["1", "2"] * 4
    assert t["value"].to_pylist() == [1.5, 2, 3, None, 5, None, 7, 8]
    assert t["status"].to_pylist() == [None, None, None, "-", None, "..", None, None]
    assert px.get("TITLE") == "Test; med semikolon"
    assert px.get("VALUENOTE", "region", "Linköping") == "Note (med parentes)"
    assert px.variable("år").codes == ["2020", "2021"]  # no CODES: the values
    assert px.symbol_labels["-"] == "noll"


def test_utf8_with_bom_and_no_charset() -> None:
    text = MINI.replace('CHARSET="ANSI";\n', "")
    px = read_px(b"\xef\xbb\xbf" + text.encode("utf-8"), name="utf8.px")
    assert px.encoding == "utf-8"
    assert px.variable("region").values == ["Linköping", "Norrköping"]
    assert px.to_arrow().num_rows == 8


def test_quoted_numbers_and_unquoted_symbols() -> None:
    text = MINI.replace('1.5 2\t3 "-"\n5 ".." 7,8;', '"1.5" 2 3 -\n5 .. 7 8;')
    t = read_px(text.encode("cp1252")).to_arrow()
    assert t["value"].to_pylist() == [1.5, 2, 3, None, 5, None, 7, 8]
    assert t["status"].to_pylist() == [None, None, None, "-", None, "..", None, None]


# -- bad inputs ------------------------------------------------------------------------------------------------


def _expect(tmp_path: Path, name: str, data: bytes, *fragments: str, line: int | None = None) -> FileSourceError:
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(FileSourceError) as ei:
        read_px(p)
    msg = str(ei.value)
    assert str(p) in msg
    for f in fragments:
        assert f in msg, msg
    if line is not None:
        assert ei.value.line == line and f"line {line}:" in msg, msg
    return ei.value


def test_utf8_file_declaring_ansi(tmp_path: Path) -> None:
    _expect(tmp_path, "wrong.px", MINI.encode("utf-8"), 'CHARSET="ANSI"', "UTF-8", line=7)


def test_real_file_resaved_as_utf8(tmp_path: Path) -> None:
    text = (LKPG / "PE12.px").read_bytes().decode("cp1252")
    err = _expect(tmp_path, "PE12.px", text.encode("utf-8"), "wrong encoding")
    assert err.line is not None


def test_ansi_bytes_without_charset(tmp_path: Path) -> None:
    data = MINI.replace('CHARSET="ANSI";\n', "").encode("cp1252")
    _expect(tmp_path, "nocharset.px", data, "UTF-8", "0xe5", line=6)


def test_empty_file(tmp_path: Path) -> None:
    _expect(tmp_path, "empty.px", b"", "empty", line=1)
    _expect(tmp_path, "blank.px", b"  \n\n", "empty")


def test_truncated_data(tmp_path: Path) -> None:
    raw = (LKPG / "PE12.px").read_bytes()
    err = _expect(tmp_path, "PE12.px", raw[: len(raw) - 5000], "not terminated", "truncated", "34,875")
    assert err.line == raw[: len(raw) - 5000].count(b"\n") + 1


def test_data_count_mismatch(tmp_path: Path) -> None:
    data = MINI.replace("7,8;", "7;").encode("cp1252")
    _expect(tmp_path, "short.px", data, "7 cells", "8", line=19)
    data = MINI.replace("7,8;", "7 8 9;").encode("cp1252")
    _expect(tmp_path, "long.px", data, "9 cells")


def test_no_data_keyword(tmp_path: Path) -> None:
    raw = (EXAMPLES / "BE0101N1_county_population_2007_2008.px").read_bytes()
    _expect(tmp_path, "cut.px", raw[: raw.index(b"DATA=")], "no DATA=")


def test_garbage_cell_names_its_line(tmp_path: Path) -> None:
    data = MINI.replace('5 ".." 7,8;', '5 ".." abc 8;').encode("cp1252")
    _expect(tmp_path, "garbage.px", data, "'abc'", "cell 7", line=19)


def test_codes_and_values_disagree(tmp_path: Path) -> None:
    data = MINI.replace('CODES("kön")="1","2";', 'CODES("kön")="1";').encode("cp1252")
    _expect(tmp_path, "codes.px", data, "'kön'", "2 VALUES but 1 CODES", line=13)


def test_unbalanced_quote(tmp_path: Path) -> None:
    data = MINI.replace('MATRIX="T1";', 'MATRIX="T1;').encode("cp1252")
    _expect(tmp_path, "quote.px", data, "MATRIX", "not closed", line=4)


def test_not_a_px_file(tmp_path: Path) -> None:
    _expect(tmp_path, "hello.px", b"hello world\n", "KEYWORD=", line=1)


def test_missing_values_keyword(tmp_path: Path) -> None:
    data = MINI.replace('VALUES("kön")="män","kvinnor";\n', "").replace('CODES("kön")="1","2";\n', "")
    _expect(tmp_path, "novalues.px", data.encode("cp1252"), "'kön'", "no VALUES")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileSourceError, match="cannot read"):
        read_px(tmp_path / "nope.px")
