"""The user's run configuration: a ``regionstat.toml``, environment variables and CLI flags, resolved once.

A county's own K-table (region set, growth periods, dbt vars, its own K2 membership or travel times) must not
need an edit of a tracked file. Everything a user sets lives in one file outside the repo, or on the command line:

    # regionstat.toml (in the working directory, or --config PATH, or $REGIONSTAT_CONFIG)
    counties = ["06", "18"]            # or: region_set = "sweden"
    periods = ["2003:2022"]            # growth periods (start:end), several allowed
    tables = ["population_tab638"]     # run only these sources (catalogue source, SCB table id or raw table)
    [vars]                             # any dbt var of dbt_project.yml
    k2_max_minutes = 45
    [seeds]                            # the user's CSVs that extend (default) or replace a bundled seed
    k2_membership = "k2.csv"           # municipality_code,category: direct K1/K2/K3 membership
    travel_time = {path = "minutes.csv", mode = "replace"}

Precedence: flags > environment > file > defaults; ``regionstat config show`` prints each value and its origin.
Override CSVs are validated (columns, codes, duplicates; errors name the file and line), written normalised under
``<data_dir>/.state/overrides/`` and handed to dbt as vars (``regionstat_override_<seed>``) that the
``int_seed__*`` models read with DuckDB's ``read_csv``: no seed path or tracked file changes.
"""

from __future__ import annotations

import csv
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from regionstat.batches import atomic_write
from regionstat.catalogue import COUNTIES_PREFIX, load_regions
from regionstat.errors import ConfigError
from regionstat.settings import PROJECT_ROOT, Settings

CONFIG_FILE_NAME = "regionstat.toml"
CONFIG_ENV = "REGIONSTAT_CONFIG"
COUNTIES_ENV = "REGIONSTAT_COUNTIES"
PERIODS_ENV = "REGIONSTAT_PERIODS"
REGION_SET_ENV = "REGIONSTAT_REGION_SET"
DBT_PROJECT_FILE = PROJECT_ROOT / "dbt_project" / "dbt_project.yml"
FILE_KEYS = ("region_set", "counties", "periods", "tables", "vars", "seeds")
CATEGORIES = ("K1", "K2", "K3")

Mode = Literal["extend", "replace"]


@dataclass(frozen=True)
class SeedSpec:
    """An overridable seed: the dbt seed it extends (None: no bundled rows), its columns and key."""

    seed: str | None
    required: tuple[str, ...]
    optional: tuple[str, ...]
    key: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


#: user name -> what the CSV must hold. The ``source`` column, when absent, says which user file a row came from.
SEEDS: dict[str, SeedSpec] = {
    "k2_membership": SeedSpec(None, ("municipality_code", "category"), ("source",), ("municipality_code",)),
    "travel_time": SeedSpec(
        "municipality_travel_time",
        ("municipality_code", "k1_municipality_code", "minutes_by_car"),
        ("source", "note"),
        ("municipality_code",),
    ),
    "la_membership": SeedSpec(
        "la_membership", ("municipality_code", "la_region", "vintage"), ("source",), ("municipality_code", "vintage")
    ),
    "localities": SeedSpec(
        "locality_names",
        ("locality_code", "locality_name", "municipality_code", "name_year"),
        ("source",),
        ("locality_code",),
    ),
}


def override_var(name: str) -> str:
    """The dbt var holding the normalised override CSV of seed ``name`` (empty: no override)."""
    return f"regionstat_override_{name}"


@dataclass(frozen=True)
class SeedOverride:
    name: str
    path: Path
    mode: Mode = "extend"


