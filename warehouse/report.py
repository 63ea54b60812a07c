"""The self-contained HTML report: ``data/reports/index.html``.

One file that works offline: inline CSS, charts as inline SVG rendered by vl-convert (no JavaScript, no CDN).
Every block reads one mart from schema ``marts`` (the contract in ``dbt_project/models/marts/**/_*__models.yml``)
with a SQL query through a read-only connection. A mart that is missing (dbt still running, a failed build) or a
block that fails gives a visible "not available: <reason>" note and a log warning, never a crash. Output is
deterministic apart from the generation timestamp.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from regionstat.catalogue import REGIONS_PATH
from regionstat.settings import PROJECT_ROOT, Settings
from warehouse.db import connect_reader
from warehouse.provenance import (
    PROVENANCE_COLUMNS,
    SYNTHETIC_FALSE,
    SYNTHETIC_PARTIAL,
    SourceVintage,
    combine,
    from_lineage,
    landing_updated,
    read_model_docs,
    source_vintages,
)

log = logging.getLogger(__name__)

MART_SCHEMA = "marts"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "report.html.j2"
REGIONS_CSV = REGIONS_PATH
SEEDS_DIR = PROJECT_ROOT / "dbt_project" / "seeds"
COUNTY_CODE = "05"

#: raw tables that are synthetic in the offline snapshot, used only when neither the mart nor the ledger says.
OFFLINE_SYNTHETIC_RAW = ("employment_by_sector", "commuting_flows")
#: the SCB table behind each raw table (for source lines when the ledger is empty).
RAW_SOURCES = {
    "population": "SCB TAB638/TAB5557",
    "land_area": "SCB TAB628",
    "localities": "SCB MI0810 LandarealTatortN",
    "employment_by_sector": "SCB TAB3204",
    "commuting_flows": "SCB TAB1830",
    "commuting_totals": "SCB TAB5839/TAB3266/TAB3267",
    "municipal_commuting": "municipal PE12.px",
    "municipal_day_population": "municipal FO05.px",
}
#: K1/K2/K3 in display order.
CATEGORY_ORDER = {"K1": 0, "K2": 1, "K3": 2}


# ----------------------------------------------------------------------------------------------------------------
# Small helpers


_SV_ORDER = str.maketrans({"Å": "\uffe1", "Ä": "\uffe2", "Ö": "\uffe3", "å": "\uffe4", "ä": "\uffe5", "ö": "\uffe6"})


def sv_key(text: object) -> str:
    """Swedish alphabetical order (… Z, Å, Ä, Ö) for sorting names."""
    return str(text).translate(_SV_ORDER).casefold()


def _load_region_names() -> dict[str, str]:
    try:
        with open(REGIONS_CSV, encoding="utf-8") as fh:
            return {r["region_code"]: r["region_name"] for r in csv.DictReader(fh)}
    except OSError:
        return {}


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}–{last}"


def _any(flags: pd.Series) -> bool:
    """``is_synthetic`` of any row (null counts as false)."""
    return bool(flags.fillna(False).astype(bool).any())


# ----------------------------------------------------------------------------------------------------------------
# Formatting


def _fmt_int(v: object) -> str:
    return "–" if pd.isna(v) else f"{round(float(v)):,}".replace(",", "\u2009")


def _fmt_num(v: object, digits: int = 2) -> str:
    return "–" if pd.isna(v) else f"{float(v):,.{digits}f}".replace(",", "\u2009").replace("-", "−")


def _fmt_pct(v: object, digits: int = 1, signed: bool = True) -> str:
    if v is None or pd.isna(v):
        return "–"
    f = float(v)
    if round(f, digits) == 0:
        f = 0.0
    s = f"{f:+.{digits}f}" if signed and f != 0 else f"{f:.{digits}f}"
    return s.replace("-", "−") + "\u2009%"


def _fmt_signed_int(v: object) -> str:
    iv = round(float(v))
    return ("+" if iv > 0 else "±" if iv == 0 else "−") + _fmt_int(abs(iv))


#: how a value of each kind is shown (missing values are shown as "–").
_FORMATS: dict[str, Callable[[object], str]] = {
    "text": lambda v: html.escape(str(v)),
    "plain": lambda v: str(int(v)),  # years, ranks
    "int": _fmt_int,
    "sint": _fmt_signed_int,  # signed count: +12, ±0, −3
    "num2": _fmt_num,
    "pct": _fmt_pct,  # a signed percentage
    "pctu": lambda v: _fmt_pct(v, signed=False),
    "fracu": lambda v: _fmt_pct(float(v) * 100, signed=False),  # a share 0-1 as an unsigned percentage
}


def _cell(kind: str, v: object) -> str:
    return "–" if pd.isna(v) else _FORMATS[kind](v)


def html_table(df: pd.DataFrame, columns: Sequence[tuple[str, str, str]], *, compact: bool = False) -> Markup:
    """A table of ``df`` with one column per (column, header, kind); numbers are right-aligned."""
    out = [f'<div class="table-wrap"><table class="data{" compact" if compact else ""}"><thead><tr>']
    for _, header, kind in columns:
        cls = "" if kind == "text" else ' class="n"'
        out.append(f"<th{cls}>{html.escape(header)}</th>")
    out.append("</tr></thead><tbody>")
    for _, row in df.iterrows():
        out.append("<tr>")
        for col, _, kind in columns:
            text = _cell(kind, row[col])
            out.append(f"<td>{text}</td>" if kind == "text" else f'<td class="n">{text}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return Markup("".join(out))


# ----------------------------------------------------------------------------------------------------------------
# Charts


_CHART_FONT = "Inter, Segoe UI, Helvetica Neue, Arial, sans-serif"
_CHART_CONFIG = {
    "font": _CHART_FONT,
    "view": {"stroke": None},
    "axis": {
        "labelColor": "#374151",
        "titleColor": "#111827",
        "gridColor": "#eef0f3",
        "domainColor": "#9ca3af",
        "tickColor": "#9ca3af",
        "labelFontSize": 11,
        "titleFontSize": 11,
        "titleFontWeight": 600,
    },
    "legend": {"labelFontSize": 11, "titleFontSize": 11, "labelColor": "#374151", "titleColor": "#111827"},
    "header": {"labelFontSize": 11, "labelFontWeight": 600, "labelColor": "#111827", "titleFontSize": 0},
    "title": {"fontSize": 13, "color": "#111827"},
    "background": "white",
}


def render_svg(spec: dict, prefix: str) -> Markup:
    """Vega-Lite spec -> inline SVG with element ids made unique per chart and a responsive width."""
    import vl_convert as vlc

    spec = dict(spec)
    spec.pop("$schema", None)
    config = dict(_CHART_CONFIG)
    config.update(spec.get("config") or {})
    spec["config"] = config
    svg = vlc.vegalite_to_svg(spec)
    # Renumber element ids per chart: unique in the page and independent of vl-convert's global counters.
    ids = list(dict.fromkeys(re.findall(r'\bid="([^"]+)"', svg)))
    mapping = {old: f"{prefix}-{n}" for n, old in enumerate(ids, start=1)}
    if mapping:
        pattern = re.compile(r'(\bid="|url\(#|href="#)(' + "|".join(map(re.escape, ids)) + r')(?=[")])')
        svg = pattern.sub(lambda m: m.group(1) + mapping[m.group(2)], svg)
    m = re.match(r'<svg([^>]*?)\swidth="([\d.]+)"\sheight="([\d.]+)"', svg)
    if m:
        w = m.group(2)
        svg = svg.replace(
            f'width="{w}" height="{m.group(3)}"',
            f'width="{w}" height="{m.group(3)}" style="max-width:100%;height:auto"',
            1,
        )
    svg = svg.replace("<svg ", '<svg role="img" ', 1)
    return Markup(f'<figure class="chart">{svg}</figure>')


def _chart(build: Callable[[], dict], prefix: str) -> Markup:
    try:
        return render_svg(build(), prefix)
    except Exception as exc:  # a chart must never take the report down
        log.warning("report: chart %s failed: %s", prefix, exc)
        return _note(f"chart not available: {exc}")


def _note(text: str, kind: str = "na") -> Markup:
    return Markup(f'<p class="note {kind}">{html.escape(text)}</p>')


# ----------------------------------------------------------------------------------------------------------------
# Warehouse access


class Unavailable(Exception):
    """A block cannot be shown; the message says why (shown as "not available: <message>")."""


class Warehouse:
    """What the report needs from the warehouse: the marts, the load ledger and the dbt lineage."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.con = None
        self.error: str | None = None
        self.tables: set[str] = set()
        self.loads = pd.DataFrame()
        self.raw_synthetic: dict[str, bool] = {}
        self.lineage: dict[str, set[str]] = {}
        self.columns: dict[str, set[str]] = {}  # mart -> its columns
        #: raw table -> the source tables live in it, with their upstream `updated` and synthetic flag
        self.vintages: dict[str, list[SourceVintage]] = {}
        self.munis: dict[str, dict] = {}
        self._names = _load_region_names()
        try:
            self.con = connect_reader(settings)
        except Exception as exc:
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("report: warehouse not readable: %s", self.error)
            return
        try:
            rows = self.con.execute(
                "select table_name from information_schema.tables where table_schema = ?", [MART_SCHEMA]
            ).fetchall()
            self.tables = {r[0] for r in rows}
            for table, column in self.con.execute(
                "select table_name, column_name from information_schema.columns where table_schema = ?", [MART_SCHEMA]
            ).fetchall():
                self.columns.setdefault(table, set()).add(column)
        except Exception as exc:
            log.warning("report: cannot list marts: %s", exc)
        self._read_ledger()
        self._read_lineage()
        self._read_municipalities()

    def close(self) -> None:
        if self.con is not None:
            self.con.close()

    # -- marts ------------------------------------------------------------------------------------------------
    def read(self, mart: str, sql: str, **params: object) -> pd.DataFrame:
        """Run ``sql`` against ``marts.<mart>`` (written ``{mart}`` in the query, parameters as ``$name``).
        ``{prov}`` in a select list becomes the mart's provenance columns (``, is_synthetic, source_tables, ...``,
        those it has), so each block can show the flag and vintage of exactly the rows it displays.
        Raises ``Unavailable`` when the mart is missing or the query returns no rows."""
        if mart not in self.tables:
            have = ", ".join(sorted(self.tables)) or "none"
            raise Unavailable(
                self.error or f"mart {MART_SCHEMA}.{mart} not found in the warehouse (marts present: {have})"
            )
        prov = "".join(f", {c}" for c in PROVENANCE_COLUMNS if c in self.columns.get(mart, ()))
        df = self.con.execute(sql.format(mart=f'{MART_SCHEMA}."{mart}"', prov=prov), params).df()
        if df.empty:
            raise Unavailable(f"{MART_SCHEMA}.{mart} has no rows for county {COUNTY_CODE}")
        return df

    def seed(self, name: str, order_by: Sequence[str]) -> pd.DataFrame:
        """A dbt seed from schema ``seeds``, or from its CSV in the dbt project when the warehouse has none."""
        try:
            return self.con.execute(f'select * from seeds."{name}" order by {", ".join(order_by)}').df()
        except Exception:
            path = SEEDS_DIR / f"{name}.csv"
            return pd.read_csv(path).sort_values(list(order_by), kind="stable") if path.exists() else pd.DataFrame()

    def name_of(self, code: str) -> str:
        return self._names.get(str(code), str(code))

    def muni_info(self, code: str) -> dict:
        return self.munis.get(str(code), {})

    def in_study_area(self, code: str) -> bool:
        flag = self.muni_info(code).get("is_study_area")
        return bool(flag) if pd.notna(flag) else False

    def _read_municipalities(self) -> None:
        """Municipality facts (names, study area, travel time to K1) from dim_municipalities."""
        if "dim_municipalities" not in self.tables:
            return
        try:
            dim = self.con.execute(
                f"select municipality_code, municipality_name, is_study_area, minutes_by_car_to_k1 "
                f"from {MART_SCHEMA}.dim_municipalities order by municipality_code"
            ).df()
        except Exception as exc:
            log.info("report: cannot read dim_municipalities: %s", exc)
            return
        for rec in dim.to_dict("records"):
            self.munis[rec["municipality_code"]] = rec
            if rec["municipality_name"]:
                self._names[rec["municipality_code"]] = rec["municipality_name"]

    # -- ledger and lineage -----------------------------------------------------------------------------------
    def _read_ledger(self) -> None:
        try:
            self.loads = self.con.execute(
                "select source_name, raw_table, table_id, synthetic, loaded_at, load_id from ops.loads "
                "where status = 'loaded' qualify row_number() over (partition by source_name "
                "order by loaded_at desc, load_id desc) = 1 order by raw_table, source_name"
            ).df()
        except Exception as exc:
            log.info("report: no load ledger (%s)", str(exc).splitlines()[0])
            self.loads = pd.DataFrame(
                columns=["source_name", "raw_table", "table_id", "synthetic", "loaded_at", "load_id"]
            )
        self._read_vintages()
        for raw_table, grp in self.loads.groupby("raw_table", sort=True):
            if grp["synthetic"].notna().any():
                self.raw_synthetic[str(raw_table)] = _any(grp["synthetic"])
        try:
            raw_tables = [
                r[0]
                for r in self.con.execute(
                    "select distinct table_name from information_schema.columns where table_schema = 'raw' "
                    "and column_name = '_synthetic' order by 1"
                ).fetchall()
            ]
        except Exception:
            raw_tables = []
        for t in raw_tables:
            if t in self.raw_synthetic:
                continue
            try:
                flag = self.con.execute(f'select bool_or(_synthetic) from raw."{t}"').fetchone()[0]
            except Exception:
                continue
            if flag is not None:
                self.raw_synthetic[t] = bool(flag)

    def _read_vintages(self) -> None:
        """Source tables per raw table with their upstream ``updated``: from the raw lineage columns, else (a
        warehouse without them) from the ledger and the landing manifests of its loads."""
        if self.con is not None:
            try:
                self.vintages = source_vintages(self.con, self.settings)
            except Exception as exc:
                log.info("report: cannot read raw lineage columns: %s", str(exc).splitlines()[0])
        for raw_table, grp in self.loads.groupby("raw_table", sort=True):
            if self.vintages.get(str(raw_table)):
                continue
            found = {}
            for r in grp.itertuples(index=False):
                if pd.isna(r.table_id):
                    continue
                updated = landing_updated(self.settings, str(raw_table), str(r.source_name), str(r.load_id))
                found[str(r.table_id)] = SourceVintage(
                    str(raw_table), str(r.table_id), updated, bool(r.synthetic) if pd.notna(r.synthetic) else False
                )
            self.vintages[str(raw_table)] = [found[k] for k in sorted(found)]

    def _read_lineage(self) -> None:
        """model name -> raw tables it depends on, from dbt's manifest (when a build has written one)."""
        self.lineage = {name: doc.raw_tables for name, doc in read_model_docs(self.settings).items()}

    # -- provenance -------------------------------------------------------------------------------------------
    def raw_tables_of(self, mart: str, default: Sequence[str]) -> list[str]:
        if self.lineage.get(mart):
            return sorted(self.lineage[mart])
        return list(default)

    def synthetic_inputs(self, raw_tables: Sequence[str]) -> list[str]:
        out = []
        for t in raw_tables:
            flag = self.raw_synthetic.get(t)
            if flag is None:
                flag = self.settings.offline and t in OFFLINE_SYNTHETIC_RAW and not self.raw_synthetic
            if flag:
                out.append(t)
        return out

    def raw_table_of(self, table_id: str) -> str | None:
        return next((raw for raw, vs in self.vintages.items() for v in vs if v.table_id == table_id), None)

    def source_label(self, raw_tables: Sequence[str], table_ids: Sequence[str] = ()) -> str:
        """``TAB5557 + TAB638 (population); ...``: the source tables behind a block, grouped by raw table."""
        if table_ids:
            groups: dict[str, list[str]] = {}
            for t in table_ids:
                groups.setdefault(self.raw_table_of(t) or "", []).append(t)
            return "; ".join(f"{' + '.join(ids)} ({raw})" if raw else " + ".join(ids) for raw, ids in groups.items())
        return "; ".join(f"{RAW_SOURCES.get(t, t)} ({t})" for t in raw_tables)

    def updated_of(self, table_ids: Sequence[str] = ()) -> dict[str, str]:
        """table id -> upstream ``updated`` of the live batch (all known source tables when none are named)."""
        known = {v.table_id: v.updated for vs in self.vintages.values() for v in vs if v.updated}
        return {t: known[t] for t in (table_ids or sorted(known)) if t in known}


