"""The source catalogue: one declarative YAML from which extraction, validation, DAGs and dbt sources follow.

Loading resolves region placeholders (``{municipalities}``, ``{counties}``, ``{reference}``, ``{regions}``)
against the active region set, so every consumer sees concrete selections.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from regionstat.errors import CatalogueError

CATALOGUE_PATH = Path(__file__).with_name("catalogue.yaml")
REGIONS_PATH = Path(__file__).parent / "reference" / "regions.csv"
PLACEHOLDERS = ("{municipalities}", "{counties}", "{reference}", "{regions}")

Selection = dict[str, "list[str] | str"]


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    level: str  # country | county | municipality
    county_code: str


@dataclass(frozen=True)
class RegionSet:
    name: str
    description: str
    municipalities: tuple[str, ...]
    counties: tuple[str, ...]
    reference: str

    @property
    def all_codes(self) -> tuple[str, ...]:
        return (self.reference, *self.counties, *self.municipalities)

    def expand(self, placeholder: str) -> list[str]:
        return {
            "{municipalities}": list(self.municipalities),
            "{counties}": list(self.counties),
            "{reference}": [self.reference],
            "{regions}": list(self.all_codes),
        }[placeholder]


@dataclass(frozen=True)
class Source:
    """One SCB table feeding one raw table."""

    name: str
    table: str
    raw_table: str
    description: str
    selection: dict[str, Any]
    schedule: str = "@monthly"
    freshness: dict[str, int] = field(default_factory=dict)
    series: str | None = None
    region_filter: dict[str, Any] | None = None
    verify_live: str | None = None
    closed: str | None = None  # a series SCB no longer updates (why, or what continues it): no freshness alarm
    http: dict[str, float] | None = None  # this table's overrides of the catalogue's ``http:`` limits

    def resolved_selection(self, region_set: RegionSet) -> Selection:
        """The selection with region placeholders replaced by the region set's codes."""
        out: Selection = {}
        for variable, spec in self.selection.items():
            if isinstance(spec, str) and spec in PLACEHOLDERS:
                out[variable] = region_set.expand(spec)
            elif isinstance(spec, str):
                out[variable] = spec
            else:
                out[variable] = [str(v) for v in spec]
        return out


@dataclass(frozen=True)
class FileSource:
    """Municipal files dropped into the inbox, matched by glob, mapped to a raw table."""

    name: str
    pattern: str
    raw_table: str
    description: str
    columns: dict[str, str]
    codes: dict[str, Any] = field(default_factory=dict)  # target column -> code list or reference kind
    limits: dict[str, int] = field(default_factory=dict)  # overrides of extract.files.DEFAULT_LIMITS


@dataclass(frozen=True)
class Catalogue:
    sources: tuple[Source, ...]
    files: tuple[FileSource, ...]
    region_sets: dict[str, dict[str, Any]]
    default_region_set: str
    reference_region: str
    http: dict[str, float] = field(default_factory=dict)  # request deadline, attempts, retry budget defaults

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name or s.table == name:
                return s
        known = ", ".join(s.name for s in self.sources)
        raise CatalogueError(f"no catalogue source named {name!r} (known: {known})")

    @property
    def raw_tables(self) -> list[str]:
        names = [s.raw_table for s in self.sources] + [f.raw_table for f in self.files]
        return list(dict.fromkeys(names))

    def region_set(self, name: str | None = None) -> RegionSet:
        name = name or self.default_region_set
        if name not in self.region_sets:
            raise CatalogueError(f"unknown region set {name!r} (known: {', '.join(self.region_sets)})")
        spec = self.region_sets[name]
        regions = load_regions()
        all_counties = [r.code for r in regions if r.level == "county"]
        counties = all_counties if spec["counties"] == "*" else [str(c) for c in spec["counties"]]
        unknown = sorted(set(counties) - set(all_counties))
        if unknown:
            raise CatalogueError(f"region set {name!r}: unknown county code(s) {', '.join(unknown)}")
        municipalities = [r.code for r in regions if r.level == "municipality" and r.county_code in counties]
        return RegionSet(
            name=name,
            description=spec.get("description", ""),
            municipalities=tuple(municipalities),
            counties=tuple(counties),
            reference=self.reference_region,
        )


@cache
def load_regions() -> tuple[Region, ...]:
    """Sweden's regions (country, 21 counties, 290 municipalities) from SCB's TAB638 metadata."""
    with REGIONS_PATH.open(encoding="utf-8") as fh:
        return tuple(
            Region(code=r["region_code"], name=r["region_name"], level=r["level"], county_code=r["county_code"])
            for r in csv.DictReader(fh)
        )


def load_catalogue(path: Path | str = CATALOGUE_PATH) -> Catalogue:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    try:
        sources = tuple(Source(**s) for s in raw["sources"])
        files = tuple(FileSource(**f) for f in raw.get("files", []))
    except TypeError as exc:
        raise CatalogueError(f"{path}: malformed entry: {exc}") from exc
    names = [s.name for s in sources] + [f.name for f in files]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CatalogueError(f"{path}: duplicate source name(s) {', '.join(dupes)}")
    return Catalogue(
        sources=sources,
        files=files,
        region_sets=raw["region_sets"],
        default_region_set=raw.get("default_region_set", "ostergotland"),
        reference_region=str(raw.get("reference_region", "00")),
        http=dict(raw.get("http") or {}),
    )
