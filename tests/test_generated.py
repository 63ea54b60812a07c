"""The dbt files that restate the catalogue are generated from it, and the committed copies are current."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from regionstat import generate
from regionstat.catalogue import CATALOGUE_PATH, load_catalogue
from regionstat.cli.main import main
from regionstat.settings import PROJECT_ROOT


def test_committed_generated_files_are_current(tmp_path: Path) -> None:
    """Regenerating into an empty directory gives, byte for byte, the files committed in the project."""
    written = generate.write(tmp_path, generate.render())
    assert sorted(written) == sorted(generate.GENERATORS), "an empty directory gets every generated file"
    committed = {path: PROJECT_ROOT / path for path in generate.GENERATORS}
    stale = [
        str(path)
        for path, file in committed.items()
        if not file.is_file() or file.read_bytes() != (tmp_path / path).read_bytes()
    ]
    assert not stale, f"stale generated file(s) {', '.join(stale)}: run `regionstat generate`"


def test_rendering_is_deterministic() -> None:
    assert generate.render() == generate.render()


def test_generated_yaml_carries_the_do_not_edit_note() -> None:
    text = (PROJECT_ROOT / generate.SOURCES_YAML).read_text(encoding="utf-8")
    assert text.startswith(f"# {generate.GENERATED_NOTE}\n")


def test_check_names_each_stale_file_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate.write(tmp_path, generate.render())
    seed = tmp_path / generate.SEEDS / "series_breaks.csv"
    seed.write_text(seed.read_text(encoding="utf-8").replace("RTB", "RTX"), encoding="utf-8")
    (tmp_path / generate.SEEDS / "measures.csv").unlink()
    assert main(["generate", "--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "stale: dbt_project/seeds/series_breaks.csv (run `regionstat generate`)" in err
    assert "stale: dbt_project/seeds/measures.csv" in err
    assert "counties.csv" not in err
    assert main(["generate", "--out", str(tmp_path)]) == 0
    assert main(["generate", "--check", "--out", str(tmp_path)]) == 0


def test_a_catalogue_edit_reaches_the_generated_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Freshness, measures and SNI names come from the catalogue (REGIONSTAT_CATALOGUE points at a copy)."""
    text = CATALOGUE_PATH.read_text(encoding="utf-8")
    text = text.replace("freshness: {warn_after_days: 1200, error_after_days: 2000}", "freshness: {warn_after_days: 7}")
    text = text.replace('"Landareal, hektar", unit: "hektar"', '"Landareal, hektar", unit: "ha"')
    copy = tmp_path / "catalogue.yaml"
    copy.write_text(text, encoding="utf-8")
    monkeypatch.setenv("REGIONSTAT_CATALOGUE", str(copy))
    rendered = generate.render(load_catalogue())
    assert (
        b'000003F9,LandarealTatortN,localities,"Landareal, hektar",ha,false\n'
        in rendered[generate.SEEDS / "measures.csv"]
    )
    sources = rendered[generate.SOURCES_YAML].decode()
    localities = sources[sources.index("- name: localities") : sources.index("- name: employment_by_sector")]
    assert "count: 7" in localities and "error_after" not in localities


def test_sni_codes_are_the_catalogue_list() -> None:
    """The suites, the snapshot builder and the dbt seed share one list of SNI groups."""
    from expectations.suites import SNI_CODES
    from tools.snapshot.build import GROUPS, SNI_LABELS

    codes = load_catalogue().sni_codes
    assert codes == SNI_CODES and codes[0] == "A-U+US" and len(codes) == 17
    assert codes[1:] == GROUPS and list(SNI_LABELS) == codes
    seed = (PROJECT_ROOT / generate.SEEDS / "sni2007_groups.csv").read_text(encoding="utf-8")
    assert sorted(line.split(",")[0] for line in seed.splitlines()[1:]) == sorted(codes)


def test_generated_sources_keep_what_the_report_reads(tmp_path: Path) -> None:
    """meta.source_tables (oldest series first) and synthetic_offline per raw table, as the report reads them."""
    import yaml

    shutil.copy(PROJECT_ROOT / generate.SOURCES_YAML, tmp_path / "s.yml")
    doc = yaml.safe_load((tmp_path / "s.yml").read_text(encoding="utf-8"))
    meta = {t["name"]: t["meta"] for g in doc["sources"] for t in g["tables"]}
    assert meta["population"] == {"synthetic_offline": False, "source_tables": ["TAB638", "TAB5557"]}
    assert meta["commuting_totals"]["source_tables"] == ["TAB3267", "TAB3266", "TAB5839"]
    assert meta["employment_by_sector"]["synthetic_offline"] is True
    assert meta["municipal_commuting"] == {"synthetic_offline": False}