# ----------------------------------------------------------------------------------------------------------------
# Report structure


@dataclass
class Block:
    body: Markup
    title: str = ""
    source: str = ""
    vintage: str = ""
    synthetic: bool = False
    synthetic_note: str = ""
    partly_synthetic: bool = False
    unavailable: str | None = None
    intro: str = ""
    domain: str = ""
    #: source table id -> upstream `updated` (ISO-8601 UTC) of the rows shown, in source-table order
    updated: dict[str, str] = field(default_factory=dict)

    @property
    def updated_text(self) -> str:
        return format_updated(self.updated)


@dataclass
class Section:
    id: str
    title: str
    intro: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def synthetic(self) -> bool:
        return any(b.synthetic for b in self.blocks)

    @property
    def partly_synthetic(self) -> bool:
        """Some, not all, of the section's data is synthetic (a real block next to a synthetic one, or a block
        built partly from synthetic inputs)."""
        shown = [b for b in self.blocks if b.unavailable is None]
        return self.synthetic and (
            any(not b.synthetic for b in shown) or all(b.partly_synthetic for b in shown if b.synthetic)
        )

    @property
    def available(self) -> bool:
        return any(b.unavailable is None for b in self.blocks)


def format_updated(updated: dict[str, str]) -> str:
    """``TAB638 2025-02-21, TAB5557 2026-02-24``: upstream ``updated`` dates per source table, for reading."""
    return ", ".join(f"{t} {u[:10]}" for t, u in updated.items())


