"""The source catalogue: one declarative YAML from which extraction, validation, DAGs and dbt sources follow.

It is the one definition of the sources and their SCB tables, the region sets and regions (one reference
file, ``reference/regions.csv``), the series each source delivers and their breaks, the measures (content code
-> name, unit, count or not), freshness thresholds and which offline tables are synthetic. Everything else
(validation suites, DAGs, dbt sources and seeds, the report) reads it through this typed model.

Loading resolves region placeholders (``{municipalities}``, ``{counties}``, ``{reference}``, ``{regions}``)
against the active region set, so every consumer sees concrete selections.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from regionstat.errors import CatalogueError

CATALOGUE_PATH = Path(__file__).with_name("catalogue.yaml")
REGIONS_PATH = Path(__file__).parent / "reference" / "regions.csv"
#: ``counties:06,18`` names an ad-hoc region set of those counties (``regionstat run --counties 06,18``)
COUNTIES_PREFIX = "counties:"
PLACEHOLDERS = ("{municipalities}", "{counties}", "{reference}", "{regions}")

Selection = dict[str, "list[str] | str"]


RegionLevel = Literal["country", "county", "municipality"]


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    level: RegionLevel
    county_code: str  # empty for the country
    name_en: str = ""  # SCB's English label (TAB638 metadata_en)


@dataclass(frozen=True)
class Freshness:
    """Days since the table's upstream ``updated`` after which ``status`` (and dbt source freshness) warn / fail.

    ``error_after_days`` None: only ever a warning (the municipal files, which arrive when a municipality sends them).
    """

    warn_after_days: int
    error_after_days: int | None = None

    def verdict(self, age_days: float) -> Literal["fresh", "warn", "error"]:
        if self.error_after_days is not None and age_days > self.error_after_days:
            return "error"
        return "warn" if age_days > self.warn_after_days else "fresh"


@dataclass(frozen=True)
class SniGroup:
    """One SNI 2007 group as SCB publishes it at municipality level (``total``: A-U+US, not the sum of groups)."""

    code: str
    name_sv: str
    name_en: str
    sort_order: int
    total: bool = False


@dataclass(frozen=True)
class StudyArea:
    """The report's study area: these municipalities of ``county`` (outside the county the flag is not assessed)."""

    county: str
    municipalities: tuple[str, ...]


@dataclass(frozen=True)
class RawTableDoc:
    """The dbt documentation of one raw table: its description and a description per column."""

    description: str
    columns: dict[str, str]


@dataclass(frozen=True)
class DbtSourceGroup:
    """One dbt source (``scb``, ``municipal``): its description, raw tables and a fallback freshness."""

    name: str
    description: str
    tables: dict[str, RawTableDoc]
    freshness: Freshness | None = None


@dataclass(frozen=True)
class Measure:
    """One content code of an SCB table: SCB's name and unit, and whether its values count people."""

    code: str
    name: str
    unit: str
    count: bool = True


