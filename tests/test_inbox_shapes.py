"""PxWeb CSV exports and OD files in the inbox: the real county RAMS 2018 files and the Norrbotten OD fixture read
with the right totals; broken variants give one-line errors naming file, line and value. No warehouse here (cheap);
tests/test_inbox_corpus.py runs some of the bad variants through a real `regionstat run`."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from extract.bundled import BUNDLED_INBOX_FILES, bundled_paths, drop_bundled
from extract.files import load_file_entries, matching_entries, read_file
from extract.pipeline import extract_inbox
from regionstat.catalogue import FileSource, load_catalogue, load_regions
from regionstat.errors import FileSourceError
from regionstat.settings import Settings
from tests.conftest import REFERENCE_DATA

RAMS = REFERENCE_DATA / "county_rams_2018"
NIGHT = RAMS / "AM0207I5_20230705-155636.csv"
DAY = RAMS / "AM0207I6_20230706-115023.csv"
MATRIX = RAMS / "AM0207AC_20230705-141955.csv"
NORRBOTTEN = REFERENCE_DATA / "commuting_od_fixtures" / "norrbotten_ArRegPend2_2024_totalt.csv"
EMPLOYMENT_COLUMNS = ["region", "region_label", "sni_group", "sni_label", "period", "basis", "value", "status"]
OD_COLUMNS = ["residence_region", "residence_label", "work_region", "work_label", "sex", "period", "value", "status"]
SNI_GROUPS = ["A", "B+C", "D+E", "F", "G", "H", "I", "J", "K", "L", "M+N", "O", "P", "Q", "R+S+T+U"]


@pytest.fixture(scope="module")
def entries() -> dict[str, FileSource]:
    return {e.name: e for e in load_file_entries()}


def entry_for(path: Path, entries: dict[str, FileSource]) -> FileSource:
    [entry] = matching_entries(path.name, list(entries.values()))
    return entry


def total(t: pa.Table, **where: str) -> float:
    mask = pa.array([True] * t.num_rows)
    for column, value in where.items():
        mask = pc.and_(mask, pc.equal(t[column], value))
    return pc.sum(t.filter(mask)["value"]).as_py()


COUNTIES = sorted(r.code for r in load_regions() if r.level == "county")


# -- the real files ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "basis", "region_05", "sweden"), [(NIGHT, "night", 216_877, 4_927_941), (DAY, "day", 213_744, 4_920_748)]
)
def test_rams_sni_exports_read_with_the_published_totals(
    path: Path, basis: str, region_05: int, sweden: int, entries: dict[str, FileSource]
) -> None:
    entry = entry_for(path, entries)
    read = read_file(path, entry)
    t = read.table
    assert read.encoding == "cp1252"  # ISO-8859-1 as SCB writes it; cp1252 agrees on every letter in it
    assert t.column_names == EMPLOYMENT_COLUMNS
    assert t.num_rows == 21 * 15
    assert sorted(t["region"].unique().to_pylist()) == COUNTIES  # no Sweden row: Sweden is the sum
    assert sorted(t["sni_group"].unique().to_pylist()) == sorted(SNI_GROUPS)  # no total, no unknown industry
    assert t["basis"].unique().to_pylist() == [basis] and t["period"].unique().to_pylist() == ["2018"]
    assert total(t, region="05") == region_05
    assert total(t) == sweden
    assert pc.all(pc.is_null(t["status"])).as_py()
    row = t.filter(pc.and_(pc.equal(t["region"], "05"), pc.equal(t["sni_group"], "B+C"))).to_pylist()[0]
    assert row["region_label"] == "Östergötland county"
    assert row["sni_label"] == "mining, quarrying, manufacturing"
    assert entry.table_id(path.name) == path.name[:8]  # _source_table: the matrix id, AM0207I5 / AM0207I6


def test_rams_commuting_matrix_reads_with_the_published_totals(entries: dict[str, FileSource]) -> None:
    entry = entry_for(MATRIX, entries)
    t = read_file(MATRIX, entry).table
    assert t.column_names == OD_COLUMNS
    assert t.num_rows == 21 * 21
    assert t["sex"].unique().to_pylist() == ["total"]  # "men and women" recoded by the entry
    assert total(t, residence_region="05") == 218_734  # 05 residents in employment
    assert total(t, work_region="05") == 215_778  # employed in 05
    assert total(t, residence_region="05", work_region="05") == 205_186  # live and work in 05
    assert total(t, residence_region="05", work_region="01") == 4_476  # the largest flow out of 05
    assert entry.table_id(MATRIX.name) == "AM0207AC"


def test_norrbotten_od_fixture_reads_with_its_own_total(entries: dict[str, FileSource]) -> None:
    with NORRBOTTEN.open(encoding="utf-8", newline="") as fh:  # the expected figures, straight from the file
        rows = list(csv.DictReader(fh))
    by_residence: dict[str, int] = defaultdict(int)
    for r in rows:
        by_residence[r["residence_code"]] += int(r["employed"])
    entry = entry_for(NORRBOTTEN, entries)
    read = read_file(NORRBOTTEN, entry)
    t = read.table
    assert read.encoding == "utf-8"
    assert sorted(t.column_names) == sorted(OD_COLUMNS)  # the *_focus flags are dropped, as declared
    assert t.num_rows == len(rows) == 14 * 14
    assert total(t) == sum(int(r["employed"]) for r in rows)
    assert total(t, residence_region="2580") == by_residence["2580"]
    assert total(t, residence_region="2580", work_region="2580") == 37_443  # Luleå live and work (README)
    assert t["sex"].unique().to_pylist() == ["total"] and t["period"].unique().to_pylist() == ["2024"]
    assert entry.table_id(NORRBOTTEN.name) == NORRBOTTEN.name  # not a PxWeb export: each file its own series


# -- broken variants -----------------------------------------------------------------------------------------


def variant(tmp_path: Path, source: Path, name: str, old: bytes, new: bytes) -> Path:
    raw = source.read_bytes()
    assert old in raw
    p = tmp_path / name
    p.write_bytes(raw.replace(old, new, 1))
    return p


def one_line_error(path: Path, entry: FileSource) -> str:
    with pytest.raises(FileSourceError) as err:
        read_file(path, entry)
    message = str(err.value)
    assert "\n" not in message and path.name in message
    return message


def test_unknown_sni_label_names_line_and_value(tmp_path: Path, entries: dict[str, FileSource]) -> None:
    p = variant(tmp_path, DAY, "AM0207I6_x.csv", b'"G trade",165754', b'"X trade",165754')
    message = one_line_error(p, entries["county_employment_by_workplace"])
    assert "line 6" in message and "'X trade'" in message and "unknown sni_group code" in message


def test_missing_code_prefix_names_line_and_value(tmp_path: Path, entries: dict[str, FileSource]) -> None:
    p = variant(tmp_path, NIGHT, "AM0207I5_x.csv", b'"01 Stockholm county"', b'"Stockholm county"')
    message = one_line_error(p, entries["county_employment_by_residence"])
    assert "line 2" in message and "'Stockholm county'" in message and "unknown region code" in message


def test_text_in_a_year_column_names_line_and_column(tmp_path: Path, entries: dict[str, FileSource]) -> None:
    p = variant(tmp_path, DAY, "AM0207I6_x.csv", b'"G trade",165754', b'"G trade",about 165k')
    message = one_line_error(p, entries["county_employment_by_workplace"])
    assert "line 6" in message and "column '2018'" in message and "'about 165k' is not a number" in message


def test_year_header_with_text_is_schema_drift(tmp_path: Path, entries: dict[str, FileSource]) -> None:
    p = variant(tmp_path, DAY, "AM0207I6_x.csv", b'"2018"', b'"2018 preliminary"')
    message = one_line_error(p, entries["county_employment_by_workplace"])
    assert "line 1" in message and "no period column" in message


def test_wrong_encoding_marker_is_refused(tmp_path: Path, entries: dict[str, FileSource]) -> None:
    p = tmp_path / "AM0207AC_x.csv"
    p.write_bytes(b"\xef\xbb\xbf" + MATRIX.read_bytes())  # a UTF-8 BOM on an ISO-8859-1 file
    message = one_line_error(p, entries["county_commuting_matrix"])
    assert "mixed encodings" in message and "line 4" in message  # "04 Södermanland county": the first non-ASCII


def test_utf8_and_title_line_exports_read_alike(tmp_path: Path, entries: dict[str, FileSource]) -> None:
    """The same export saved as UTF-8 with a BOM, semicolons and PxWeb's title line above the header."""
    text = DAY.read_bytes().decode("latin-1").replace('",', '";')
    p = tmp_path / "AM0207I6_utf8.csv"
    p.write_bytes(b"\xef\xbb\xbf" + ('"Employed 16+ years by county of work"\r\n\r\n' + text).encode("utf-8"))
    entry = entries["county_employment_by_workplace"]
    again = read_file(p, entry)
    assert again.encoding == "utf-8-sig"
    assert again.table.equals(read_file(DAY, entry).table)