def _provenance(wh: Warehouse, mart: str, rows: pd.DataFrame, default_raw: Sequence[str]) -> dict:
    """Source line, upstream vintage and synthetic flags of a block, from the mart's provenance columns over the
    rows it shows (``is_synthetic``, ``synthetic_inputs``, ``source_tables``, ``source_updated``, selected with
    ``{prov}``). Whatever the mart lacks comes from dbt's lineage: the raw tables it is built from (``default_raw``
    when no manifest says) and the batches live in them."""
    raw = wh.raw_tables_of(mart, default_raw)
    syn_raw = wh.synthetic_inputs(raw)  # raw tables, with the offline fallback when nothing is recorded
    lineage = from_lineage(raw, wh.vintages)

    def column(name: str) -> list | None:
        return list(rows[name]) if name in rows.columns else None

    syn_rows = int(rows["is_synthetic"].fillna(False).astype(bool).sum()) if "is_synthetic" in rows.columns else None
    prov = combine(
        rows=len(rows),
        synthetic_rows=syn_rows,
        source_tables=column("source_tables"),
        source_updated=column("source_updated"),
        synthetic_inputs=column("synthetic_inputs"),
        lineage=lineage,
    )
    # without row flags, the synthetic raw tables the mart is built from decide
    synthetic = bool(syn_raw) if syn_rows is None else prov.synthetic != SYNTHETIC_FALSE
    if "synthetic_inputs" in rows.columns and "source_tables" in rows.columns:
        syn_ids = set(prov.synthetic_inputs)
        built_in_part = synthetic and bool(syn_ids) and syn_ids < set(prov.source_tables)
        inputs = ", ".join(
            f"raw.{wh.raw_table_of(t)} ({t})" if wh.raw_table_of(t) else t for t in prov.synthetic_inputs
        )
    else:
        built_in_part = bool(synthetic and syn_raw and len(syn_raw) < len(raw))
        inputs = ", ".join(f"raw.{t}" for t in syn_raw)
    partly = prov.synthetic == SYNTHETIC_PARTIAL or built_in_part
    if prov.synthetic == SYNTHETIC_PARTIAL:
        note = f"partly synthetic: {syn_rows} of {len(rows)} rows shown derive from synthetic inputs: {inputs}"
    elif partly:
        note = "partly synthetic: built in part from " + inputs
    elif synthetic:
        note = "synthetic data (offline snapshot), not SCB figures"
    else:
        note = ""
    updated = (prov.source_updated or wh.updated_of(prov.source_tables)) if prov.source_tables else {}
    return {
        "source": f"{MART_SCHEMA}.{mart} ← {wh.source_label(raw, prov.source_tables)}",
        "synthetic": synthetic,
        "synthetic_note": note,
        "partly_synthetic": partly,
        "updated": updated,
    }