@dataclass(frozen=True)
class Series:
    """A stretch of years one source delivers on one definition; the rows of dbt's ``series_breaks`` seed."""

    id: str
    raw_table: str
    source_table: str
    year_from: int
    year_to: int | None
    register: str
    age_range: str | None
    totals_additive: bool
    reconciliation_tolerance: float
    break_note: str


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
    freshness: Freshness | None = None
    series: tuple[str, ...] = ()  # ids of Catalogue.series
    synthetic_offline: bool = False  # the bundled offline snapshot of this table is generated, not SCB's
    measures: dict[str, Measure] = field(default_factory=dict)  # content code -> measure, every code of the table
    region_filter: dict[str, Any] | None = None
    verify_live: str | None = None
    closed: str | None = None  # a series SCB no longer updates (why, or what continues it): no freshness alarm
    http: dict[str, float] | None = None  # this table's overrides of the catalogue's ``http:`` limits
    # the bundled snapshot's stand-in for ``table`` (a labelled-synthetic table of its own, used when the API is
    # regionstat's snapshot and SCB's figures are not bundled, e.g. an earlier tätort delineation)
    offline_table: str | None = None
    # search words for SCB's table list (``GET /tables?query=``) while ``table`` is not a confirmed v2 id:
    # ``regionstat check-catalogue`` lists the tables they find, so the real id can be set in one edit
    discover: str | None = None

    def resolved_selection(self, region_set: RegionSet) -> Selection:
        """The selection with region placeholders replaced by the region set's codes.

        A placeholder may stand alone or as an item of a list (``["{counties}", "{municipalities}"]``: a table
        whose snapshot or SCB table lacks the reference region can leave it out).
        """
        out: Selection = {}
        for variable, spec in self.selection.items():
            spec = _selected_values(spec)
            if isinstance(spec, str) and spec in PLACEHOLDERS:
                out[variable] = region_set.expand(spec)
            elif isinstance(spec, str):
                out[variable] = spec
            else:
                codes: list[str] = []
                for item in (str(v) for v in spec):
                    codes.extend(region_set.expand(item) if item in PLACEHOLDERS else [item])
                out[variable] = list(dict.fromkeys(codes))
        return out

    def region_variables(self) -> tuple[str, ...]:
        """The variables whose selection names a region placeholder: the regions the region set asks for."""
        out = []
        for variable, spec in self.selection.items():
            spec = _selected_values(spec)
            if spec in PLACEHOLDERS if isinstance(spec, str) else any(str(v) in PLACEHOLDERS for v in spec):
                out.append(variable)
        return tuple(out)

    def codelists(self) -> dict[str, str]:
        """Variable -> codelist id for selections written ``{codelist: ID, values: ...}`` (SCB's groupings such
        as ``agg_RegionLA2018`` or ``vs_RegionLän07``); the API then reads the values as that codelist's codes."""
        return {
            variable: str(spec["codelist"])
            for variable, spec in self.selection.items()
            if isinstance(spec, dict) and spec.get("codelist")
        }


def _selected_values(spec: Any) -> Any:
    """The values of a selection entry: the entry itself, or ``values`` of ``{codelist: ID, values: ...}``."""
    if isinstance(spec, dict):
        if "values" not in spec or set(spec) - {"codelist", "values"}:
            raise CatalogueError(f"a selection mapping takes `codelist` and `values`, got {sorted(spec)}")
        return spec["values"]
    return spec


FileFormat = Literal["table", "pxweb_csv"]
#: ``FileSource.matrix`` value: the table id is the file name up to its first ``_`` (``AM0207I6_2023....csv``).
MATRIX_FROM_FILE_NAME = "file_name_prefix"


@dataclass(frozen=True)
class FileSource:
    """Municipal files dropped into the inbox, matched by glob, mapped to a raw table.

    ``format: table`` (default): one row per value, the header names every column (``columns`` maps them).
    ``format: pxweb_csv``: PxWeb's "comma-separated with heading" export: the dimension columns in ``columns`` and
    one column per period (``2018``, ``2024K4``), melted into the target ``period_column``. ``labels`` splits a
    cell such as ``"05 Östergötland county"`` into the code (target) and the label (the named column);
    ``recode`` maps source values to raw values (``men and women`` -> ``total``); ``constants`` adds a column
    with the same value on every row (``basis: day``, ``municipality: '0580'``); ``ignore`` names source
    columns that are dropped on purpose. ``matrix`` is the batch's table id (``_source_table``): a fixed id,
    ``file_name_prefix``, or unset for the file name (then every file is its own series).
    """

    name: str
    pattern: str
    raw_table: str
    description: str
    columns: dict[str, str]
    codes: dict[str, Any] = field(default_factory=dict)  # target column -> code list or reference kind
    limits: dict[str, int] = field(default_factory=dict)  # overrides of extract.files.DEFAULT_LIMITS
    format: FileFormat = "table"
    period_column: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # code target column -> label target column
    recode: dict[str, dict[str, str]] = field(default_factory=dict)  # target column -> {source value: raw value}
    constants: dict[str, str] = field(default_factory=dict)  # target column -> value on every row
    ignore: tuple[str, ...] = ()  # source columns present in the file and dropped on purpose
    matrix: str | None = None

    def __post_init__(self) -> None:
        # YAML gives numbers where codes are meant (``municipality: 0580`` would even lose its zero): text only
        for key, value in self.constants.items():
            if not isinstance(value, str):
                raise CatalogueError(f"files entry {self.name!r}: constant {key!r} must be quoted text, not {value!r}")
        if self.format not in ("table", "pxweb_csv"):
            raise CatalogueError(f"files entry {self.name!r}: unknown format {self.format!r} (table or pxweb_csv)")
        if (self.format == "pxweb_csv") != (self.period_column is not None):
            raise CatalogueError(f"files entry {self.name!r}: period_column is required by, and only for, pxweb_csv")
        object.__setattr__(self, "ignore", tuple(self.ignore))
        mapped = [t for t in self.columns.values() if t not in ("value", "status")]
        unknown = sorted((set(self.labels) | set(self.recode)) - set(mapped))
        if unknown:
            raise CatalogueError(f"files entry {self.name!r}: labels/recode name unmapped column(s) {unknown}")

    @property
    def target_columns(self) -> list[str]:
        """The raw table's dimension columns this entry writes, in landing order (value and status follow)."""
        out: list[str] = []
        for target in self.columns.values():
            if target in ("value", "status"):
                continue
            out.append(target)
            if target in self.labels:
                out.append(self.labels[target])
        if self.period_column:
            out.append(self.period_column)
        out += list(self.constants)
        return list(dict.fromkeys(out))

    def table_id(self, file_name: str) -> str:
        """The batch's table id (``_source_table``) for a file of this entry."""
        if self.matrix is None:
            return file_name
        if self.matrix == MATRIX_FROM_FILE_NAME:
            return file_name.split("_", 1)[0] if "_" in file_name else file_name.rsplit(".", 1)[0]
        return self.matrix

    # "counts": whole, non-negative numbers (the GX suite checks both); "mixed": counts, rates, shares, amounts
    # and net changes side by side (KS indicators), so any sign and fractions are valid values.
    value_kind: Literal["counts", "mixed"] = "counts"


