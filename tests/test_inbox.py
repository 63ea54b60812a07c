"""Municipal files in the inbox: good ones land, bad or unknown ones are quarantined with a reason, none is lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq

from extract.pipeline import extract_inbox
from extract.settings import Settings
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