def test_recoded_sex_outside_the_codes_is_refused(tmp_path: Path, entries: dict[str, FileSource]) -> None:
    p = variant(tmp_path, MATRIX, "AM0207AC_x.csv", b'"men and women",1160761', b'"both",1160761')
    message = one_line_error(p, entries["county_commuting_matrix"])
    assert "line 2" in message and "'both'" in message and "unknown sex code" in message


# -- bundling --------------------------------------------------------------------------------------------------


def test_every_bundled_file_matches_exactly_one_entry_and_reads() -> None:
    files = list(load_catalogue().files)
    for path in bundled_paths():
        assert path.is_file(), path
        [entry] = matching_entries(path.name, files)
        if path.suffix == ".csv":  # the PX files are read by tests/test_files.py (slow to parse twice)
            assert read_file(path, entry).table.num_rows > 0
    assert len(BUNDLED_INBOX_FILES) == len({Path(p).name for p in BUNDLED_INBOX_FILES})  # no name clash in the inbox


def test_drop_bundled_is_idempotent(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = drop_bundled(settings)
    assert [d.outcome for d in first] == ["dropped"] * len(BUNDLED_INBOX_FILES)
    assert sorted(p.name for p in settings.inbox_dir.iterdir()) == sorted(Path(p).name for p in BUNDLED_INBOX_FILES)
    assert {d.outcome for d in drop_bundled(settings)} == {"in_inbox"}
    # land only the small CSVs (the PX files would cost seconds); then an emptied inbox is not refilled with them
    for p in settings.inbox_dir.glob("*.px"):
        p.unlink()
    landed = extract_inbox(settings=settings)
    assert sorted(r.status for r in landed) == ["landed"] * 4
    for p in settings.inbox_dir.iterdir():
        p.unlink()
    outcomes = {d.name: d.outcome for d in drop_bundled(settings)}
    assert outcomes == {
        "FO05.px": "dropped",
        "PE12.px": "dropped",
        "ksi2242.px": "dropped",
        NIGHT.name: "processed",
        DAY.name: "processed",
        MATRIX.name: "processed",
        NORRBOTTEN.name: "processed",
    }


# -- through the warehouse ---------------------------------------------------------------------------------------


def test_two_exports_of_one_matrix_never_double_count(data_dir: Path) -> None:
    """The table id is the matrix: the export landed last replaces the earlier one (AM0207I6, not two files)."""
    from tests.test_inbox import _intake, _raw

    settings = Settings.from_env()
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True)
    (inbox / DAY.name).write_bytes(DAY.read_bytes())
    _intake(settings)
    live = "select _source_table, count(*), sum(value) from raw.regional_employment group by all"
    assert _raw(settings, live) == [("AM0207I6", 315, 4_920_748.0)]
    # a later export of the same matrix (SYNTHETIC edit: one cell changed) sorts after the first in the inbox
    later = inbox / "AM0207I6_20990101-000000.csv"
    later.write_bytes(DAY.read_bytes().replace(b'"G trade",165754', b'"G trade",165755', 1))
    _intake(settings)
    assert _raw(settings, live) == [("AM0207I6", 315, 4_920_749.0)]
    assert {r.status for r in extract_inbox(settings=settings)} == {"skipped_seen"}  # both files seen: no ping-pong