def _unavailable(title: str, reason: str) -> Block:
    log.warning("report: %s not available: %s", title, reason)
    return Block(title=title, body=_note(f"not available: {reason}"), unavailable=reason)


def _guard(title: str, fn: Callable[[], Block]) -> Block:
    try:
        block = fn()
    except Unavailable as exc:
        return _unavailable(title, str(exc))
    except Exception as exc:
        log.warning("report: block %r failed", title, exc_info=True)
        return _unavailable(title, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    block.title = title
    return block


# ----------------------------------------------------------------------------------------------------------------
# 1. Population


def block_category_growth(wh: Warehouse) -> Block:
    mart = "mart_population_growth_by_category"
    # The explicit periods (labels like '2014-2024'), then the 10- and 5-year horizons ending in the latest year.
    df = wh.read(
        mart,
        """
        select group_type, group_code, category, category_basis, members, horizon_label, start_year, end_year,
               growth_pct_pooled, growth_pct_unweighted_mean{prov}
        from {mart}
        where county_code = $county
          and (horizon_label like '%-%'
               or horizon_label in ('10y', '5y')
                  and end_year = (select max(end_year) from {mart} where county_code = $county))
        order by horizon_label not like '%-%', start_year, end_year, group_type, group_code
        """,
        county=COUNTY_CODE,
    )
    prov = _provenance(wh, mart, df, ["population"])
    periods: dict[tuple[int, int], str] = {}  # (start, end) -> label, at most 4
    growth: dict[tuple[str, str, int, int], tuple[float | None, float | None]] = {}
    for r in df.itertuples(index=False):
        a, b = int(r.start_year), int(r.end_year)
        if (a, b) not in periods and len(periods) < 4:
            periods[(a, b)] = r.horizon_label
        growth.setdefault(
            (r.group_type, r.group_code, a, b),
            tuple(None if pd.isna(v) else float(v) for v in (r.growth_pct_pooled, r.growth_pct_unweighted_mean)),
        )

    groups = df[df["group_type"].isin(["county", "category"])]
    keys = sorted(
        set(zip(groups["group_type"], groups["group_code"], strict=True)),
        key=lambda k: (k[0] != "category", CATEGORY_ORDER.get(k[1], 3), k[1]),
    )
    # wide table: group x (period -> pooled, mean)
    head1 = ['<th rowspan="2">Group</th>', '<th rowspan="2" class="n">Municipalities</th>']
    head2 = []
    for (a, b), lab in periods.items():
        head1.append(
            f'<th colspan="2" class="c grp">{a}–{b}'
            f"{'' if '-' in lab else f' <span class=muted>({html.escape(lab)})</span>'}</th>"
        )
        head2.append('<th class="n grp-l">pooled</th><th class="n">mean</th>')
    rows = []
    chart_rows = []
    for t, c in keys:
        sub = groups[(groups["group_type"] == t) & (groups["group_code"] == c)]
        name = "County" if t == "county" else c
        basis_txt = ""
        if t == "category":
            basis_txt = ", ".join(sorted({str(v).replace("_", " ") for v in sub["category_basis"].dropna()}))
        cells = [
            f"<td><b>{html.escape(name)}</b>"
            f"{f' <span class=muted>{html.escape(basis_txt)}</span>' if basis_txt else ''}</td>",
            f'<td class="n">{_fmt_int(sub["members"].max())}</td>',
        ]
        for a, b in periods:
            p, m = growth.get((t, c, a, b), (None, None))
            cells.append(f'<td class="n grp-l">{_fmt_pct(p)}</td><td class="n">{_fmt_pct(m)}</td>')
            for measure, v in (("pooled", p), ("unweighted mean", m)):
                if v is not None:
                    chart_rows.append({"group": name, "period": f"{a}–{b}", "measure": measure, "growth": v})
        rows.append(f'<tr class="{"county" if t == "county" else ""}">{"".join(cells)}</tr>')
    parts: list[Markup] = [
        Markup(
            '<div class="table-wrap"><table class="data growth"><thead><tr>'
            + "".join(head1)
            + "</tr><tr>"
            + "".join(head2)
            + "</tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></div>"
        )
    ]

    if chart_rows:
        chart_df = pd.DataFrame(chart_rows)
        group_order = [c for t, c in keys if t != "county"] + ["County"]

        def spec() -> dict:
            import altair as alt

            return (
                alt.Chart(chart_df)
                .mark_bar()
                .encode(
                    x=alt.X("group:N", title=None, sort=group_order, axis=alt.Axis(labelAngle=0)),
                    xOffset=alt.XOffset("measure:N"),
                    y=alt.Y("growth:Q", title="growth, %"),
                    color=alt.Color(
                        "measure:N",
                        title=None,
                        scale=alt.Scale(domain=["pooled", "unweighted mean"], range=["#1d4ed8", "#93c5fd"]),
                        legend=alt.Legend(orient="top"),
                    ),
                    tooltip=["group", "period", "measure", alt.Tooltip("growth:Q", format=".2f")],
                )
                .properties(width=150, height=150)
                .facet(column=alt.Column("period:N", title=None, sort=[f"{a}–{b}" for a, b in periods]), spacing=16)
                .to_dict()
            )

        parts.append(_chart(spec, "catgrowth"))

    munis = df[df["group_type"] == "municipality"].drop_duplicates("group_code")
    if not munis.empty:
        munis = munis.assign(_order=munis["category"].map(lambda k: CATEGORY_ORDER.get(k, 3)))
        munis = munis.sort_values(["_order", "group_code"], kind="stable")
        any_minutes = any(pd.notna(wh.muni_info(c).get("minutes_by_car_to_k1")) for c in munis["group_code"])
        mrows = []
        for r in munis.itertuples(index=False):
            code = r.group_code
            b_txt = "" if pd.isna(r.category_basis) else r.category_basis
            cells = [
                f"<td>{html.escape(wh.name_of(code))} <span class=muted>{html.escape(code)}</span></td>",
                f"<td><b>{html.escape('–' if pd.isna(r.category) else r.category)}</b></td>",
                f'<td><span class="basis {"proxy" if "proxy" in b_txt else ""}">'
                f"{html.escape(b_txt.replace('_', ' '))}</span></td>",
            ]
            if any_minutes:
                cells.append(f'<td class="n">{_fmt_int(wh.muni_info(code).get("minutes_by_car_to_k1"))}</td>')
            for a, b in periods:
                pooled, _ = growth.get(("municipality", code, a, b), (None, None))
                cells.append(f'<td class="n">{_fmt_pct(pooled)}</td>')
            mrows.append("<tr>" + "".join(cells) + "</tr>")
        head = (
            "<tr><th>Municipality</th><th>Category</th><th>Basis</th>"
            + ("<th class='n'>Minutes to K1</th>" if any_minutes else "")
            + "".join(f"<th class='n'>{a}–{b}</th>" for a, b in periods)
            + "</tr>"
        )
        parts.append(Markup("<h4>Members and their own growth</h4>"))
        parts.append(
            Markup(
                '<div class="table-wrap"><table class="data compact"><thead>'
                + head
                + "</thead><tbody>"
                + "".join(mrows)
                + "</tbody></table></div>"
            )
        )
        if munis["category_basis"].astype(str).str.contains("proxy").any():
            parts.append(
                _note(
                    "Basis 'commuting proxy': no travel time is maintained in the seed for this "
                    "municipality, so it is K2 when at least the var k2_proxy_min_share_to_k1 (default 7.5 %) "
                    "of its employed residents work in K1, or K1 takes its largest outflow, instead of the "
                    "45-minute rule. Offline the commuting matrix is synthetic, and so is this proxy.",
                    kind="info",
                )
            )
    return Block(
        body=Markup("").join(parts),
        vintage=_span(min(a for a, _ in periods), max(b for _, b in periods)),
        **prov,
        intro="K1 is the county's largest municipality, K2 the municipalities within 45 minutes by car of "
        "K1, K3 the rest. 'Pooled' is the growth of the members' summed population; 'mean' is the "
        "unweighted mean of the members' own growth rates, the convention of the "
        "regional-development slides.",
    )


def block_population_trend(wh: Warehouse) -> Block:
    mart = "fct_population"
    d = wh.read(
        mart,
        """
        select region_name as municipality, year, population{prov}
        from {mart}
        where region_level = 'municipality' and starts_with(region_code, $county) and population is not null
        order by municipality, year
        """,
        county=COUNTY_CODE,
    )
    prov = _provenance(wh, mart, d, ["population"])
    d = d[["municipality", "year", "population"]]
    first, last = int(d["year"].min()), int(d["year"].max())
    latest = d[d["year"] == last].sort_values("population", ascending=False)
    order = list(latest["municipality"])

    def spec() -> dict:
        import altair as alt

        return (
            alt.Chart(d)
            .mark_line(strokeWidth=1.6, color="#1d4ed8")
            .encode(
                x=alt.X("year:Q", title=None, axis=alt.Axis(format="d", tickCount=4)),
                y=alt.Y(
                    "population:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format="~s", tickCount=4)
                ),
            )
            .properties(width=190, height=95)
            .facet(
                facet=alt.Facet("municipality:N", title=None, sort=order),
                columns=4,
                spacing={"row": 14, "column": 18},
            )
            .resolve_scale(y="independent")
            .resolve_axis(x="independent")
            .to_dict()
        )

    body = _chart(spec, "poptrend")
    body += _note(
        f"{len(order)} municipalities, {first}–{last}; {_fmt_int(latest['population'].sum())} inhabitants in "
        f"{last}. Each panel has its own vertical scale (ordered by size).",
        kind="info",
    )
    return Block(body=body, vintage=f"{first}–{last}", **prov)


# ----------------------------------------------------------------------------------------------------------------
# 2. Top sectors


def block_top_sectors(wh: Warehouse) -> Block:
    mart = "mart_top_sectors"
    # The mart holds one basis (var employment_basis); the county's municipalities first, then the county itself.
    df = wh.read(
        mart,
        """
        select region_code, year, sector_rank, sni_group_code, sni_group_name_en, employed, share, comparison_year,
               rank_change{prov}
        from {mart}
        where year = (select max(year) from {mart}) and starts_with(region_code, $county)
        order by length(region_code) desc, region_code, sector_rank
        """,
        county=COUNTY_CODE,
    )
    prov = _provenance(wh, mart, df, ["employment_by_sector"])
    comparison = df["comparison_year"].dropna()
    rank_change = f"Rank change since {int(comparison.max())}" if len(comparison) else "Rank change"
    parts = []
    for i, (code, sub) in enumerate(df.groupby("region_code", sort=False)):
        top = sub.iloc[0]
        summary = (
            f"<b>{html.escape(wh.name_of(code))}</b> <span class='muted'>{html.escape(code)}</span>"
            f"<span class='sum-right'>largest: {html.escape(str(top['sni_group_name_en']))}"
            f" · {_cell('fracu', top['share'])}</span>"
        )
        rows = [
            '<div class="table-wrap"><table class="data compact"><thead><tr><th class="n">#</th><th>Sector</th>'
            '<th class="n">Employed</th><th class="n">Share</th><th class="barcol"></th>'
            f'<th class="n">{html.escape(rank_change)}</th></tr></thead><tbody>'
        ]
        max_share = float(sub["share"].max()) if sub["share"].notna().any() else 0.0
        for _, r in sub.iterrows():
            width = 0.0 if pd.isna(r["share"]) or max_share <= 0 else 100.0 * float(r["share"]) / max_share
            rows.append(
                f'<tr><td class="n">{int(r["sector_rank"])}</td><td>{html.escape(str(r["sni_group_name_en"]))} '
                f'<span class="muted">{html.escape(str(r["sni_group_code"]))}</span></td>'
                f'<td class="n">{_fmt_int(r["employed"])}</td>'
                f'<td class="n">{_cell("fracu", r["share"])}</td><td class="barcol"><span class="bar" '
                f'style="width:{width:.1f}%"></span></td>'
                f'<td class="n">{_cell("sint", r["rank_change"])}</td></tr>'
            )
        rows.append("</tbody></table></div>")
        parts.append(f"<details{' open' if i == 0 else ''}><summary>{summary}</summary>{''.join(rows)}</details>")
    return Block(
        body=Markup("".join(parts)),
        vintage=str(int(df["year"].max())),
        **prov,
        intro="The 15 largest SNI 2007 sector groups by employment in each municipality (click a "
        "municipality to open it). The bar shows the share of the municipality's employment.",
    )


# ----------------------------------------------------------------------------------------------------------------
# 3. Location quotients


def block_lq(wh: Warehouse) -> Block:
    mart = "mart_sector_location_quotients"
    d = wh.read(
        mart,
        """
        select region_code, year, sni_group_code, lq_vs_reference as lq{prov}
        from {mart}
        where basis = 'day' and region_level = 'municipality' and starts_with(region_code, $county)
          and sni_group_code <> 'A-U+US'
          and year = (select max(year) from {mart} where basis = 'day')
        order by region_code, sni_group_code
        """,
        county=COUNTY_CODE,
    )
    prov = _provenance(wh, mart, d, ["employment_by_sector"])
    year = int(d["year"].max())
    sni = wh.seed("sni2007_groups", ["sort_order"]).set_index("sni_group_code")
    d["municipality"] = d["region_code"].map(wh.name_of)
    d["sector"] = d["sni_group_code"] + " " + d["sni_group_code"].map(sni["name_en"]).fillna(d["sni_group_code"])
    d["_order"] = d["sni_group_code"].map(sni["sort_order"]).fillna(999)
    sector_order = list(d.sort_values(["_order", "sni_group_code"]).drop_duplicates("sni_group_code")["sector"])
    muni_order = list(d.drop_duplicates("region_code")["municipality"])
    d = d[["municipality", "sector", "lq"]].copy()
    d["lq_color"] = d["lq"].clip(lower=0.25, upper=4.0)
    d["label"] = d["lq"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")

    def spec() -> dict:
        import altair as alt

        base = alt.Chart(d).encode(
            x=alt.X(
                "sector:N", sort=sector_order, title=None, axis=alt.Axis(labelAngle=-40, labelLimit=190, orient="top")
            ),
            y=alt.Y("municipality:N", sort=muni_order, title=None),
        )
        rect = base.mark_rect(stroke="white", strokeWidth=1).encode(
            color=alt.Color(
                "lq_color:Q",
                title="LQ",
                scale=alt.Scale(type="log", domain=[0.25, 4], domainMid=1, scheme="redblue", reverse=True),
                legend=alt.Legend(values=[0.25, 0.5, 1, 2, 4], format=".2~f", gradientLength=180),
            ),
            tooltip=["municipality", "sector", alt.Tooltip("lq:Q", format=".2f")],
        )
        text = base.mark_text(fontSize=10).encode(
            text="label:N",
            color=alt.condition(
                "datum.lq_color > 2.2 || datum.lq_color < 0.45", alt.value("white"), alt.value("#1f2937")
            ),
        )
        return (rect + text).properties(width=max(380, 42 * len(sector_order)), height=24 * len(muni_order)).to_dict()

    body = _chart(spec, "lqheat")
    body += _note("Shown: basis = day.", kind="info")
    return Block(
        body=body,
        vintage=str(year),
        **prov,
        intro="LQ = (sector's share of the municipality's employment) / (sector's share of Sweden's). "
        "Above 1 (red) the municipality is more specialised in the sector than Sweden, below 1 "
        "(blue) less. The colour scale is logarithmic and capped at ¼ and 4.",
    )


# ----------------------------------------------------------------------------------------------------------------
# 4. Commuting


def block_commuting_balance(wh: Warehouse) -> Block:
    mart = "mart_commuting_balance"
    df = wh.read(
        mart,
        """
        select municipality_name as municipality, year, employed_residents, jobs, out_commuters, in_commuters,
               net_commuting, job_ratio, self_containment_supply, largest_outflow_name, largest_outflow_share{prov}
        from {mart}
        where year = (select max(year) from {mart}) and starts_with(municipality_code, $county)
        order by municipality_code
        """,
        county=COUNTY_CODE,
    )
    prov = _provenance(wh, mart, df, ["commuting_flows"])
    year = int(df["year"].max())
    d = df[["municipality", "net_commuting"]].rename(columns={"net_commuting": "net"})
    d["direction"] = d["net"].map(lambda v: "net in-commuting" if v >= 0 else "net out-commuting")

    def spec() -> dict:
        import altair as alt

        bars = (
            alt.Chart(d)
            .mark_bar(cornerRadiusEnd=2)
            .encode(
                y=alt.Y("municipality:N", sort="-x", title=None),
                x=alt.X("net:Q", title=f"net commuting (in − out), {year}", axis=alt.Axis(format="~s")),
                color=alt.Color(
                    "direction:N",
                    title=None,
                    legend=alt.Legend(orient="top"),
                    scale=alt.Scale(domain=["net in-commuting", "net out-commuting"], range=["#1d4ed8", "#ea580c"]),
                ),
                tooltip=["municipality", alt.Tooltip("net:Q", format=",.0f")],
            )
        )
        rule = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#6b7280").encode(x="x:Q")
        return (bars + rule).properties(width=560, height=22 * len(d)).to_dict()

    df["largest"] = [
        ("–" if pd.isna(name) else str(name)) + ("" if pd.isna(share) else f" ({_cell('fracu', share)})")
        for name, share in zip(df["largest_outflow_name"], df["largest_outflow_share"], strict=True)
    ]
    table = html_table(
        df.sort_values("net_commuting", ascending=False, kind="stable"),
        [
            ("municipality", "Municipality", "text"),
            ("employed_residents", "Employed residents", "int"),
            ("jobs", "Jobs", "int"),
            ("out_commuters", "Out", "int"),
            ("in_commuters", "In", "int"),
            ("net_commuting", "Net", "sint"),
            ("job_ratio", "Jobs per resident", "num2"),
            ("self_containment_supply", "Stay share", "fracu"),
            ("largest", "Largest outflow (share)", "text"),
        ],
        compact=True,
    )
    body = _chart(spec, "netcomm") + table
    body += _note(
        "Stay share = employed residents who work in their own municipality (supply-side "
        "self-containment); the largest outflow share is the single largest destination's share of "
        "employed residents (SCB's LA rule uses 20 % and 7.5 %).",
        kind="info",
    )
    return Block(
        body=body,
        vintage=str(year),
        **prov,
        intro="Net commuting = people working in the municipality minus employed people living there. "
        "Positive: more come in than go out (a job centre); negative: a residential municipality.",
    )


def block_top_flows(wh: Warehouse) -> Block:
    mart = "fct_commuting_flows"
    # Filtered in DuckDB: for all of Sweden the fact has 1.26 M rows, ~0.5 GB of RSS as pandas objects.
    df = wh.read(
        mart,
        """
        with flows as (
            select year, residence_code, residence_name, workplace_code, workplace_name, commuters{prov}
            from {mart}
            where sex_code = 'total' and year = (select max(year) from {mart})
        ), residents as (
            select residence_code, sum(commuters) as employed_residents from flows group by residence_code
        )
        select year, residence_name, workplace_name, commuters,
               commuters / nullif(employed_residents, 0) * 100 as share_of_residents{prov}
        from flows join residents using (residence_code)
        where residence_code <> workplace_code
          and (starts_with(residence_code, $county) or starts_with(workplace_code, $county))
        order by commuters desc, residence_code, workplace_code
        limit 15
        """,
        county=COUNTY_CODE,
    )
    prov = _provenance(wh, mart, df, ["commuting_flows"])
    df.insert(0, "rank", range(1, len(df) + 1))
    body = html_table(
        df,
        [
            ("rank", "#", "plain"),
            ("residence_name", "From (residence)", "text"),
            ("workplace_name", "To (workplace)", "text"),
            ("commuters", "Commuters", "int"),
            ("share_of_residents", "Share of residents", "pctu"),
        ],
        compact=True,
    )
    body += _note("Shown: sex_code = total.", kind="info")
    return Block(
        body=body,
        vintage=str(int(df["year"].max())),
        **prov,
        intro="The largest flows between two different municipalities in the origin–destination matrix. "
        "'Share of residents' is the flow as a share of the employed residents of the origin.",
    )


def block_commuting_series(wh: Warehouse) -> Block:
    mart = "mart_commuting_totals_series"
    df = wh.read(
        mart,
        """
        select municipality_name as municipality, year, out_commuting_share * 100 as rate, source_series{prov}
        from {mart}
        where starts_with(municipality_code, $county)
        order by municipality_code, year
        """,
        county=COUNTY_CODE,
    )
    prov = _provenance(wh, mart, df, ["commuting_totals"])
    breaks = [int(y) for y in df.groupby("source_series")["year"].min().sort_values().iloc[1:]]
    d = df[["municipality", "year", "rate"]].dropna()
    first, last = int(d["year"].min()), int(d["year"].max())
    order = list(d[d["year"] == last].sort_values("rate", ascending=False, kind="stable")["municipality"])

    def spec() -> dict:
        import altair as alt

        lines = (
            alt.Chart()
            .mark_line(strokeWidth=1.5, color="#0f766e")
            .encode(
                x=alt.X(
                    "year:Q",
                    title=None,
                    scale=alt.Scale(zero=False, nice=False),
                    axis=alt.Axis(format="d", tickCount=4),
                ),
                y=alt.Y("rate:Q", title=None, axis=alt.Axis(tickCount=4)),
                tooltip=["municipality", "year", alt.Tooltip("rate:Q", format=".1f")],
            )
        )
        if breaks:
            rules = (
                alt.Chart(pd.DataFrame({"year": breaks}))
                .mark_rule(color="#9ca3af", strokeDash=[3, 3])
                .encode(x="year:Q")
            )
            layer = alt.layer(rules, lines, data=d)
        else:
            layer = alt.layer(lines, data=d)
        return (
            layer.properties(width=190, height=95)
            .facet(
                facet=alt.Facet("municipality:N", title=None, sort=order), columns=4, spacing={"row": 14, "column": 18}
            )
            .resolve_axis(x="independent")
            .to_dict()
        )

    body = _chart(spec, "outseries")
    extra = f" Dashed lines mark series breaks ({', '.join(map(str, breaks))})." if breaks else ""
    body += _note(f"Out-commuters as % of employed residents, {first}–{last}.{extra}", kind="info")
    return Block(
        body=body,
        vintage=_span(int(df["year"].min()), int(df["year"].max())),
        **prov,
        intro="SCB's long commuting series across the municipal border (RAMS 1993–2018, BAS from 2019). "
        "This is real SCB data, independent of the origin–destination matrix above.",
    )


# ----------------------------------------------------------------------------------------------------------------
# 5. Locality typology


#: dimension, class column, value column, value kind, header
DIMENSIONS = (
    ("size", "size_class", "population", "int", "Population"),
    ("growth", "growth_class", "growth_pct_per_year", "pct", "Growth % / yr"),
    ("density", "density_class", "density_per_km2", "int", "Inhabitants / km²"),
    ("function", "function_class", "municipality_job_ratio", "num2", "Jobs / employed resident"),
    ("accessibility", "accessibility_class", "municipality_category", "text", "Access to K1"),
)


def block_typology(wh: Warehouse) -> Block:
    mart = "mart_locality_typology"
    df = wh.read(
        mart,
        """
        select locality_code, locality_name, municipality_code, year, typology_code, typology_name_en,
               size_class, population, growth_class, previous_year, growth_pct_per_year, density_class,
               density_per_km2, function_class, municipality_job_ratio, accessibility_class, municipality_category,
               category_basis, rule_applied{prov}
        from {mart}
        where year = (select max(year) from {mart}) and starts_with(municipality_code, $county)
        """,
        county=COUNTY_CODE,
    )
    prov = _provenance(wh, mart, df, ["localities", "population", "employment_by_sector"])
    df["_muni_name"] = df["municipality_code"].map(wh.name_of)
    df["_study"] = df["municipality_code"].map(wh.in_study_area)
    df["_muni_key"] = df["_muni_name"].map(sv_key)
    df = df.sort_values(["_muni_key", "population", "locality_code"], ascending=[True, False, True], kind="stable")
    head = ["<th>Locality</th>", "<th>Municipality</th>", "<th>Class</th>"]
    head += [f'<th class="{"n" if kind != "text" else ""}">{html.escape(h)}</th>' for *_, kind, h in DIMENSIONS]
    rows = []
    for _, r in df.iterrows():
        name = r["locality_name"] if pd.notna(r["locality_name"]) else r["locality_code"]
        cells = [
            f"<td><b>{html.escape(str(name))}</b><br><span class=muted>{html.escape(r['locality_code'])}</span></td>",
            f"<td>{html.escape(str(r['_muni_name']))}"
            f"{' <span class=chip-sa title=study-area>study area</span>' if r['_study'] else ''}</td>",
        ]
        cls_txt = _cell("text", r["typology_code"])
        cls_name = html.escape(str(r["typology_name_en"])) if pd.notna(r["typology_name_en"]) else ""
        rule_html = ""
        if pd.notna(r["rule_applied"]):
            items = "".join(f"<li>{html.escape(t.strip())}</li>" for t in r["rule_applied"].split(";") if t.strip())
            rule_html = f"<details><summary>rule</summary><ul>{items}</ul></details>"
        cells.append(f'<td class="cls"><b title="{cls_name}">{cls_txt}</b>{rule_html}</td>')
        for dim, ccol, vcol, kind, _ in DIMENSIONS:
            val = _cell(kind, r[vcol])
            if dim == "accessibility" and "proxy" in str(r["category_basis"]):
                val += "<span class=muted title='commuting proxy'>*</span>"
            chip = (
                f' <span class="chip c-{html.escape(r[ccol][:1])}" title="{dim}">{html.escape(r[ccol])}</span>'
                if pd.notna(r[ccol])
                else ""
            )
            cells.append(f'<td class="{"n" if kind != "text" else ""} v">{val}{chip}</td>')
        rows.append(f'<tr class="{"study" if r["_study"] else ""}">{"".join(cells)}</tr>')
    body = Markup(
        '<div class="table-wrap"><table class="data compact typology"><thead><tr>'
        + "".join(head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )
    n_study = int(df["_study"].sum())
    growth_from = ""
    if df["previous_year"].notna().any():
        growth_from = f" Growth is annualised since the {int(df['previous_year'].min())} delineation."
    proxy = ""
    if df["category_basis"].fillna("").str.contains("proxy").any():
        proxy = " * = K1/K2/K3 from the commuting proxy."
    body += _note(
        f"{len(df)} localities in the county"
        + (f"; {n_study} in the study area (highlighted)" if n_study else "")
        + ". Sorted by "
        "municipality, then population. The class code joins one class per dimension "
        "(size-growth-density-function-accessibility); open 'rule' for the rules that applied." + growth_from + proxy,
        kind="info",
    )
    rules = wh.seed("locality_typology_rules", ["dimension_order", "class_order"])
    if not rules.empty:
        body += Markup(
            '<details class="legend"><summary>Classification rules (seed '
            "<code>locality_typology_rules</code>, editable)</summary>"
        )
        body += html_table(
            rules,
            [
                ("dimension", "Dimension", "text"),
                ("class_code", "Class", "text"),
                ("class_name_en", "Name", "text"),
                ("class_name_sv", "Namn", "text"),
                ("description", "Rule", "text"),
            ],
            compact=True,
        )
        body += Markup("</details>")
    return Block(
        body=body,
        vintage=str(int(df["year"].max())),
        **prov,
        intro="Each tätort gets a class on five dimensions — size, growth, density, function (jobs per "
        "employed resident, of the municipality) and accessibility to K1 — with the values behind "
        "it and the rule that applied. Two places of the same size are told apart by the others.",
    )


# ----------------------------------------------------------------------------------------------------------------
# Assembly

#: (id, title, intro, [(block function, block title, domain for the data-vintage header)])
SECTIONS = (
    (
        "population",
        "Population growth by municipality category",
        "How fast the county's municipalities grow, grouped the way the regional-development plan groups them.",
        [
            (block_category_growth, "Growth by municipality category", "population"),
            (block_population_trend, "Population trend, municipalities of the county", "population"),
        ],
    ),
    (
        "sectors",
        "Largest sectors per municipality",
        "Employment by SNI 2007 sector group (TAB3204, by workplace).",
        [(block_top_sectors, "Top sectors per municipality", "employment")],
    ),
    (
        "lq",
        "Specialisation: location quotients",
        "Which sectors are over- or under-represented in each municipality compared with Sweden.",
        [(block_lq, "Location quotients against Sweden", "employment")],
    ),
    (
        "commuting",
        "Commuting",
        "Where people live and where they work: the net balance per municipality, the largest flows, and the "
        "long out-commuting series.",
        [
            (block_commuting_balance, "Net commuting per municipality", "commuting matrix"),
            (block_top_flows, "Main commuting flows (top 15 pairs)", "commuting matrix"),
            (block_commuting_series, "Out-commuting since 1993", "commuting totals"),
        ],
    ),
    (
        "localities",
        "Locality typology",
        "A transparent classification of the county's localities (tätorter).",
        [(block_typology, "Locality typology (ortstypologi)", "localities")],
    ),
)


def build_sections(wh: Warehouse) -> list[Section]:
    sections = []
    for sid, title, intro, blocks in SECTIONS:
        sec = Section(id=sid, title=title, intro=intro)
        for fn, block_title, domain in blocks:
            block = _guard(block_title, lambda fn=fn: fn(wh))
            block.domain = domain
            sec.blocks.append(block)
        sections.append(sec)
    return sections


def _header_facts(wh: Warehouse, settings: Settings, sections: list[Section]) -> dict:
    spans: dict[str, list[int]] = {}
    synthetic_domains: set[str] = set()
    updated: dict[str, dict[str, str]] = {}  # domain -> source table -> upstream updated
    for s in sections:
        for b in s.blocks:
            if b.vintage and b.unavailable is None:
                years = [int(x) for x in re.findall(r"\d{4}", b.vintage)]
                if years:
                    span = spans.setdefault(b.domain or b.title, [min(years), max(years)])
                    span[0], span[1] = min(span[0], *years), max(span[1], *years)
                if b.synthetic and not b.partly_synthetic:
                    synthetic_domains.add(b.domain or b.title)
                for table_id, when in b.updated.items():
                    seen = updated.setdefault(b.domain or b.title, {})
                    seen[table_id] = max(seen.get(table_id, ""), when)
    # (domain, data years, upstream `updated` of the source tables behind the figures shown)
    vintages = [
        (
            d,
            (str(a) if a == b else f"{a}–{b}") + (" (synthetic)" if d in synthetic_domains else ""),
            format_updated(dict(sorted(updated.get(d, {}).items()))),
        )
        for d, (a, b) in spans.items()
    ]
    synthetic_tables = sorted(
        t for t in set(wh.raw_synthetic) | set(OFFLINE_SYNTHETIC_RAW) if t in wh.synthetic_inputs([t])
    )
    loaded = ""
    if not wh.loads.empty and wh.loads["loaded_at"].notna().any():
        loaded = str(pd.Timestamp(wh.loads["loaded_at"].max()).strftime("%Y-%m-%d %H:%M UTC"))
    sources = []
    if not wh.loads.empty:
        for _, r in wh.loads.iterrows():
            sources.append(
                {
                    "source": r["source_name"],
                    "raw_table": r["raw_table"],
                    "table_id": r["table_id"],
                    "synthetic": bool(r["synthetic"]) if pd.notna(r["synthetic"]) else False,
                    "updated": wh.updated_of([str(r["table_id"])]).get(str(r["table_id"]), "")[:10],
                    "loaded_at": "" if pd.isna(r["loaded_at"]) else pd.Timestamp(r["loaded_at"]).strftime("%Y-%m-%d"),
                }
            )
    region_label = {
        "ostergotland": "Östergötland (county 05, 13 municipalities) with Sweden (00) as reference",
        "sweden": "All of Sweden (290 municipalities); county 05 Östergötland in focus",
    }
    return {
        "region_set": region_label.get(settings.region_set, settings.region_set),
        "data_source": "bundled offline snapshot" if settings.offline else settings.api_url,
        "vintages": vintages,
        "loaded": loaded,
        "synthetic_tables": synthetic_tables,
        "sources": sources,
        "marts": sorted(wh.tables),
    }


def render_html(settings: Settings, *, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    wh = Warehouse(settings)
    try:
        sections = build_sections(wh)
        facts = _header_facts(wh, settings, sections)
    finally:
        wh.close()
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    template = env.get_template(TEMPLATE_NAME)
    return template.render(
        generated=now.strftime("%Y-%m-%d %H:%M UTC"),
        generated_date=now.strftime("%d %B %Y").lstrip("0"),
        sections=sections,
        facts=facts,
        warehouse_error=wh.error,
        example_mart=next(
            (m for m in ("mart_commuting_balance", "mart_top_sectors") if m in facts["marts"]),
            facts["marts"][0] if facts["marts"] else "mart_commuting_balance",
        ),
    )


def write_report(*, settings: Settings) -> Path:
    """Render ``<data_dir>/reports/index.html`` (atomically) and return its path."""
    out_dir = settings.reports_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    text = render_html(settings)
    final = out_dir / "index.html"
    tmp = out_dir / ".index.html.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, final)
    log.info("report written to %s", final)
    return final
