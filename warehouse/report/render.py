"""Assemble the sections, the header facts and the template into ``data/reports/index.html``."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from regionstat.batches import atomic_write
from regionstat.settings import Settings
from warehouse.report import ages, commuting, key_figures, lq, population, sectors, typology
from warehouse.report.access import Unavailable, Warehouse
from warehouse.report.format import cell
from warehouse.report.model import VINTAGE_UNKNOWN, Block, Section, format_updated

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE_NAME = "report.html.j2"
TOP_FLOWS = 15  # pairs shown in "Main commuting flows"

BlockFn = Callable[[Warehouse], Block]


@dataclass(frozen=True)
class BlockSpec:
    build: BlockFn
    title: str
    domain: str  # the data-vintage header groups blocks by this


@dataclass(frozen=True)
class SectionSpec:
    id: str
    title: str
    intro: str | Callable[[Warehouse], str]  # a function when the text names facts from the warehouse or dbt
    blocks: tuple[BlockSpec, ...] = field(default_factory=tuple)


def _sectors_intro(wh: Warehouse) -> str:
    source = wh.sources.get("employment_by_sector")
    tables = ", ".join(source.source_tables) if source else ""
    basis = {"day": "by workplace", "night": "by residence"}.get(str(wh.vars.get("employment_basis")), "")
    return (
        f"Employment by SNI 2007 sector group ({', '.join(x for x in (tables, basis) if x)}); real figures first "
        "where loaded: a municipality's own district file (FO05) and SCB RAMS by county."
    )


SECTIONS = (
    SectionSpec(
        "population",
        "Population growth by municipality category",
        "How fast the county's municipalities grow, grouped the way the regional-development plan groups them.",
        (
            BlockSpec(population.category_growth, "Growth by municipality category", "population"),
            BlockSpec(population.population_trend, "Population trend, municipalities of the county", "population"),
        ),
    ),
    SectionSpec(
        "ages",
        "Population by age and sex",
        "How old the county's population is: the pyramid of the county and the age structure per municipality.",
        (BlockSpec(ages.age_structure, "Age structure", "population by age"),),
    ),
    SectionSpec(
        "sectors",
        "Largest sectors per municipality",
        _sectors_intro,
        (BlockSpec(sectors.top_sectors, "Top sectors per municipality", "employment"),),
    ),
    SectionSpec(
        "lq",
        "Specialisation: location quotients",
        "Which sectors are over- or under-represented in each municipality compared with Sweden.",
        (
            BlockSpec(lq.location_quotients_real, "Location quotients from real figures", "employment, real figures"),
            BlockSpec(lq.location_quotients, "Location quotients against Sweden, latest year", "employment"),
        ),
    ),
    SectionSpec(
        "commuting",
        "Commuting",
        "Where people live and where they work. Real figures first: the municipality's own commuting file, "
        "the county matrix and SCB's long out-commuting series; then the balance per municipality and the "
        "largest flows of the origin–destination matrix.",
        (
            BlockSpec(commuting.commuting_file_series, "In- and out-commuting, municipal file", "commuting file"),
            BlockSpec(commuting.county_commuting, "Commuting balance per county", "county commuting matrix"),
            BlockSpec(commuting.commuting_series, "Out-commuting since 1993", "commuting totals"),
            BlockSpec(commuting.commuting_balance, "Net commuting per municipality", "commuting matrix"),
            BlockSpec(
                partial(commuting.top_flows, top_n=TOP_FLOWS),
                f"Main commuting flows (top {TOP_FLOWS} pairs)",
                "commuting matrix",
            ),
        ),
    ),
    SectionSpec(
        "key_figures",
        "Key figures",
        "Linköping, Norrköping, the county and Sweden side by side, from Linköping kommun's KS indicators.",
        (BlockSpec(key_figures.key_figures, "Key figures, latest quarter", "key figures"),),
    ),
    SectionSpec(
        "localities",
        "Locality typology",
        "A transparent classification of the county's localities (tätorter).",
        (BlockSpec(typology.locality_typology, "Locality typology (ortstypologi)", "localities"),),
    ),
)


def _unavailable(title: str, reason: str) -> Block:
    log.warning("report: %s not available: %s", title, reason)
    return Block(title=title, unavailable=reason)


def build_block(wh: Warehouse, spec: BlockSpec) -> Block:
    """One block; a missing mart or a failing query is a "not available" note, never the end of the report."""
    try:
        block = spec.build(wh)
    except Unavailable as exc:
        block = _unavailable(spec.title, str(exc))
    except Exception as exc:
        log.warning("report: block %r failed", spec.title, exc_info=True)
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        block = _unavailable(spec.title, f"{type(exc).__name__}: {first_line}")
    block.title = spec.title
    block.domain = spec.domain
    return block


def build_sections(wh: Warehouse) -> list[Section]:
    """The sections of every county of the region set, in code order; with several counties each section's id
    and title name its county (``c06-population``, ``Jönköpings län: Population growth ...``)."""
    counties = wh.counties or (wh.county,)
    sections = []
    for county in counties:
        wh.county = county
        prefix = f"{wh.name_of(county)}: " if len(counties) > 1 else ""
        sections += [
            Section(
                id=f"c{county}-{s.id}" if len(counties) > 1 else s.id,
                title=prefix + s.title,
                intro=s.intro if isinstance(s.intro, str) else s.intro(wh),
                blocks=[build_block(wh, b) for b in s.blocks],
            )
            for s in SECTIONS
        ]
    return sections


def _vintages(sections: list[Section]) -> list[tuple[str, str, str]]:
    """(domain, data years, upstream `updated` of the source tables behind the figures shown) per domain."""
    spans: dict[str, list[int]] = {}
    synthetic_domains: set[str] = set()
    updated: dict[str, dict[str, str]] = {}  # domain -> source table -> upstream updated
    for b in (b for s in sections for b in s.blocks if b.vintage and b.unavailable is None):
        domain = b.domain or b.title
        years = [int(x) for x in re.findall(r"\d{4}", b.vintage)]
        if years:
            span = spans.setdefault(domain, [min(years), max(years)])
            span[0], span[1] = min(span[0], *years), max(span[1], *years)
        if b.synthetic and not b.partly_synthetic:
            synthetic_domains.add(domain)
        for table_id, when in b.updated.items():
            seen = updated.setdefault(domain, {})
            seen[table_id] = max(seen.get(table_id, ""), when)
    return [
        (
            d,
            (str(a) if a == b else f"{a}–{b}") + (" (synthetic)" if d in synthetic_domains else ""),
            format_updated(dict(sorted(updated.get(d, {}).items()))),
        )
        for d, (a, b) in spans.items()
    ]


def _loaded_sources(wh: Warehouse) -> list[dict[str, Any]]:
    """The footer's table of loaded sources, one row per source of the load ledger."""
    return [
        {
            "source": r["source_name"],
            "raw_table": r["raw_table"],
            "table_id": r["table_id"],
            "synthetic": bool(r["synthetic"]) if pd.notna(r["synthetic"]) else False,
            "updated": wh.updated_of([str(r["table_id"])]).get(str(r["table_id"]), "")[:10] or VINTAGE_UNKNOWN,
            "loaded_at": "" if pd.isna(r["loaded_at"]) else pd.Timestamp(r["loaded_at"]).strftime("%Y-%m-%d"),
        }
        for _, r in wh.loads.iterrows()
    ]