@dataclass(frozen=True)
class Catalogue:
    sources: tuple[Source, ...]
    files: tuple[FileSource, ...]
    region_sets: dict[str, dict[str, Any]]
    default_region_set: str
    reference_region: str
    http: dict[str, float] = field(default_factory=dict)  # request deadline, attempts, retry budget defaults
    series: tuple[Series, ...] = ()
    sni_groups: tuple[SniGroup, ...] = ()  # in the catalogue's order (the total first)
    study_area: StudyArea | None = None
    dbt_sources: tuple[DbtSourceGroup, ...] = ()

    @property
    def sni_codes(self) -> list[str]:
        """The SNI 2007 codes known at municipality level, the total first (the catalogue's order)."""
        return [g.code for g in self.sni_groups]

    def sources_of(self, raw_table: str) -> tuple[Source, ...]:
        """The catalogue sources feeding ``raw_table``, in catalogue order."""
        return tuple(s for s in self.sources if s.raw_table == raw_table)

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

    def measures(self) -> dict[str, Measure]:
        """Every content code of every source's table (codes are unique across SCB tables)."""
        return {code: m for s in self.sources for code, m in s.measures.items()}

    @property
    def non_count_contents(self) -> frozenset[str]:
        """Content codes whose values are not counts of people (areas, densities)."""
        return frozenset(code for code, m in self.measures().items() if not m.count)

    def series_of(self, source: Source) -> tuple[Series, ...]:
        by_id = {s.id: s for s in self.series}
        return tuple(by_id[i] for i in source.series)

    @staticmethod
    def regions() -> tuple[Region, ...]:
        return load_regions()

    def region_set(self, name: str | None = None) -> RegionSet:
        """A named region set, or ``counties:06,18``: those counties, their municipalities and the reference."""
        name = name or self.default_region_set
        if name.startswith(COUNTIES_PREFIX):
            codes = [c.strip() for c in name.removeprefix(COUNTIES_PREFIX).split(",") if c.strip()]
            if not codes:
                raise CatalogueError(f"region set {name!r}: no county codes after {COUNTIES_PREFIX!r}")
            spec: dict[str, Any] = {
                "counties": codes,
                "description": f"Counties {', '.join(codes)}, their municipalities, and the reference economy.",
            }
        elif name not in self.region_sets:
            raise CatalogueError(
                f"unknown region set {name!r} (known: {', '.join(self.region_sets)}, or {COUNTIES_PREFIX}CODES)"
            )
        else:
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
            Region(
                code=r["region_code"],
                name=r["region_name"],
                level=r["level"],  # type: ignore[arg-type]  # the file is generated with these three levels
                county_code=r["county_code"],
                name_en=r["region_name_en"],
            )
            for r in csv.DictReader(fh)
        )


