"""Upstream vintage of inbox files: PX ``LAST-UPDATED``/``CREATION-DATE`` parsing, and the landing manifest.

Cheap: small PX texts, the real bundled PX files read once each, one inbox extraction into a temporary data
directory (no warehouse, no dbt). The end-to-end check (marts and report carry the vintage) is in
tests/test_key_figures.py, on the session's pipeline run with ksi2242.px and PE12.px in the inbox.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from extract.bundled import BUNDLED_INBOX_FILES, BUNDLED_VINTAGES, declared_vintage
from extract.files import file_sha256, load_file_entries, read_file
from extract.pipeline import extract_inbox
from extract.px import parse_px_time, read_px
from regionstat.batches import Batch
from regionstat.settings import Settings
from tests.conftest import PROJECT_ROOT, REFERENCE_DATA
from warehouse.status import status_rows

LKPG = REFERENCE_DATA / "linkoping_kommun_px"
NORRBOTTEN = REFERENCE_DATA / "commuting_od_fixtures" / "norrbotten_ArRegPend2_2024_totalt.csv"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20220311 08:00", datetime(2022, 3, 11, 7, 0, tzinfo=UTC)),  # CET, UTC+1
        ("20220711 08:00", datetime(2022, 7, 11, 6, 0, tzinfo=UTC)),  # CEST, UTC+2
        ("20220311 8:00:30", datetime(2022, 3, 11, 7, 0, 30, tzinfo=UTC)),
        ("2022-03-11 08:00", datetime(2022, 3, 11, 7, 0, tzinfo=UTC)),
        (" 20260108 ", datetime(2026, 1, 8, tzinfo=UTC)),  # a bare date is that day, not the evening before
        ("20260108", datetime(2026, 1, 8, tzinfo=UTC)),
    ],
)
def test_px_time_is_swedish_local_time_in_utc(text: str, expected: datetime) -> None:
    assert parse_px_time(text) == expected


@pytest.mark.parametrize("text", ["", "2022", "20221399", "20220230 08:00", "20220311 25:00", "11/03/2022", "idag"])
def test_what_is_not_a_px_date_is_none(text: str) -> None:
    assert parse_px_time(text) is None


def _px(*keywords: str) -> bytes:
    head = "".join(k + ";\n" for k in keywords)
    body = 'CHARSET="ANSI";\nMATRIX="T1";\nSTUB="region";\nVALUES("region")="0580","0581";\nDATA=\n1 2;\n'
    return (head + body).encode("cp1252")


def test_last_updated_wins_over_creation_date() -> None:
    px = read_px(_px('CREATION-DATE="20200101 10:00"', 'LAST-UPDATED="20220311 08:00"'), name="t.px")
    vintage = px.vintage()
    assert vintage is not None
    assert (vintage.keyword, vintage.text) == ("LAST-UPDATED", "20220311 08:00")
    assert vintage.updated == "2022-03-11T07:00:00Z"
    assert vintage.statement == 'LAST-UPDATED="20220311 08:00" (line 2)'


def test_creation_date_when_there_is_no_last_updated() -> None:
    vintage = read_px(_px('CREATION-DATE="20200101 10:00"'), name="t.px").vintage()
    assert vintage is not None and (vintage.keyword, vintage.updated) == ("CREATION-DATE", "2020-01-01T09:00:00Z")


def test_the_latest_of_per_content_dates_dates_the_file() -> None:
    px = read_px(
        _px('LAST-UPDATED("Folkmängd")="20220311 08:00"', 'LAST-UPDATED("Folkökning")="20230221 08:00"'), name="t.px"
    )
    vintage = px.vintage()
    assert vintage is not None and vintage.updated == "2023-02-21T07:00:00Z"


def test_unreadable_last_updated_falls_back_and_says_where(caplog: pytest.LogCaptureFixture) -> None:
    px = read_px(_px('LAST-UPDATED="förra veckan"', 'CREATION-DATE="20200101"'), name="t.px")
    with caplog.at_level(logging.WARNING, logger="extract.px"):
        vintage = px.vintage()
    assert vintage is not None and (vintage.keyword, vintage.updated) == ("CREATION-DATE", "2020-01-01T00:00:00Z")
    assert "t.px line 1: LAST-UPDATED='förra veckan' is not a PX date" in caplog.text


def test_no_date_keyword_means_unknown_vintage() -> None:
    assert read_px(_px(), name="t.px").vintage() is None


@pytest.mark.parametrize(
    ("name", "updated", "line"),
    [
        ("FO05.px", "2026-01-08T00:00:00Z", 15),
        ("PE12.px", "2026-02-23T00:00:00Z", 14),
        ("ksi2242.px", "2026-03-12T00:00:00Z", 15),
    ],
)
def test_bundled_px_files_date_themselves(name: str, updated: str, line: int) -> None:
    vintage = read_px(LKPG / name).vintage()
    assert vintage is not None
    assert (vintage.keyword, vintage.updated, vintage.line) == ("LAST-UPDATED", updated, line)
    assert vintage.text == updated[:10].replace("-", "")  # the file's own text: a date without a time


def test_every_bundled_file_without_a_date_of_its_own_has_a_declared_vintage_or_none() -> None:
    undated = {p for p in BUNDLED_INBOX_FILES if not p.endswith(".px")}
    assert set(BUNDLED_VINTAGES) == undated  # a new bundled CSV must say what its provenance states
    for path in undated:  # none of them states SCB's `updated` (see reference/data/README.md)
        assert declared_vintage(file_sha256(PROJECT_ROOT / path)) is None


def test_read_file_carries_the_px_vintage_and_none_for_csv() -> None:
    entries = {e.name: e for e in load_file_entries()}
    fo05 = read_file(LKPG / "FO05.px", entries["linkoping_day_population_by_sector"])
    assert (fo05.updated, fo05.updated_from) == ("2026-01-08T00:00:00Z", 'LAST-UPDATED="20260108" (line 15)')
    od = read_file(NORRBOTTEN, entries["municipal_commuting_od_csv"])
    assert (od.updated, od.updated_from) == (None, None)


def test_inbox_manifest_records_the_vintage_and_its_text(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    settings.inbox_dir.mkdir(parents=True)
    shutil.copy(LKPG / "PE12.px", settings.inbox_dir / "PE12.px")
    shutil.copy(NORRBOTTEN, settings.inbox_dir / NORRBOTTEN.name)
    results = {r.table_id: r for r in extract_inbox(settings=settings)}
    assert {r.status for r in results.values()} == {"landed"}
    paths = {name: r.manifest_path for name, r in results.items() if r.manifest_path is not None}
    pe12 = Batch.read(paths["PE12.px"])
    assert pe12.updated == "2026-02-23T00:00:00Z"
    assert pe12.query["updated_from"] == 'LAST-UPDATED="20260223" (line 14)'
    od = Batch.read(paths[NORRBOTTEN.name])
    assert od.updated is None and "updated_from" not in od.query  # no date in the file: unknown, not invented
    status = {r["source_name"]: r["vintage"] for r in status_rows(settings)}  # `regionstat status` says it
    assert (status[pe12.source_name], status[od.source_name]) == ("2026-02-23", "vintage unknown")
    assert status["municipal_commuting_csv"] == ""  # nothing landed: no vintage to speak of