def header_facts(wh: Warehouse, settings: Settings, sections: list[Section]) -> dict[str, Any]:
    synthetic_tables = sorted(
        t for t in set(wh.raw_synthetic) | set(wh.offline_synthetic()) if t in wh.synthetic_inputs([t])
    )
    loaded = ""
    if not wh.loads.empty and wh.loads["loaded_at"].notna().any():
        loaded = str(pd.Timestamp(wh.loads["loaded_at"].max()).strftime("%Y-%m-%d %H:%M UTC"))
    return {
        "title": wh.counties_short_names(),
        "region_set": f"{wh.region_label()} (region set {settings.region_set})",
        "data_source": "bundled offline snapshot" if settings.offline else settings.api_url,
        "vintages": _vintages(sections),
        "loaded": loaded,
        "synthetic_tables": synthetic_tables,
        "sources": _loaded_sources(wh),
        "marts": sorted(wh.tables),
    }


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = cell
    return env


def render_html(settings: Settings, *, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    wh = Warehouse(settings)
    try:
        sections = build_sections(wh)
        facts = header_facts(wh, settings, sections)
    finally:
        wh.close()
    return (
        _environment()
        .get_template(TEMPLATE_NAME)
        .render(
            generated=now.strftime("%Y-%m-%d %H:%M UTC"),
            sections=sections,
            facts=facts,
            warehouse_error=wh.error,
            # link documentation only where it exists (a CLI-only run builds GX Data Docs, not dbt docs)
            gx_docs=(settings.docs_dir / "gx" / "index.html").exists(),
            dbt_docs=(settings.docs_dir / "dbt" / "static_index.html").exists(),
            example_mart=next(
                (m for m in ("mart_commuting_balance", "mart_top_sectors") if m in facts["marts"]),
                facts["marts"][0] if facts["marts"] else "mart_commuting_balance",
            ),
        )
    )


def write_report(*, settings: Settings) -> Path:
    """Render ``<data_dir>/reports/index.html`` (atomically) and return its path."""
    out_dir = settings.reports_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    text = render_html(settings)
    final = out_dir / "index.html"
    atomic_write(final, text)
    log.info("report written to %s", final)
    return final
