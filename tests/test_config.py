"""User configuration (regionstat.toml, REGIONSTAT_*, flags) and the buildable-model selection: no dbt run here."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionstat.catalogue import load_catalogue
from regionstat.cli.main import main
from regionstat.config import override_var, read_override, resolve
from regionstat.errors import ConfigError, RegionstatError
from regionstat.settings import Settings
from warehouse.available import availability, buildable_models


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_flags_beat_env_beat_file(tmp_path: Path) -> None:
    write(tmp_path / "regionstat.toml", 'counties = ["06"]\nperiods = ["2010:2020"]\n[vars]\nk2_max_minutes = 40\n')
    from_file = resolve(env={}, cwd=tmp_path)
    assert from_file.region_set == "counties:06"
    assert from_file.periods == ((2010, 2020),)
    assert from_file.dbt_vars == {"k2_max_minutes": 40}
    assert from_file.origins["region_set"].startswith("file ")

    env = {"REGIONSTAT_COUNTIES": "18,06", "REGIONSTAT_PERIODS": "2003:2022,2014:2024"}
    from_env = resolve(env=env, cwd=tmp_path)
    assert from_env.region_set == "counties:06,18"
    assert from_env.periods == ((2003, 2022), (2014, 2024))
    assert from_env.origins["region_set"] == "env REGIONSTAT_COUNTIES"

    flags = resolve(counties="12", periods=["2000:2001"], dbt_vars=["k2_max_minutes=30"], env=env, cwd=tmp_path)
    assert (flags.region_set, flags.periods, flags.dbt_vars) == ("counties:12", ((2000, 2001),), {"k2_max_minutes": 30})
    assert flags.origins["var k2_max_minutes"] == "flag"


def test_resolved_vars_carry_periods_and_override_paths(tmp_path: Path) -> None:
    write(tmp_path / "k2.csv", "municipality_code,category\n0643,K2\n0604,K3\n")
    seeds = '[seeds]\nk2_membership = "k2.csv"\ntravel_time = {path = "tt.csv", mode = "replace"}\n'
    write(tmp_path / "my.toml", seeds)
    write(tmp_path / "tt.csv", "municipality_code,k1_municipality_code,minutes_by_car\n0643,0680,20\n")
    config = resolve(config=str(tmp_path / "my.toml"), periods=["2003:2022"], env={}, cwd=Path("/"))
    settings = config.settings(Settings(data_dir=tmp_path / "data"))
    assert settings.region_set == "ostergotland"
    assert settings.dbt_vars["growth_periods"] == [{"start": 2003, "end": 2022}]
    assert settings.dbt_vars[f"{override_var('travel_time')}_mode"] == "replace"
    assert settings.dbt_vars[f"{override_var('k2_membership')}_mode"] == "replace"  # no bundled seed to extend
    config.prepare(settings)
    written = Path(settings.dbt_vars[override_var("k2_membership")]).read_text(encoding="utf-8")
    assert written == "municipality_code,category,source\n0643,K2,user file k2.csv\n0604,K3,user file k2.csv\n"


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("municipality_code,cat\n0643,K2\n", "line 1: missing column(s) category; unknown column(s) cat"),
        ("municipality_code,category\n0643,K2\n0999,K3\n", "line 3: municipality_code '0999' is not a municipality"),
        ("municipality_code,category\n0643,K4\n", "line 2: category 'K4' is not one of K1, K2, K3"),
        ("municipality_code,category\n0643,K2\n0643,K3\n", "line 3: 0643 already given on line 2"),
        ("municipality_code,category\n", "has no rows"),
    ],
)
def test_bad_membership_csv_names_file_and_line(tmp_path: Path, csv_text: str, message: str) -> None:
    path = write(tmp_path / "k2.csv", csv_text)
    with pytest.raises(ConfigError) as exc:
        read_override("k2_membership", path)
    assert str(exc.value).startswith(str(path))
    assert message in str(exc.value)


def test_bad_travel_time_value(tmp_path: Path) -> None:
    path = write(tmp_path / "tt.csv", "municipality_code,k1_municipality_code,minutes_by_car\n0643,0680,soon\n")
    with pytest.raises(ConfigError, match=r"tt\.csv line 2: minutes_by_car 'soon' is not a number"):
        read_override("travel_time", path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"counties": "06,99"}, "--counties: unknown county code(s) 99"),
        ({"periods": ["2022:2003"]}, "--period: period '2022:2003' starts at or after its end"),
        ({"periods": ["2003-2022"]}, "is not START:END"),
        ({"dbt_vars": ["k2_max_minute=30"]}, "--var: unknown dbt var 'k2_max_minute'"),
        ({"dbt_vars": ["k2_max_minutes"]}, "is not key=value"),
        ({"seeds": ["travel=x.csv"]}, "unknown override seed 'travel'"),
        ({"region_set": "norrland"}, "unknown region set 'norrland'"),
        ({"counties": "06", "region_set": "sweden"}, "give one"),
    ],
)
def test_bad_flags_are_one_clear_line(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(RegionstatError) as exc:  # ConfigError; CatalogueError for the region set name
        resolve(env={}, cwd=tmp_path, **kwargs)
    assert message in str(exc.value)


def test_unknown_file_key(tmp_path: Path) -> None:
    write(tmp_path / "regionstat.toml", 'county = "06"\n')
    with pytest.raises(ConfigError, match=r"regionstat\.toml: unknown key\(s\) county"):
        resolve(env={}, cwd=tmp_path)


def test_counties_region_set_in_the_catalogue() -> None:
    region_set = load_catalogue().region_set("counties:06,18")
    assert region_set.counties == ("06", "18")
    assert len(region_set.municipalities) == 13 + 12
    assert region_set.reference == "00"


def test_tables_name_sources_table_ids_and_raw_tables() -> None:
    names, inbox = resolve(tables=["population,TAB628"], env={}, cwd=Path("/")).sources()
    assert names == ["population_tab638", "population_tab5557", "land_area_tab628"]
    assert inbox is False
    assert resolve(env={}, cwd=Path("/")).sources() == (None, True)
    files = load_catalogue().files[0]
    with_files = resolve(tables=["population_tab638", files.raw_table], env={}, cwd=Path("/"))
    assert with_files.sources() == (["population_tab638"], True)
    assert files.name in (with_files.batch_sources() or [])


def test_config_show_prints_values_and_origins(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "regionstat.toml", 'periods = ["2003:2022"]\n')
    monkeypatch.chdir(tmp_path)
    assert main(["config", "show", "--counties", "06,18"]) == 0
    out = capsys.readouterr().out
    assert "counties:06,18" in out and "flag" in out
    assert "2003:2022" in out and "file ./regionstat.toml" in out  # where the config file was found
    assert '"growth_periods": [{"end": 2022, "start": 2003}]' in out


def _manifest() -> dict:
    """A small dbt manifest: population and commuting sources, a model optional on the commuting one."""
    src = {
        f"source.p.scb.{t}": {"resource_type": "source", "name": t, "identifier": t}
        for t in ("population", "commuting_flows")
    }

    def model(name: str, parents: list[str], *, mart: bool = False, optional: list[str] | None = None) -> dict:
        return {
            f"model.p.{name}": {
                "resource_type": "model",
                "name": name,
                "fqn": ["p", "marts" if mart else "intermediate", name],
                "depends_on": {"nodes": parents},
                "config": {"meta": {"optional_raw_inputs": optional} if optional else {}},
            }
        }

    nodes = {
        **model("stg_population", ["source.p.scb.population"]),
        **model("stg_flows", ["source.p.scb.commuting_flows"]),
        **model("categories", ["model.p.stg_population", "model.p.stg_flows"], optional=["commuting_flows"]),
        **model("mart_growth", ["model.p.categories"], mart=True),
        **model("mart_balance", ["model.p.stg_flows"], mart=True),
    }
    return {"nodes": nodes, "sources": src}


def test_buildable_models_honour_optional_inputs() -> None:
    manifest = _manifest()
    assert buildable_models(manifest, {"population"}) == {"stg_population", "categories", "mart_growth"}
    assert buildable_models(manifest, set()) == set()
    found = availability(manifest, {"population"})
    assert found.notes() == ["skipped mart_balance: needs raw.commuting_flows (not loaded)"]
    assert found.selection() == "resource_type:seed +categories +mart_growth +stg_population"
    assert availability(manifest, {"population", "commuting_flows"}).complete