@dataclass(frozen=True)
class RunConfig:
    """What one run uses, resolved from flags, environment, config file and defaults; ``origins`` says which."""

    config_file: Path | None = None
    region_set: str | None = None  # a catalogue region set or ``counties:06,18``; None = the catalogue's default
    periods: tuple[tuple[int, int], ...] = ()
    dbt_vars: dict[str, Any] = field(default_factory=dict)
    seeds: dict[str, SeedOverride] = field(default_factory=dict)
    tables: tuple[str, ...] = ()
    origins: dict[str, str] = field(default_factory=dict)

    def resolved_vars(self, settings: Settings) -> dict[str, Any]:
        """The dbt vars this run passes to dbt: the user's vars, the periods, and the override CSV paths."""
        out = dict(self.dbt_vars)
        if self.periods:
            out["growth_periods"] = [{"start": a, "end": b} for a, b in self.periods]
        for name, override in sorted(self.seeds.items()):
            out[override_var(name)] = str(override_path(settings, name))
            out[f"{override_var(name)}_mode"] = override.mode
        return out

    def settings(self, base: Settings) -> Settings:
        """``base`` with this config's region set and dbt vars."""
        from dataclasses import replace

        return replace(base, region_set=self.region_set or base.region_set, dbt_vars=self.resolved_vars(base))

    def prepare(self, settings: Settings) -> None:
        """Write the validated override CSVs where the dbt vars point (before a dbt build)."""
        for name, override in self.seeds.items():
            rows = read_override(name, override.path)
            atomic_write(override_path(settings, name), _csv_text(SEEDS[name].columns, rows))

    def sources(self) -> tuple[list[str] | None, bool]:
        """The catalogue sources ``tables`` names (None: all) and whether the inbox's files are among them.

        A name is a catalogue source, an SCB table id, a raw table (all its sources) or a file entry.
        """
        if not self.tables:
            return None, True
        from regionstat.catalogue import load_catalogue

        catalogue = load_catalogue()
        names: list[str] = []
        inbox = False
        for name in self.tables:
            matched = [s.name for s in catalogue.sources if name in (s.name, s.table, s.raw_table)]
            files = [f.name for f in catalogue.files if name in (f.name, f.raw_table)]
            if not matched and not files:
                known = [s.name for s in catalogue.sources] + [f.name for f in catalogue.files]
                raise ConfigError(
                    f"no catalogue source named {name!r} (known: {', '.join(known)}; or an SCB table id or raw table)"
                )
            names += matched
            inbox = inbox or bool(files)
        return list(dict.fromkeys(names)), inbox

    def batch_sources(self) -> list[str] | None:
        """The landing folders (catalogue sources and file entries) ``tables`` names, for validation (None: all)."""
        names, inbox = self.sources()
        if names is None:
            return None
        if inbox:
            from regionstat.catalogue import load_catalogue

            names += [f.name for f in load_catalogue().files if {f.name, f.raw_table} & set(self.tables)]
        return names

    def show(self, settings: Settings) -> list[tuple[str, str, str]]:
        """(setting, value, origin) rows for ``regionstat config show``."""
        rows = [
            ("config file", str(self.config_file or "(none)"), self.origins.get("config_file", "default")),
            ("data dir", str(settings.data_dir), self.origins.get("data_dir", "default")),
            ("api", settings.api_url or "bundled offline snapshot", self.origins.get("api", "default")),
            ("region set", settings.region_set, self.origins.get("region_set", "default")),
            ("periods", ", ".join(f"{a}:{b}" for a, b in self.periods) or "(dbt_project.yml)", _o(self, "periods")),
            ("tables", ", ".join(self.tables) or "(all catalogue sources)", _o(self, "tables")),
        ]
        for key, value in sorted(self.dbt_vars.items()):
            rows.append((f"var {key}", json.dumps(value, ensure_ascii=False), self.origins.get(f"var {key}", "")))
        for name, override in sorted(self.seeds.items()):
            rows.append((f"seed {name}", f"{override.path} ({override.mode})", self.origins.get(f"seed {name}", "")))
        return rows


def _o(config: RunConfig, key: str) -> str:
    return config.origins.get(key, "default")


def override_path(settings: Settings, name: str) -> Path:
    return settings.state_dir / "overrides" / f"{name}.csv"


