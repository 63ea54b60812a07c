"""Municipal files in the inbox: good ones land, bad or unknown ones are quarantined with a reason, none is lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq

from extract.pipeline import extract_inbox
from regionstat.settings import Settings
from tests.conftest import REFERENCE_DATA


def test_inbox_lands_good_quarantines_bad_and_skips_seen(data_dir: Path) -> None:
    settings = Settings.from_env()
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True)
    shutil.copy(REFERENCE_DATA / "linkoping_kommun_px" / "PE12.px", inbox / "PE12.px")
    (inbox / "PE12_2025_broken.px").write_bytes(b"")
    (inbox / "notes.txt").write_text("hello")

    results = {r.table_id: r for r in extract_inbox(settings=settings)}
    assert results["PE12.px"].status == "landed"
    assert results["PE12_2025_broken.px"].status == "quarantined"
    assert "PE12_2025_broken.px" in results["PE12_2025_broken.px"].message
    assert results["notes.txt"].status == "quarantined"
    assert "matches no catalogue file pattern" in results["notes.txt"].message

    landed = pq.read_table(
        results["PE12.px"].manifest_path.with_name(
            results["PE12.px"].manifest_path.name.replace(".manifest.json", ".parquet")
        )
    ).to_pylist()
    ut_2021 = [
        r
        for r in landed
        if r["flow_type"] == "Ut" and r["area"] == "Annan" and r["district"] == "0580" and r["period"] == "2021"
    ]
    assert [r["value"] for r in ut_2021] == [11792.0]

    reason = next(settings.quarantine_dir.rglob("*.reason.txt")).read_text()
    assert reason.startswith("quarantined: ")
    assert (inbox / "PE12_2025_broken.px").exists() and (inbox / "notes.txt").exists()  # nothing lost

    again = extract_inbox(settings=settings)
    assert {r.status for r in again} == {"skipped_seen"}

    (inbox / "notes.txt").unlink()
    fixed_px = (REFERENCE_DATA / "linkoping_kommun_px" / "PE12.px").read_bytes().replace(b"1994", b"1993", 1)
    (inbox / "PE12_2025_broken.px").write_bytes(fixed_px)  # the user replaces the broken file
    fixed = {r.table_id: r.status for r in extract_inbox(settings=settings)}
    assert fixed["PE12_2025_broken.px"] == "landed"


def _raw(settings: Settings, query: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def _intake(settings: Settings) -> None:
    """extract -> validate -> load for the inbox only (no PxWeb), as `regionstat run` chains them."""
    from expectations.validate import validate_pending
    from warehouse.load import load_validated

    extract_inbox(settings=settings)
    validate_pending(settings, build_docs=False)
    load_validated(settings=settings)


LKPG_V1 = "flow_type,district,area,period,value\nIn,110,Annan,2025,120\nUt,110,Annan,2025,340\n"
NKPG = "flow_type,district,area,period,value\nIn,0581,Tot,2025,900\n"


def test_each_file_is_its_own_series(data_dir: Path) -> None:
    """SYNTHETIC fixtures. One file never replaces another; a re-dropped name supersedes only its own version."""
    settings = Settings.from_env()
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True)
    lkpg, nkpg = inbox / "synthetic_linkoping_commuting.csv", inbox / "synthetic_norrkoping_commuting.csv"
    lkpg.write_text(LKPG_V1, encoding="utf-8")
    nkpg.write_text(NKPG, encoding="utf-8")
    _intake(settings)
    live = "select _source_table, district, flow_type, value from raw.municipal_commuting order by all"
    v1 = [
        ("synthetic_linkoping_commuting.csv", "110", "In", 120.0),
        ("synthetic_linkoping_commuting.csv", "110", "Ut", 340.0),
        ("synthetic_norrkoping_commuting.csv", "0581", "In", 900.0),
    ]
    assert _raw(settings, live) == v1

    lkpg.write_text(LKPG_V1.replace("340", "341"), encoding="utf-8")  # Linköping's corrected export
    _intake(settings)
    assert _raw(settings, live) == [v1[0], (*v1[1][:3], 341.0), v1[2]]

    # A broken re-export (a code vanished, an unknown one came) is quarantined; the corrected version stays live.
    lkpg.write_text(LKPG_V1.replace("Ut,", "Bogus,"), encoding="utf-8")
    _intake(settings)
    assert _raw(settings, live) == [v1[0], (*v1[1][:3], 341.0), v1[2]]
    reasons = _raw(settings, "select reason from ops.loads where status = 'quarantined'")
    assert len(reasons) == 1 and "unknown code 'Bogus'" in reasons[0][0]

    lkpg.write_text(LKPG_V1, encoding="utf-8")  # the first version dropped back: it is live again
    _intake(settings)
    assert _raw(settings, live) == v1


def test_good_file_is_not_judged_by_a_newer_bad_sibling(data_dir: Path) -> None:
    """SYNTHETIC fixtures. The drill: a good file next to a bad one of the same entry was quarantined."""
    settings = Settings.from_env()
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True)
    (inbox / "a_good_commuting.csv").write_text(LKPG_V1, encoding="utf-8")
    (inbox / "b_bad_commuting.csv").write_text(LKPG_V1 + "Bogus,110,Annan,2025,1\n", encoding="utf-8")
    _intake(settings)
    assert _raw(settings, "select distinct _source_table from raw.municipal_commuting") == [("a_good_commuting.csv",)]
    (inbox / "c_good_commuting.csv").write_text(NKPG, encoding="utf-8")  # validated after a's batch exists
    _intake(settings)
    assert _raw(settings, "select count(distinct _source_table) from raw.municipal_commuting") == [(2,)]


def test_keys_repeated_by_another_file_are_warned_not_blocked(data_dir: Path) -> None:
    """SYNTHETIC fixtures. A second export of the same numbers under another name would double count: say so."""
    settings = Settings.from_env()
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True)
    (inbox / "a_commuting.csv").write_text(LKPG_V1, encoding="utf-8")
    _intake(settings)
    (inbox / "a_commuting (1).csv").write_text(LKPG_V1, encoding="utf-8")
    (inbox / "n_commuting.csv").write_text(NKPG, encoding="utf-8")
    _intake(settings)
    assert _raw(settings, "select count(distinct _source_table) from raw.municipal_commuting") == [(3,)]
    warned = _raw(
        settings,
        "select l.table_id, v.observed_value from ops.validation_results v join ops.loads l using (load_id) "
        "where v.expectation = 'expect_keys_not_in_other_files' and not v.success",
    )
    assert warned == [("a_commuting (1).csv", "2 with 'a_commuting.csv'")]