def _source(raw: dict[str, Any]) -> Source:
    """A ``sources:`` entry with its nested parts typed."""
    fields = dict(raw)
    if fields.get("freshness"):
        fields["freshness"] = Freshness(**fields["freshness"])
    series = fields.get("series") or ()
    fields["series"] = (series,) if isinstance(series, str) else tuple(series)
    fields["measures"] = {
        str(code): Measure(code=str(code), **spec) for code, spec in (fields.get("measures") or {}).items()
    }
    return Source(**fields)


def _check_series(path: Path | str, sources: tuple[Source, ...], series: tuple[Series, ...]) -> None:
    """Every series named by a source exists, belongs to that source's table, and has exactly one source."""
    by_id = {s.id: s for s in series}
    named: dict[str, str] = {}
    for src in sources:
        for sid in src.series:
            if sid not in by_id:
                raise CatalogueError(f"{path}: source {src.name!r} names unknown series {sid!r}")
            if by_id[sid].source_table != src.table or by_id[sid].raw_table != src.raw_table:
                raise CatalogueError(
                    f"{path}: series {sid!r} is {by_id[sid].raw_table}/{by_id[sid].source_table}, "
                    f"but source {src.name!r} is {src.raw_table}/{src.table}"
                )
            if sid in named:
                raise CatalogueError(f"{path}: series {sid!r} named by both {named[sid]!r} and {src.name!r}")
            named[sid] = src.name
    orphans = sorted(set(by_id) - set(named))
    if orphans:
        raise CatalogueError(f"{path}: series {', '.join(orphans)} named by no source")


def _dbt_source_group(name: str, raw: dict[str, Any]) -> DbtSourceGroup:
    """A ``dbt_sources:`` entry with its tables and freshness typed."""
    return DbtSourceGroup(
        name=name,
        description=str(raw.get("description", "")).strip(),
        tables={
            str(table): RawTableDoc(
                description=str(doc.get("description", "")).strip(),
                columns={str(c): str(d) for c, d in (doc.get("columns") or {}).items()},
            )
            for table, doc in (raw.get("tables") or {}).items()
        },
        freshness=Freshness(**raw["freshness"]) if raw.get("freshness") else None,
    )


def _check_dbt_sources(path: Path | str, raw_tables: list[str], groups: tuple[DbtSourceGroup, ...]) -> None:
    """Every raw table is documented exactly once, and only raw tables are."""
    documented = [t for g in groups for t in g.tables]
    twice = sorted({t for t in documented if documented.count(t) > 1})
    if twice:
        raise CatalogueError(f"{path}: dbt_sources documents {', '.join(twice)} more than once")
    missing = [t for t in raw_tables if t not in documented]
    if missing:
        raise CatalogueError(f"{path}: dbt_sources lacks raw table(s) {', '.join(missing)}")
    extra = sorted(set(documented) - set(raw_tables))
    if extra:
        raise CatalogueError(f"{path}: dbt_sources documents {', '.join(extra)}, which no source or file feeds")


def load_catalogue(path: str | os.PathLike[str] | None = None) -> Catalogue:
    """The catalogue at ``path``, else ``$REGIONSTAT_CATALOGUE``, else the bundled ``catalogue.yaml``."""
    path = Path(path or os.environ.get("REGIONSTAT_CATALOGUE") or CATALOGUE_PATH)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        sources = tuple(_source(s) for s in raw["sources"])
        files = tuple(FileSource(**f) for f in raw.get("files", []))
        series = tuple(Series(**s) for s in raw.get("series") or [])
        sni_groups = tuple(SniGroup(**g) for g in raw.get("sni2007_groups") or [])
        area = raw.get("study_area")
        study_area = StudyArea(str(area["county"]), tuple(str(m) for m in area["municipalities"])) if area else None
        dbt_sources = tuple(_dbt_source_group(n, g) for n, g in (raw.get("dbt_sources") or {}).items())
    except (TypeError, KeyError) as exc:
        raise CatalogueError(f"{path}: malformed entry: {exc}") from exc
    _check_series(path, sources, series)
    for f in files:
        if f.value_kind not in ("counts", "mixed"):
            raise CatalogueError(
                f"{path}: files entry {f.name!r}: value_kind must be counts or mixed, not {f.value_kind!r}"
            )
    if dbt_sources:
        raw_tables = list(dict.fromkeys([s.raw_table for s in sources] + [f.raw_table for f in files]))
        _check_dbt_sources(path, raw_tables, dbt_sources)
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
        series=series,
        sni_groups=sni_groups,
        study_area=study_area,
        dbt_sources=dbt_sources,
    )