def _csv_text(columns: Sequence[str], rows: list[dict[str, str]]) -> str:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------- parsing
def parse_counties(text: str | Sequence[str], where: str) -> tuple[str, ...]:
    """``06,18`` (or a list) -> ('06', '18'); each must be one of SCB's 21 county codes."""
    items = text.split(",") if isinstance(text, str) else [str(c) for c in text]
    codes = tuple(dict.fromkeys(c.strip().zfill(2) for c in items if str(c).strip()))
    known = {r.code: r.name for r in load_regions() if r.level == "county"}
    unknown = [c for c in codes if c not in known]
    if not codes or unknown:
        raise ConfigError(
            f"{where}: {'unknown county code(s) ' + ', '.join(unknown) if unknown else 'no county codes'} "
            f"(counties are two digits, e.g. 06 for {known.get('06', 'Jönköpings län')})"
        )
    return tuple(sorted(codes))


def parse_period(text: str | Sequence[int], where: str) -> tuple[int, int]:
    """``2003:2022`` (or [2003, 2022]) -> (2003, 2022); the start must come before the end."""
    parts = [str(p).strip() for p in (text.split(":") if isinstance(text, str) else text)]
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 4 for p in parts):
        raise ConfigError(f"{where}: period {text!r} is not START:END in years, e.g. 2003:2022")
    start, end = int(parts[0]), int(parts[1])
    if start >= end:
        raise ConfigError(f"{where}: period {text!r} starts at or after its end")
    return start, end


def known_dbt_vars() -> dict[str, Any]:
    data = yaml.safe_load(DBT_PROJECT_FILE.read_text(encoding="utf-8")) or {}
    return dict(data.get("vars") or {})


def parse_var(text: str, where: str) -> tuple[str, Any]:
    """``key=value`` with the value read as YAML (``45`` is a number, ``[1, 5]`` a list, ``day`` a string)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{where}: {text!r} is not key=value")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: value of {key!r} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    return key, parsed


def _check_var(key: str, where: str) -> None:
    known = known_dbt_vars()
    if key not in known:
        raise ConfigError(f"{where}: unknown dbt var {key!r} (known: {', '.join(sorted(known))})")


def parse_seed(name: str, spec: Any, where: str, base_dir: Path) -> SeedOverride:
    """``"my.csv"`` or ``{path = "my.csv", mode = "replace"}``; paths relative to ``base_dir``."""
    if name not in SEEDS:
        raise ConfigError(f"{where}: unknown override seed {name!r} (known: {', '.join(SEEDS)})")
    mode: str = "extend"
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"path", "mode"})
        if unknown or "path" not in spec:
            raise ConfigError(f"{where}: seed {name!r} needs path (and optionally mode), got {sorted(spec)}")
        path_text, mode = str(spec["path"]), str(spec.get("mode", "extend"))
    elif isinstance(spec, str):
        path_text = spec
    else:
        raise ConfigError(f"{where}: seed {name!r} must be a path or {{path, mode}}")
    if mode not in ("extend", "replace"):
        raise ConfigError(f"{where}: seed {name!r} mode {mode!r} is not extend or replace")
    if mode == "extend" and SEEDS[name].seed is None:
        mode = "replace"  # nothing bundled to extend
    path = (base_dir / path_text).resolve()
    read_override(name, path)  # fail now, naming file and line, not in the middle of a dbt build
    return SeedOverride(name, path, mode)  # type: ignore[arg-type]  # checked just above


def read_override(name: str, path: Path) -> list[dict[str, str]]:
    """The rows of an override CSV, checked: columns, known codes, values, no duplicate keys."""
    spec = SEEDS[name]
    if not path.is_file():
        raise ConfigError(f"{path}: override seed {name!r}: no such file")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in spec.required if c not in header]
        extra = [c for c in header if c not in spec.columns]
        if missing or extra:
            what = "; ".join(
                x
                for x in (
                    f"missing column(s) {', '.join(missing)}" if missing else "",
                    f"unknown column(s) {', '.join(extra)}" if extra else "",
                )
                if x
            )
            expected = f"{', '.join(spec.required)}[, {', '.join(spec.optional)}]"
            raise ConfigError(f"{path} line 1: {what} (expected {expected})")
        regions = {r.code for r in load_regions() if r.level == "municipality"}
        rows: list[dict[str, str]] = []
        seen: dict[tuple[str, ...], int] = {}
        for line, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            _check_row(name, row, regions, f"{path} line {line}")
            key = tuple(row[k] for k in spec.key)
            if key in seen:
                raise ConfigError(f"{path} line {line}: {', '.join(key)} already given on line {seen[key]}")
            seen[key] = line
            row.setdefault("source", "")
            row["source"] = row["source"] or f"user file {path.name}"
            rows.append({c: row.get(c, "") for c in spec.columns})
    if not rows:
        raise ConfigError(f"{path}: override seed {name!r} has no rows")
    return rows


def _check_row(name: str, row: dict[str, str], municipalities: set[str], where: str) -> None:
    for column in ("municipality_code", "k1_municipality_code"):
        if column in row and row[column] not in municipalities:
            raise ConfigError(f"{where}: {column} {row[column]!r} is not a municipality code (4 digits, e.g. 0680)")
    if name == "k2_membership" and row["category"] not in CATEGORIES:
        raise ConfigError(f"{where}: category {row['category']!r} is not one of {', '.join(CATEGORIES)}")
    if name == "travel_time" and row["minutes_by_car"]:
        try:
            ok = float(row["minutes_by_car"]) >= 0
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"{where}: minutes_by_car {row['minutes_by_car']!r} is not a number of minutes >= 0")
    if name == "la_membership" and not row["vintage"].isdigit():
        raise ConfigError(f"{where}: vintage {row['vintage']!r} is not a year")
    if name == "localities":
        if not row["name_year"].isdigit():
            raise ConfigError(f"{where}: name_year {row['name_year']!r} is not a year")
        if not row["locality_code"].startswith(row["municipality_code"]):
            raise ConfigError(
                f"{where}: locality_code {row['locality_code']!r} does not start with its municipality "
                f"{row['municipality_code']!r}"
            )


# ------------------------------------------------------------------------------------------------ resolving
def find_config_file(flag: str | None, env: Mapping[str, str], cwd: Path) -> tuple[Path | None, str]:
    """--config, else $REGIONSTAT_CONFIG, else ./regionstat.toml if present."""
    if flag:
        return Path(flag).resolve(), "flag --config"
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).resolve(), f"env {CONFIG_ENV}"
    local = cwd / CONFIG_FILE_NAME
    return (local.resolve(), f"file ./{CONFIG_FILE_NAME}") if local.is_file() else (None, "default")


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(FILE_KEYS)})")
    if "region_set" in data and "counties" in data:
        raise ConfigError(f"{path}: give region_set or counties, not both")
    return data


def resolve(
    *,
    config: str | None = None,
    counties: str | None = None,
    region_set: str | None = None,
    periods: Sequence[str] = (),
    dbt_vars: Sequence[str] = (),
    seeds: Sequence[str] = (),
    tables: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> RunConfig:
    """One ``RunConfig`` from flags (the arguments), the environment and the config file."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    path, path_origin = find_config_file(config, env, cwd)
    data = read_config_file(path) if path else {}
    file_origin = f"file {path}"
    origins: dict[str, str] = {"config_file": path_origin}
    if env.get("REGIONSTAT_DATA_DIR"):
        origins["data_dir"] = "env REGIONSTAT_DATA_DIR"
    if env.get("REGIONSTAT_API_URL"):
        origins["api"] = "env REGIONSTAT_API_URL"

    # region set: --counties / --region-set > $REGIONSTAT_COUNTIES / $REGIONSTAT_REGION_SET > file
    if counties and region_set:
        raise ConfigError("--counties and --region-set: give one")
    chosen: str | None = None
    if counties:
        chosen, origins["region_set"] = COUNTIES_PREFIX + ",".join(parse_counties(counties, "--counties")), "flag"
    elif region_set:
        chosen, origins["region_set"] = region_set, "flag"
    elif env.get(COUNTIES_ENV):
        chosen = COUNTIES_PREFIX + ",".join(parse_counties(env[COUNTIES_ENV], COUNTIES_ENV))
        origins["region_set"] = f"env {COUNTIES_ENV}"
    elif env.get(REGION_SET_ENV):
        chosen, origins["region_set"] = env[REGION_SET_ENV], f"env {REGION_SET_ENV}"
    elif "counties" in data:
        chosen = COUNTIES_PREFIX + ",".join(parse_counties(data["counties"], f"{path}: counties"))
        origins["region_set"] = file_origin
    elif "region_set" in data:
        chosen, origins["region_set"] = str(data["region_set"]), file_origin
    if chosen and not chosen.startswith(COUNTIES_PREFIX):
        from regionstat.catalogue import load_catalogue

        load_catalogue().region_set(chosen)  # unknown names fail here, with the known ones listed

    # periods: flags > env (comma-separated) > file
    period_items: list[tuple[str, Any]] = []
    if periods:
        period_items, origins["periods"] = [("--period", p) for p in periods], "flag"
    elif env.get(PERIODS_ENV):
        period_items = [(PERIODS_ENV, p) for p in env[PERIODS_ENV].split(",") if p.strip()]
        origins["periods"] = f"env {PERIODS_ENV}"
    elif "periods" in data:
        if not isinstance(data["periods"], list):
            raise ConfigError(f'{path}: periods must be a list, e.g. ["2003:2022"]')
        period_items, origins["periods"] = [(f"{path}: periods", p) for p in data["periods"]], file_origin
    parsed_periods = tuple(dict.fromkeys(parse_period(p, where) for where, p in period_items))

    # dbt vars: file [vars] < --var
    merged: dict[str, Any] = {}
    file_vars = data.get("vars") or {}
    if not isinstance(file_vars, Mapping):
        raise ConfigError(f"{path}: [vars] must be a table of key = value")
    for key, value in file_vars.items():
        _check_var(key, f"{path}: [vars]")
        merged[key], origins[f"var {key}"] = value, file_origin
    for text in dbt_vars:
        key, value = parse_var(text, "--var")
        _check_var(key, "--var")
        merged[key], origins[f"var {key}"] = value, "flag"
    if parsed_periods and "growth_periods" in merged:
        raise ConfigError("growth periods given twice: use --period/periods or the growth_periods var, not both")

    # override seeds: file [seeds] < --seed NAME=PATH
    overrides: dict[str, SeedOverride] = {}
    file_seeds = data.get("seeds") or {}
    if not isinstance(file_seeds, Mapping):
        raise ConfigError(f"{path}: [seeds] must be a table of name = path")
    for name, spec in file_seeds.items():
        assert path is not None
        overrides[name] = parse_seed(name, spec, f"{path}: [seeds]", path.parent)
        origins[f"seed {name}"] = file_origin
    for text in seeds:
        name, sep, value = text.partition("=")
        if not sep:
            raise ConfigError(f"--seed {text!r}: expected NAME=PATH (names: {', '.join(SEEDS)})")
        overrides[name.strip()] = parse_seed(name.strip(), value.strip(), "--seed", cwd)
        origins[f"seed {name.strip()}"] = "flag"

    # tables: flags > file
    chosen_tables: tuple[str, ...] = ()
    if tables:
        chosen_tables, origins["tables"] = _split(tables), "flag"
    elif "tables" in data:
        chosen_tables, origins["tables"] = _split(data["tables"]), file_origin

    return RunConfig(
        config_file=path,
        region_set=chosen,
        periods=parsed_periods,
        dbt_vars=merged,
        seeds=overrides,
        tables=chosen_tables,
        origins=origins,
    )


def _split(items: Sequence[str] | str) -> tuple[str, ...]:
    """``["population,land_area", "TAB638"]`` -> ('population', 'land_area', 'TAB638')."""
    texts = [items] if isinstance(items, str) else list(items)
    return tuple(dict.fromkeys(t.strip() for text in texts for t in str(text).split(",") if t.strip()))
