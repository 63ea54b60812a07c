"""The self-contained HTML report: ``data/reports/index.html``.

One file that works offline: inline CSS, charts as inline SVG rendered by vl-convert (no JavaScript, no CDN).
Every section reads marts from schema ``marts`` through a read-only connection. A mart that is missing (dbt still
running, a model renamed) gives a visible "not available: <reason>" note in its section and a log warning, never a
crash. Column names are resolved from short lists of candidates so that small renames in the dbt models do not
break the report. Output is deterministic apart from the generation timestamp.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from extract.settings import PROJECT_ROOT, Settings
from warehouse.db import connect_reader

log = logging.getLogger(__name__)

MART_SCHEMA = "marts"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "report.html.j2"
REGIONS_CSV = PROJECT_ROOT / "extract" / "reference" / "regions.csv"
COUNTY_CODE = "05"
REFERENCE_REGION = "00"

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
META_COLUMNS = {
    "load_id",
    "source_name",
    "loaded_at",
    "_load_id",
    "_source_name",
    "_loaded_at",
    "dbt_updated_at",
    "_dbt_updated_at",
    "contents_code",
    "status",
}
SYNTHETIC_COLUMNS = ("is_synthetic", "synthetic", "_synthetic", "any_synthetic", "contains_synthetic", "has_synthetic")

# Candidate column names, most specific first.
C_MUNI_CODE = ("municipality_code", "region_code", "kommun_code", "municipality", "region")
C_MUNI_NAME = ("municipality_name", "region_name", "municipality_name_sv", "kommun_name", "name")
C_YEAR = ("year", "end_year", "period_end_year", "to_year", "reference_year")
C_SNI_CODE = ("sni_group_code", "sni_code", "sni2007", "sector_code", "industry_code", "sni_group")
C_SNI_NAME = (
    "sni_group_name_en",
    "sector_name_en",
    "name_en",
    "sni_group_name",
    "sector_name",
    "industry_name",
    "sni_name",
    "name_sv",
    "sni_group_name_sv",
    "sector_name_sv",
)


# ----------------------------------------------------------------------------------------------------------------
# Small data helpers


def pick(
    columns: Iterable[str], *candidates: str, contains: Sequence[str] = (), exclude: Sequence[str] = ()
) -> str | None:
    """The first candidate present in ``columns`` (case-insensitive), else the first column containing all of
    ``contains`` and none of ``exclude``."""
    cols = list(columns)
    lower = {c.lower(): c for c in cols}
    for cand in candidates:
        if cand.lower() in lower:
            return lower[cand.lower()]
    if contains:
        for c in cols:
            lc = c.lower()
            if all(s in lc for s in contains) and not any(s in lc for s in exclude):
                return c
    return None


def _is_num(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _synthetic_in(df: pd.DataFrame) -> bool | None:
    col = pick(df.columns, *SYNTHETIC_COLUMNS)
    if col is None:
        return None
    return bool(df[col].fillna(False).astype(bool).any())


def _latest(df: pd.DataFrame, year_col: str | None) -> tuple[pd.DataFrame, int | None]:
    if year_col is None or df.empty or df[year_col].dropna().empty:
        return df, None
    y = df[year_col].dropna().max()
    return df[df[year_col] == y], int(y)


def _year_span(df: pd.DataFrame, *candidates: str) -> str:
    col = pick(df.columns, *(candidates or C_YEAR))
    if col is None or df.empty:
        return ""
    vals = pd.to_numeric(df[col], errors="coerce").dropna()
    if vals.empty:
        return ""
    lo, hi = int(vals.min()), int(vals.max())
    return str(hi) if lo == hi else f"{lo}–{hi}"


def _prefer(df: pd.DataFrame, col: str | None, preferred: Sequence[str]) -> pd.DataFrame:
    """Keep only one value of a dimension column that has several: the first preferred one present, else the first
    in sort order. A no-op when the column is absent or has one value."""
    if col is None or col not in df.columns or df[col].nunique(dropna=False) <= 1:
        return df
    values = [str(v) for v in df[col].dropna().unique()]
    for p in preferred:
        if p in values:
            return df[df[col].astype(str) == p]
    return df[df[col].astype(str) == sorted(values)[0]]


def _narrow_dimensions(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Fix the usual extra dimensions (basis, sex, reference region) to one value; returns notes on what was kept."""
    notes: list[str] = []
    for cands, preferred in (
        (("basis", "employment_basis", "measure_basis"), ("day", "workplace")),
        (("sex_code", "sex", "kon"), ("1+2", "4", "T", "total", "totalt", "TotSa")),
        (("reference_region_code", "reference_region", "reference_code"), (REFERENCE_REGION,)),
    ):
        col = pick(df.columns, *cands)
        if col is not None and df[col].nunique(dropna=False) > 1:
            df = _prefer(df, col, preferred)
            notes.append(f"{col} = {df[col].iloc[0] if len(df) else '?'}")
    return df, notes


def _county_munis(df: pd.DataFrame, code_col: str, county: str = COUNTY_CODE) -> pd.DataFrame:
    codes = df[code_col].astype(str)
    return df[(codes.str.len() == 4) & codes.str.startswith(county)]


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


# ----------------------------------------------------------------------------------------------------------------
# Formatting


def _fmt_int(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "–"
    try:
        return f"{round(float(v)):,}".replace(",", "\u2009")
    except (TypeError, ValueError):
        return html.escape(str(v))


def _fmt_num(v: object, digits: int = 2) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "–"
    try:
        return f"{float(v):,.{digits}f}".replace(",", "\u2009").replace("-", "−")
    except (TypeError, ValueError):
        return html.escape(str(v))


def _fmt_pct(v: object, digits: int = 1, signed: bool = True) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "–"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return html.escape(str(v))
    if round(f, digits) == 0:
        f = 0.0
    s = f"{f:+.{digits}f}" if signed and f != 0 else f"{f:.{digits}f}"
    return s.replace("-", "−") + "\u2009%"


LABELS = {
    "municipality_code": "Code",
    "region_code": "Code",
    "municipality_name": "Municipality",
    "region_name": "Region",
    "locality_code": "Code",
    "locality_name": "Locality",
    "category": "Category",
    "category_basis": "Category basis",
    "basis": "Basis",
    "minutes_by_car": "Minutes by car to K1",
    "population": "Population",
    "year": "Year",
    "start_year": "From",
    "end_year": "To",
    "n_municipalities": "Municipalities",
    "member_count": "Municipalities",
    "rank_change": "Rank change",
}


def _label(col: str) -> str:
    if col in LABELS:
        return LABELS[col]
    text = col.replace("_pct", " (%)").replace("_km2", " (km²)").replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _column_kind(col: str, s: pd.Series) -> str:
    lc = col.lower()
    if pd.api.types.is_bool_dtype(s):
        return "bool"
    if not _is_num(s):
        return "text"
    if "change" in lc and "rank" in lc:
        return "sint"
    if (
        lc in {"year", "start_year", "end_year", "rank", "sort_order"}
        or lc.endswith(("_year", "_rank", "rank"))
        or lc.startswith(("year", "rank"))
    ):
        return "plain"
    signed = "growth" in lc or "change" in lc
    if "pct" in lc or "percent" in lc:
        return "pct" if signed else "pctu"
    if any(k in lc for k in ("growth", "share", "rate", "containment")):
        vals = s.dropna().abs()
        kind = "frac" if vals.empty or vals.max() <= 1.5 else "pct"
        return kind if signed else kind + "u"
    if lc in {"lq", "location_quotient"} or "lq" in lc.split("_") or "ratio" in lc or "index" in lc:
        return "num2"
    if pd.api.types.is_integer_dtype(s) or (not s.dropna().empty and (s.dropna() % 1 == 0).all()):
        return "int"
    return "num1"


def _cell(kind: str, v: object) -> tuple[str, str]:
    """(html, css class) of one table cell."""
    if kind == "text":
        return ("–" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else html.escape(str(v)), "")
    if kind == "bool":
        return ("✓" if v is True or v == 1 else ""), "c"
    if kind == "plain":
        try:
            return (str(int(v)) if v is not None and not pd.isna(v) else "–"), "n"
        except (TypeError, ValueError):
            return html.escape(str(v)), "n"
    if kind in ("pct", "pctu"):
        return _fmt_pct(v, signed=kind == "pct"), "n"
    if kind in ("frac", "fracu"):
        try:
            return _fmt_pct(float(v) * 100 if v is not None and not pd.isna(v) else None, signed=kind == "frac"), "n"
        except (TypeError, ValueError):
            return html.escape(str(v)), "n"
    if kind == "sint":
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return "–", "n"
        iv = round(float(v))
        return (("+" if iv > 0 else "±" if iv == 0 else "−") + _fmt_int(abs(iv))), "n"
    if kind == "num2":
        return _fmt_num(v, 2), "n"
    if kind == "num1":
        return _fmt_num(v, 1), "n"
    return _fmt_int(v), "n"


def html_table(
    df: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    labels: dict[str, str] | None = None,
    kinds: dict[str, str] | None = None,
    row_class: Callable[[pd.Series], str] | None = None,
    caption: str | None = None,
    compact: bool = False,
) -> Markup:
    columns = [c for c in (columns or list(df.columns)) if c in df.columns]
    labels = labels or {}
    kinds = dict(kinds or {})
    for c in columns:
        kinds.setdefault(c, _column_kind(c, df[c]))
    out = [f'<div class="table-wrap"><table class="data{" compact" if compact else ""}">']
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<thead><tr>")
    for c in columns:
        cls = ' class="n"' if kinds[c] not in ("text",) else ""
        out.append(f"<th{cls}>{html.escape(labels.get(c, _label(c)))}</th>")
    out.append("</tr></thead><tbody>")
    for _, row in df.iterrows():
        rc = row_class(row) if row_class else ""
        out.append(f'<tr class="{rc}">' if rc else "<tr>")
        for c in columns:
            text, cls = _cell(kinds[c], row[c])
            out.append(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>")
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


class Warehouse:
    """What the report needs from the warehouse: the marts, the load ledger and the dbt lineage."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.con = None
        self.error: str | None = None
        self.tables: dict[str, list[str]] = {}
        self.loads = pd.DataFrame()
        self.raw_synthetic: dict[str, bool] = {}
        self.lineage: dict[str, set[str]] = {}
        self._names = _load_region_names()
        try:
            self.con = connect_reader(settings)
        except Exception as exc:
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("report: warehouse not readable: %s", self.error)
            return
        try:
            rows = self.con.execute(
                "select table_name, column_name from information_schema.columns where table_schema = ? "
                "order by table_name, ordinal_position",
                [MART_SCHEMA],
            ).fetchall()
        except Exception as exc:
            rows = []
            log.warning("report: cannot list marts: %s", exc)
        for t, c in rows:
            self.tables.setdefault(t, []).append(c)
        self._read_ledger()
        self._read_lineage()
        self._read_dimensions()

    def close(self) -> None:
        if self.con is not None:
            self.con.close()

    # -- ledger -----------------------------------------------------------------------------------------------
    def _read_ledger(self) -> None:
        try:
            self.loads = self.con.execute(
                "select source_name, raw_table, table_id, synthetic, loaded_at from ops.loads "
                "where status = 'loaded' qualify row_number() over (partition by source_name "
                "order by loaded_at desc, load_id desc) = 1 order by raw_table, source_name"
            ).df()
        except Exception as exc:
            log.info("report: no load ledger (%s)", str(exc).splitlines()[0])
            self.loads = pd.DataFrame(columns=["source_name", "raw_table", "table_id", "synthetic", "loaded_at"])
        for raw_table, grp in self.loads.groupby("raw_table", sort=True):
            if grp["synthetic"].notna().any():
                self.raw_synthetic[str(raw_table)] = bool(grp["synthetic"].fillna(False).astype(bool).any())
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

    def _read_dimensions(self) -> None:
        """Municipality facts (names, study area, travel time) from dim_municipalities and SNI labels from the seed."""
        self.munis: dict[str, dict] = {}
        self.sni: dict[str, tuple[str, int]] = {}
        if "dim_municipalities" in self.tables:
            try:
                dim = self.read("dim_municipalities")
                for rec in dim.to_dict("records"):
                    self.munis[str(rec.get("municipality_code"))] = rec
                    if rec.get("municipality_name"):
                        self._names[str(rec["municipality_code"])] = str(rec["municipality_name"])
            except Exception as exc:
                log.info("report: cannot read dim_municipalities: %s", exc)
        rows: list[tuple] = []
        try:
            rows = self.con.execute(
                "select sni_group_code, name_en, sort_order from seeds.sni2007_groups order by sort_order"
            ).fetchall()
        except Exception:
            seed = PROJECT_ROOT / "dbt_project" / "seeds" / "sni2007_groups.csv"
            if seed.exists():
                with open(seed, encoding="utf-8") as fh:
                    rows = [(r["sni_group_code"], r["name_en"], int(r["sort_order"])) for r in csv.DictReader(fh)]
        self.sni = {str(code): (str(name), int(order)) for code, name, order in rows}

    def muni_info(self, code: str) -> dict:
        return self.munis.get(str(code), {})

    def sni_label(self, code: str) -> str:
        return self.sni.get(str(code), (str(code), 999))[0]

    def sni_order(self, code: str) -> int:
        return self.sni.get(str(code), (str(code), 999))[1]

    def _read_lineage(self) -> None:
        """model name -> raw tables it depends on, from dbt's manifest (when a build has written one)."""
        candidates = [
            self.settings.state_dir / "dbt" / "target" / "manifest.json",
            PROJECT_ROOT / "dbt_project" / "target" / "manifest.json",
        ]
        manifest = next((p for p in candidates if p.exists()), None)
        if manifest is None:
            return
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.info("report: cannot read dbt manifest %s: %s", manifest, exc)
            return
        nodes = {**data.get("nodes", {}), **data.get("sources", {})}
        cache: dict[str, set[str]] = {}

        def sources_of(uid: str, seen: frozenset[str] = frozenset()) -> set[str]:
            if uid in cache:
                return cache[uid]
            node = nodes.get(uid) or {}
            if node.get("resource_type") == "source":
                out = {str(node.get("name"))}
            else:
                out = set()
                for parent in (node.get("depends_on") or {}).get("nodes", []):
                    if parent not in seen:
                        out |= sources_of(parent, seen | {uid})
            cache[uid] = out
            return out

        for uid, node in data.get("nodes", {}).items():
            if node.get("resource_type") == "model":
                self.lineage[str(node.get("alias") or node.get("name"))] = sources_of(uid)

    # -- marts ------------------------------------------------------------------------------------------------
    def find(self, names: Sequence[str], patterns: Sequence[str] = ()) -> str | None:
        for n in names:
            if n in self.tables:
                return n
        for p in patterns:
            rx = re.compile(p)
            for t in sorted(self.tables):
                if rx.search(t):
                    return t
        return None

    def read(self, table: str, *, latest_year: bool = False) -> pd.DataFrame:
        """A whole mart as a DataFrame; ``latest_year`` keeps only the rows of its latest ``year`` (filtered in
        DuckDB: the all-Sweden OD fact has 1.26 M rows, which as pandas objects cost ~0.5 GB of RSS)."""
        rel = f'{MART_SCHEMA}."{table}"'
        where = ""
        if latest_year:
            cols = [d[0] for d in self.con.execute(f"select * from {rel} limit 0").description]
            if "year" in cols:
                where = f" where year = (select max(year) from {rel})"
        return self.con.execute(f"select * from {rel}{where} order by all").df()

    def missing_reason(self, names: Sequence[str]) -> str:
        if self.error:
            return self.error
        have = ", ".join(sorted(self.tables)) or "none"
        return (
            f"mart {' / '.join(f'{MART_SCHEMA}.{n}' for n in names[:2])} not found in the warehouse "
            f"(marts present: {have})"
        )

    def name_of(self, code: str) -> str:
        return self._names.get(str(code), str(code))

    # -- provenance -------------------------------------------------------------------------------------------
    def raw_tables_of(self, table: str | None, default: Sequence[str]) -> list[str]:
        if table and self.lineage.get(table):
            return sorted(self.lineage[table])
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

    def source_label(self, raw_tables: Sequence[str]) -> str:
        parts = []
        for t in raw_tables:
            ids = []
            if not self.loads.empty:
                ids = sorted({str(x) for x in self.loads.loc[self.loads["raw_table"] == t, "table_id"].dropna()})
            parts.append(f"{' + '.join(ids) if ids else RAW_SOURCES.get(t, t)} ({t})")
        return "; ".join(parts)


# ----------------------------------------------------------------------------------------------------------------
# Report structure


@dataclass
class Block:
    title: str
    body: Markup
    source: str = ""
    vintage: str = ""
    synthetic: bool = False
    synthetic_note: str = ""
    partly_synthetic: bool = False
    unavailable: str | None = None
    intro: str = ""
    domain: str = ""


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


def _provenance(wh: Warehouse, table: str, df: pd.DataFrame, default_raw: Sequence[str]) -> dict:
    raw = wh.raw_tables_of(table, default_raw)
    flag = _synthetic_in(df)
    syn_inputs = wh.synthetic_inputs(raw)
    synthetic = flag if flag is not None else bool(syn_inputs)
    partly = bool(synthetic and syn_inputs and len(syn_inputs) < len(raw))
    if partly:
        note = "partly synthetic: built in part from " + ", ".join(f"raw.{t}" for t in syn_inputs)
    elif synthetic:
        note = "synthetic data (offline snapshot), not SCB figures"
    else:
        note = ""
    return {
        "source": f"{MART_SCHEMA}.{table} ← {wh.source_label(raw)}",
        "synthetic": synthetic,
        "synthetic_note": note,
        "partly_synthetic": partly,
    }


def _unavailable(title: str, reason: str, intro: str = "") -> Block:
    log.warning("report: %s not available: %s", title, reason)
    return Block(title=title, body=_note(f"not available: {reason}"), unavailable=reason, intro=intro)


def _guard(title: str, fn: Callable[[], Block]) -> Block:
    try:
        return fn()
    except Exception as exc:
        log.warning("report: section %r failed", title, exc_info=True)
        return _unavailable(title, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _add_names(
    wh: Warehouse, df: pd.DataFrame, code_col: str, name_col: str | None, target: str = "_name"
) -> pd.DataFrame:
    df = df.copy()
    if name_col and name_col in df.columns:
        df[target] = df[name_col].fillna(df[code_col].astype(str).map(wh.name_of))
    else:
        df[target] = df[code_col].astype(str).map(wh.name_of)
    return df


# ----------------------------------------------------------------------------------------------------------------
# 1. Population


GROWTH_NAMES = (
    "mart_population_growth_by_category",
    "mart_population_category_growth",
    "mart_category_population_growth",
)


def _pick_horizons(df: pd.DataFrame, label: str | None, start: str, end: str) -> list[tuple[int, int, str]]:
    """The periods to show: the explicit ones (labels like '2014-2024') plus the 10/5/1-year horizons ending in the
    latest year; without labels, every distinct (start, end) pair ending in the latest year."""
    pairs = df[[c for c in (start, end, label) if c]].dropna(subset=[start, end]).drop_duplicates()
    if pairs.empty:
        return []
    latest = int(pairs[end].max())
    chosen: list[tuple[int, int, str]] = []
    if label:
        explicit = pairs[pairs[label].astype(str).str.contains("-")]
        for _, r in explicit.sort_values([start, end]).iterrows():
            chosen.append((int(r[start]), int(r[end]), str(r[label])))
        for h in ("10y", "5y"):
            row = pairs[(pairs[label].astype(str) == h) & (pairs[end] == latest)]
            if not row.empty and (int(row[start].iloc[0]), latest) not in {(a, b) for a, b, _ in chosen}:
                chosen.append((int(row[start].iloc[0]), latest, h))
    if not chosen:
        for _, r in pairs[pairs[end] == latest].sort_values(start).iterrows():
            chosen.append((int(r[start]), latest, f"{int(r[start])}-{latest}"))
    return chosen[:4]


def block_category_growth(wh: Warehouse) -> Block:
    title = "Growth by municipality category"
    table = wh.find(GROWTH_NAMES, (r"population.*categor", r"categor.*growth"))
    if table is None:
        return _unavailable(title, wh.missing_reason(GROWTH_NAMES))
    df = wh.read(table)
    cols = df.columns
    gtype = pick(cols, "group_type", "level", "row_type")
    gcode = pick(cols, "group_code", "code", "area_code")
    cat = pick(cols, "category", "municipality_category", contains=("category",), exclude=("basis", "name"))
    pooled = pick(
        cols, "growth_pct_pooled", "pooled_growth_pct", "pooled_growth", "growth_pooled", contains=("pooled",)
    )
    mean = pick(
        cols,
        "growth_pct_unweighted_mean",
        "unweighted_mean_growth_pct",
        "mean_growth_pct",
        "mean_growth",
        contains=("mean",),
    )
    start = pick(cols, "start_year", "period_start_year", "from_year")
    end = pick(cols, "end_year", "period_end_year", "to_year")
    label = pick(cols, "horizon_label", "period_label", "horizon")
    basis = pick(cols, "category_basis", "basis", contains=("basis",))
    members = pick(cols, "members", "n_municipalities", "member_count")
    county = pick(cols, "county_code")
    if not (gtype and gcode and pooled and mean and start and end):
        return _unavailable(title, f"{MART_SCHEMA}.{table} lacks group/growth/period columns (has: {', '.join(cols)})")
    if county:
        df = _prefer(df, county, (COUNTY_CODE,))
    prov = _provenance(wh, table, df, ["population"])
    periods = _pick_horizons(df, label, start, end)
    if not periods:
        return _unavailable(title, f"{MART_SCHEMA}.{table} is empty")
    frac = _column_kind(pooled, df[pooled]).startswith("frac")
    scale = 100.0 if frac else 1.0

    def value(sub: pd.DataFrame, a: int, b: int, col: str) -> float | None:
        row = sub[(sub[start] == a) & (sub[end] == b)]
        return None if row.empty or pd.isna(row[col].iloc[0]) else float(row[col].iloc[0]) * scale

    order = {"K1": 0, "K2": 1, "K3": 2}
    groups = df[df[gtype].isin(["county", "category"])]
    keys = sorted(
        {(str(t), str(c)) for t, c in zip(groups[gtype], groups[gcode], strict=True)},
        key=lambda k: (k[0] != "category", order.get(k[1], 3), k[1]),
    )
    # wide table: group x (period -> pooled, mean)
    head1 = ['<th rowspan="2">Group</th>', '<th rowspan="2" class="n">Municipalities</th>']
    head2 = []
    for a, b, lab in periods:
        head1.append(
            f'<th colspan="2" class="c grp">{a}–{b}'
            f"{'' if '-' in lab else f' <span class=muted>({html.escape(lab)})</span>'}</th>"
        )
        head2.append('<th class="n grp-l">pooled</th><th class="n">mean</th>')
    rows = []
    chart_rows = []
    for t, c in keys:
        sub = groups[(groups[gtype].astype(str) == t) & (groups[gcode].astype(str) == c)]
        name = "County" if t == "county" else c
        n = sub[members].max() if members else None
        basis_txt = ""
        if basis and t == "category":
            basis_txt = ", ".join(sorted({str(v).replace("_", " ") for v in sub[basis].dropna()}))
        cells = [
            f"<td><b>{html.escape(name)}</b>"
            f"{f' <span class=muted>{html.escape(basis_txt)}</span>' if basis_txt else ''}</td>",
            f'<td class="n">{_fmt_int(n)}</td>',
        ]
        for a, b, _lab in periods:
            p, m = value(sub, a, b, pooled), value(sub, a, b, mean)
            cells.append(f'<td class="n grp-l">{_fmt_pct(p)}</td><td class="n">{_fmt_pct(m)}</td>')
            for measure, v in (("pooled", p), ("unweighted mean", m)):
                if v is not None:
                    chart_rows.append(
                        {
                            "group": "County" if t == "county" else c,
                            "period": f"{a}–{b}",
                            "measure": measure,
                            "growth": v,
                        }
                    )
        rows.append(f'<tr class="{"county" if t == "county" else ""}">{"".join(cells)}</tr>')
    table_html = Markup(
        '<div class="table-wrap"><table class="data growth"><thead><tr>'
        + "".join(head1)
        + "</tr><tr>"
        + "".join(head2)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )
    parts: list[Markup] = [table_html]

    if chart_rows:
        chart_df = pd.DataFrame(chart_rows)
        group_order = [("County" if t == "county" else c) for t, c in keys]
        group_order = [g for g in group_order if g != "County"] + ["County"]

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
                .facet(
                    column=alt.Column("period:N", title=None, sort=[f"{a}–{b}" for a, b, _ in periods]),
                    spacing=16,
                )
                .to_dict()
            )

        parts.append(_chart(spec, "catgrowth"))

    munis = df[df[gtype].astype(str) == "municipality"]
    if not munis.empty and cat:
        ids = sorted(munis[gcode].astype(str).unique())
        any_minutes = any(pd.notna(wh.muni_info(c).get("minutes_by_car_to_k1")) for c in ids)
        mrows = []
        for code in sorted(
            ids, key=lambda x: (order.get(str(munis.loc[munis[gcode].astype(str) == x, cat].iloc[0]), 3), x)
        ):
            sub = munis[munis[gcode].astype(str) == code]
            category = str(sub[cat].iloc[0]) if sub[cat].notna().any() else "–"
            b_txt = str(sub[basis].iloc[0]) if basis and sub[basis].notna().any() else ""
            minutes = wh.muni_info(code).get("minutes_by_car_to_k1")
            cls = "proxy" if "proxy" in b_txt else ""
            cells = [
                f"<td>{html.escape(wh.name_of(code))} <span class=muted>{html.escape(code)}</span></td>",
                f"<td><b>{html.escape(category)}</b></td>",
                f'<td><span class="basis {cls}">{html.escape(b_txt.replace("_", " "))}</span></td>',
            ]
            if any_minutes:
                cells.append(f'<td class="n">{_fmt_int(minutes)}</td>')
            for a, b, _lab in periods:
                cells.append(f'<td class="n">{_fmt_pct(value(sub, a, b, pooled))}</td>')
            mrows.append("<tr>" + "".join(cells) + "</tr>")
        head = (
            "<tr><th>Municipality</th><th>Category</th><th>Basis</th>"
            + ("<th class='n'>Minutes to K1</th>" if any_minutes else "")
            + "".join(f"<th class='n'>{a}–{b}</th>" for a, b, _ in periods)
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
        if basis and munis[basis].astype(str).str.contains("proxy").any():
            parts.append(
                _note(
                    "Basis 'commuting proxy': no travel time is maintained in the seed for this "
                    "municipality, so it is K2 when at least the var k2_proxy_min_share_to_k1 (default 7.5 %) "
                    "of its employed residents work in K1, or K1 takes its largest outflow, instead of the "
                    "45-minute rule. Offline the commuting matrix is synthetic, and so is this proxy.",
                    kind="info",
                )
            )
    vintage = f"{min(a for a, _, _ in periods)}–{max(b for _, b, _ in periods)}"
    return Block(
        title=title,
        body=Markup("").join(parts),
        vintage=vintage,
        **prov,
        intro="K1 is the county's largest municipality, K2 the municipalities within 45 minutes by car of "
        "K1, K3 the rest. 'Pooled' is the growth of the members' summed population; 'mean' is the "
        "unweighted mean of the members' own growth rates, the convention of the "
        "regional-development slides.",
    )


POP_NAMES = ("fct_population", "mart_population", "fct_population_by_region")


def block_population_trend(wh: Warehouse) -> Block:
    title = "Population trend, municipalities of the county"
    table = wh.find(POP_NAMES, (r"^fct_population",))
    if table is None:
        return _unavailable(title, wh.missing_reason(POP_NAMES))
    df = wh.read(table)
    code = pick(df.columns, *C_MUNI_CODE)
    year = pick(df.columns, "year", "reference_year")
    value = pick(df.columns, "population", "inhabitants", "value", "persons")
    if not (code and year and value):
        return _unavailable(title, f"{MART_SCHEMA}.{table} lacks region/year/population columns")
    df, _ = _narrow_dimensions(df)
    name = pick(df.columns, *C_MUNI_NAME)
    munis = _county_munis(df, code)
    if munis.empty:
        return _unavailable(title, f"{MART_SCHEMA}.{table} has no municipalities of county {COUNTY_CODE}")
    munis = _add_names(wh, munis, code, name, "municipality")
    agg = munis.groupby(["municipality", year], as_index=False)[value].sum(min_count=1).dropna(subset=[value])
    agg = agg.sort_values(["municipality", year])
    prov = _provenance(wh, table, munis, ["population"])
    first, last = int(agg[year].min()), int(agg[year].max())
    latest = agg[agg[year] == last].sort_values(value, ascending=False)
    order = list(latest["municipality"])

    def spec() -> dict:
        import altair as alt

        d = agg.rename(columns={year: "year", value: "population"})
        d["year"] = d["year"].astype(int)
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
    total = agg[agg[year] == last][value].sum()
    body += _note(
        f"{len(order)} municipalities, {first}–{last}; {_fmt_int(total)} inhabitants in {last}. "
        "Each panel has its own vertical scale (ordered by size).",
        kind="info",
    )
    return Block(title=title, body=body, vintage=f"{first}–{last}", **prov)


# ----------------------------------------------------------------------------------------------------------------
# 2. Top sectors


TOP_NAMES = ("mart_top_sectors", "mart_top_sectors_by_municipality")


def block_top_sectors(wh: Warehouse) -> Block:
    title = "Top sectors per municipality"
    table = wh.find(TOP_NAMES, (r"top_sector",))
    if table is None:
        return _unavailable(title, wh.missing_reason(TOP_NAMES))
    df = wh.read(table)
    df, notes = _narrow_dimensions(df)
    cols = df.columns
    code = pick(cols, *C_MUNI_CODE)
    name = pick(cols, *C_MUNI_NAME)
    year = pick(cols, "year", "end_year")
    rank = pick(
        cols,
        "rank",
        "sector_rank",
        "rank_in_region",
        "employment_rank",
        contains=("rank",),
        exclude=("change", "prev", "lag", "earlier", "previous", "delta"),
    )
    sni = pick(cols, *C_SNI_CODE)
    sni_name = pick(cols, *C_SNI_NAME)
    employed = pick(
        cols,
        "employed",
        "employment",
        "persons",
        "jobs",
        "value",
        contains=("employ",),
        exclude=("share", "rank", "total"),
    )
    share = pick(cols, "share", "employment_share", "share_of_employment", "sector_share", contains=("share",))
    if not (code and sni and (rank or employed)):
        return _unavailable(title, f"{MART_SCHEMA}.{table} lacks region/sector/rank columns")
    df, y = _latest(df, year)
    prov = _provenance(wh, table, df, ["employment_by_sector"])
    df = _add_names(wh, df, code, name, "municipality")
    if rank is None:
        df = df.assign(_rank=df.groupby(code)[employed].rank(ascending=False, method="first"))
        rank = "_rank"
    df = df[df[rank] <= 15]
    extra = [
        c
        for c in cols
        if c not in {code, name, year, rank, sni, sni_name, employed, share}
        and c not in META_COLUMNS
        and pick([c], *SYNTHETIC_COLUMNS) is None
        and _is_num(df[c])
        and any(k in c.lower() for k in ("change", "lq", "prev", "lag", "delta"))
    ]
    comp_col = pick(cols, "comparison_year")
    comp_year = df[comp_col].dropna().max() if comp_col and df[comp_col].notna().any() else None
    in_county = df[code].astype(str).str.startswith(COUNTY_CODE)
    if in_county.any():  # the county's municipalities and the county itself, also for region set "sweden"
        df = df[in_county]
    codes = sorted(df[code].astype(str).unique(), key=lambda c: (len(c), c))
    # county and Sweden first? Keep municipalities of the county first, then others (county, Sweden).
    codes = sorted(codes, key=lambda c: (0 if len(c) == 4 else 1 if len(c) == 2 and c != "00" else 2, c))
    parts = []
    for i, c in enumerate(codes):
        sub = df[df[code].astype(str) == c].sort_values(rank)
        muni = str(sub["municipality"].iloc[0])
        top = sub.iloc[0]
        top_label = str(top[sni_name]) if sni_name else str(top[sni])
        summary = (
            f"<b>{html.escape(muni)}</b> <span class='muted'>{html.escape(c)}</span>"
            f"<span class='sum-right'>largest: {html.escape(top_label)}"
        )
        if share:
            summary += f" · {_cell(_column_kind(share, df[share]), top[share])[0]}"
        summary += "</span>"
        rows = ['<div class="table-wrap"><table class="data compact"><thead><tr><th class="n">#</th><th>Sector</th>']
        rows.append('<th class="n">Employed</th>' if employed else "")
        rows.append('<th class="n">Share</th><th class="barcol"></th>' if share else "")
        for e in extra:
            lab = _label(e)
            if "rank" in e.lower() and comp_year is not None and pd.notna(comp_year):
                lab = f"Rank change since {int(comp_year)}"
            rows.append(f'<th class="n">{html.escape(lab)}</th>')
        rows.append("</tr></thead><tbody>")
        max_share = float(sub[share].max()) if share and sub[share].notna().any() else 0.0
        for _, r in sub.iterrows():
            label = html.escape(str(r[sni_name])) if sni_name else ""
            rows.append(
                f'<tr><td class="n">{int(r[rank])}</td><td>{label} <span class="muted">'
                f"{html.escape(str(r[sni]))}</span></td>"
            )
            if employed:
                rows.append(f'<td class="n">{_fmt_int(r[employed])}</td>')
            if share:
                txt = _cell(_column_kind(share, df[share]), r[share])[0]
                width = 0.0 if pd.isna(r[share]) or max_share <= 0 else 100.0 * float(r[share]) / max_share
                rows.append(
                    f'<td class="n">{txt}</td><td class="barcol"><span class="bar" '
                    f'style="width:{width:.1f}%"></span></td>'
                )
            for e in extra:
                rows.append(f'<td class="n">{_cell(_column_kind(e, df[e]), r[e])[0]}</td>')
            rows.append("</tr>")
        rows.append("</tbody></table></div>")
        is_open = " open" if i == 0 else ""
        parts.append(f"<details{is_open}><summary>{summary}</summary>{''.join(rows)}</details>")
    body = Markup("".join(parts))
    if notes:
        body += _note("Shown: " + "; ".join(notes) + ".", kind="info")
    return Block(
        title=title,
        body=body,
        vintage=str(y) if y else _year_span(df),
        **prov,
        intro="The 15 largest SNI 2007 sector groups by employment in each municipality (click a "
        "municipality to open it). The bar shows the share of the municipality's employment.",
    )


# ----------------------------------------------------------------------------------------------------------------
# 3. Location quotients


LQ_NAMES = (
    "mart_location_quotients",
    "mart_location_quotient",
    "mart_lq",
    "mart_sector_location_quotients",
    "mart_specialisation_lq",
)


def block_lq(wh: Warehouse) -> Block:
    title = "Location quotients against Sweden"
    table = wh.find(LQ_NAMES, (r"location_quot", r"(^|_)lq(_|$)"))
    if table is None:
        return _unavailable(title, wh.missing_reason(LQ_NAMES))
    df = wh.read(table)
    df, notes = _narrow_dimensions(df)
    cols = df.columns
    code = pick(cols, *C_MUNI_CODE)
    name = pick(cols, *C_MUNI_NAME)
    year = pick(cols, "year", "end_year")
    sni = pick(cols, *C_SNI_CODE)
    sni_name = pick(cols, *C_SNI_NAME)
    lq = pick(
        cols,
        "lq_vs_reference",
        "lq_vs_sweden",
        "lq_vs_country",
        "lq",
        "location_quotient",
        contains=("lq",),
        exclude=("rank", "log", "county"),
    )
    order_col = pick(cols, "sort_order", "sni_sort_order", "sector_sort_order")
    if not (code and sni and lq):
        return _unavailable(title, f"{MART_SCHEMA}.{table} lacks region/sector/LQ columns")
    df, y = _latest(df, year)
    df = df[df[sni].astype(str) != "A-U+US"]
    munis = _county_munis(df, code)
    if munis.empty:
        munis = df[df[code].astype(str) != REFERENCE_REGION]
    prov = _provenance(wh, table, munis, ["employment_by_sector"])
    munis = _add_names(wh, munis, code, name, "municipality")
    names = munis[sni_name].astype(str) if sni_name else munis[sni].astype(str).map(wh.sni_label)
    munis["sector"] = munis[sni].astype(str) + " " + names
    munis["_order"] = munis[order_col] if order_col else munis[sni].astype(str).map(wh.sni_order)
    sector_order = list(munis.sort_values(["_order", sni]).drop_duplicates(sni)["sector"])
    muni_order = list(munis.sort_values(code).drop_duplicates(code)["municipality"])
    d = munis[["municipality", "sector", lq]].rename(columns={lq: "lq"}).copy()
    d["lq"] = pd.to_numeric(d["lq"], errors="coerce")
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
    if notes:
        body += _note("Shown: " + "; ".join(notes) + ".", kind="info")
    return Block(
        title=title,
        body=body,
        vintage=str(y) if y else _year_span(df),
        **prov,
        intro="LQ = (sector's share of the municipality's employment) / (sector's share of Sweden's). "
        "Above 1 (red) the municipality is more specialised in the sector than Sweden, below 1 "
        "(blue) less. The colour scale is logarithmic and capped at ¼ and 4.",
    )


# ----------------------------------------------------------------------------------------------------------------
# 4. Commuting


BAL_NAMES = ("mart_commuting_balance", "mart_net_commuting")
FLOW_NAMES = ("fct_commuting_flows", "mart_commuting_flows")
SERIES_NAMES = (
    "mart_commuting_totals_series",
    "mart_commuting_series",
    "mart_out_commuting_series",
    "mart_commuting_totals",
    "mart_commuting_long_series",
    "fct_commuting_totals",
    "mart_out_commuting",
)


def block_commuting_balance(wh: Warehouse) -> Block:
    title = "Net commuting per municipality"
    table = wh.find(BAL_NAMES, (r"commuting_balance",))
    if table is None:
        return _unavailable(title, wh.missing_reason(BAL_NAMES))
    df = wh.read(table)
    df, notes = _narrow_dimensions(df)
    cols = df.columns
    code = pick(cols, *C_MUNI_CODE)
    name = pick(cols, *C_MUNI_NAME)
    year = pick(cols, "year")
    net = pick(
        cols,
        "net_commuting",
        "net_commuters",
        "net",
        "net_in_commuting",
        contains=("net",),
        exclude=("share", "rate", "ratio", "pct"),
    )
    if not (code and net):
        return _unavailable(title, f"{MART_SCHEMA}.{table} lacks region/net columns")
    df, y = _latest(df, year)
    prov = _provenance(wh, table, df, ["commuting_flows"])
    df = _add_names(wh, df, code, name, "municipality")
    munis = _county_munis(df, code)
    if munis.empty:
        munis = df[df[code].astype(str).str.len() == 4] if (df[code].astype(str).str.len() == 4).any() else df
    d = munis[["municipality", net]].rename(columns={net: "net"}).copy()
    d["net"] = pd.to_numeric(d["net"], errors="coerce")
    d["direction"] = d["net"].map(lambda v: "net in-commuting" if v >= 0 else "net out-commuting")

    def spec() -> dict:
        import altair as alt

        bars = (
            alt.Chart(d)
            .mark_bar(cornerRadiusEnd=2)
            .encode(
                y=alt.Y("municipality:N", sort="-x", title=None),
                x=alt.X("net:Q", title=f"net commuting (in − out){f', {y}' if y else ''}", axis=alt.Axis(format="~s")),
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
        return (bars + rule).properties(width=560, height=22 * max(len(d), 1)).to_dict()

    parts = [_chart(spec, "netcomm")]
    spec_cols = (
        (("employed_residents", "residents", "resident_workers"), "Employed residents", "int"),
        (("jobs", "workers", "workplace_workers", "employed_at_workplace"), "Jobs", "int"),
        (("out_commuters", "out_commuting", "outflow"), "Out", "int"),
        (("in_commuters", "in_commuting", "inflow"), "In", "int"),
        ((net,), "Net", "sint"),
        (("job_ratio",), "Jobs per resident", "num2"),
        (("self_containment_supply", "supply_side_self_containment", "self_containment"), "Stay share", "fracu"),
        (("_largest",), "Largest outflow (share)", "text"),
    )
    lo_name = pick(cols, "largest_outflow_name", "largest_outflow_destination_name")
    lo_share = pick(cols, "largest_outflow_share", "max_outflow_share")
    if lo_name:
        munis = munis.copy()
        frac = bool(lo_share) and _column_kind(lo_share, munis[lo_share]).startswith("frac")
        munis["_largest"] = [
            ("–" if pd.isna(n) else str(n))
            + ("" if not lo_share or pd.isna(v) else f" ({_fmt_pct(float(v) * (100 if frac else 1), signed=False)})")
            for n, v in zip(munis[lo_name], munis[lo_share] if lo_share else [None] * len(munis), strict=True)
        ]
        cols = [*cols, "_largest"]
    show, labels, kinds = ["municipality"], {"municipality": "Municipality"}, {}
    for cands, lab, kind in spec_cols:
        c = pick(cols, *cands)
        if c:
            show.append(c)
            labels[c] = lab
            if kind in ("fracu",) and not _column_kind(c, munis[c]).startswith("frac"):
                kind = "pctu"
            kinds[c] = kind
    parts.append(html_table(munis.sort_values(net, ascending=False), show, labels=labels, kinds=kinds, compact=True))
    parts.append(
        _note(
            "Stay share = employed residents who work in their own municipality (supply-side "
            "self-containment); the largest outflow share is the single largest destination's share of "
            "employed residents (SCB's LA rule uses 20 % and 7.5 %).",
            kind="info",
        )
    )
    body = Markup("").join(parts)
    if notes:
        body += _note("Shown: " + "; ".join(notes) + ".", kind="info")
    return Block(
        title=title,
        body=body,
        vintage=str(y) if y else _year_span(df),
        **prov,
        intro="Net commuting = people working in the municipality minus employed people living there. "
        "Positive: more come in than go out (a job centre); negative: a residential municipality.",
    )


def block_top_flows(wh: Warehouse) -> Block:
    title = "Main commuting flows (top 15 pairs)"
    table = wh.find(FLOW_NAMES, (r"commuting_flows",))
    if table is None:
        return _unavailable(title, wh.missing_reason(FLOW_NAMES))
    df = wh.read(table, latest_year=True)  # only the latest year is shown
    df, notes = _narrow_dimensions(df)
    cols = df.columns
    res = pick(
        cols,
        "residence_code",
        "residence_municipality_code",
        "origin_code",
        "home_code",
        contains=("residence", "code"),
    )
    work = pick(
        cols,
        "workplace_code",
        "workplace_municipality_code",
        "destination_code",
        "work_code",
        contains=("workplace", "code"),
    )
    res_name = pick(
        cols, "residence_name", "residence_municipality_name", "origin_name", contains=("residence", "name")
    )
    work_name = pick(
        cols, "workplace_name", "workplace_municipality_name", "destination_name", contains=("workplace", "name")
    )
    value = pick(cols, "commuters", "persons", "employed", "flow", "value", "n")
    year = pick(cols, "year")
    if not (res and work and value):
        return _unavailable(title, f"{MART_SCHEMA}.{table} lacks residence/workplace/commuters columns")
    df, y = _latest(df, year)
    prov = _provenance(wh, table, df, ["commuting_flows"])
    d = df[df[res].astype(str) != df[work].astype(str)]
    touches = d[res].astype(str).str.startswith(COUNTY_CODE) | d[work].astype(str).str.startswith(COUNTY_CODE)
    if touches.any():  # flows from or to the county's municipalities
        d = d[touches]
    d = _add_names(wh, d, res, res_name, "From (residence)")
    d = _add_names(wh, d, work, work_name, "To (workplace)")
    g = d.groupby(["From (residence)", "To (workplace)", res, work], as_index=False)[value].sum()
    g = g.sort_values([value, res, work], ascending=[False, True, True]).head(15)
    g.insert(0, "#", range(1, len(g) + 1))
    total_by_res = df.groupby(res)[value].sum() if not df.empty else pd.Series(dtype=float)
    g["Share of residents"] = [
        float(v) / float(total_by_res.get(r, float("nan")) or float("nan")) * 100
        for v, r in zip(g[value], g[res], strict=True)
    ]
    body = html_table(
        g,
        ["#", "From (residence)", "To (workplace)", value, "Share of residents"],
        labels={value: "Commuters"},
        kinds={"#": "plain", value: "int", "Share of residents": "pctu"},
        compact=True,
    )
    if notes:
        body += _note("Shown: " + "; ".join(notes) + ".", kind="info")
    return Block(
        title=title,
        body=body,
        vintage=str(y) if y else "",
        **prov,
        intro="The largest flows between two different municipalities in the origin–destination matrix. "
        "'Share of residents' is the flow as a share of the employed residents of the origin.",
    )


def block_commuting_series(wh: Warehouse) -> Block:
    title = "Out-commuting since 1993"
    table = wh.find(SERIES_NAMES, (r"commuting_(series|totals|history)", r"out_commut"))
    if table is None:
        return _unavailable(title, wh.missing_reason(SERIES_NAMES))
    df = wh.read(table)
    df, _ = _narrow_dimensions(df)
    cols = df.columns
    code = pick(cols, *C_MUNI_CODE)
    name = pick(cols, *C_MUNI_NAME)
    year = pick(cols, "year")
    measure = pick(cols, "measure")
    if measure is not None and pick(cols, "out_commuters", "out_commuting") is None:
        val = pick(cols, "persons", "value", "commuters")
        wide = df.pivot_table(
            index=[c for c in (code, name, year) if c], columns=measure, values=val, aggfunc="sum"
        ).reset_index()
        wide.columns = [str(c) for c in wide.columns]
        df = wide
        cols = df.columns
    out = pick(cols, "out_commuters", "out_commuting", "outflow", contains=("out",), exclude=("share", "rate"))
    stay = pick(cols, "stayers", "live_and_work", "living_and_working")
    rate = pick(cols, "out_commuting_share", "out_commuting_rate", "out_share", contains=("out", "share"))
    if not (code and year and (out or rate)):
        return _unavailable(title, f"{MART_SCHEMA}.{table} lacks region/year/out-commuting columns")
    prov = _provenance(wh, table, df, ["commuting_totals"])
    munis = _county_munis(df, code)
    if munis.empty:
        munis = df
    munis = _add_names(wh, munis, code, name, "municipality")
    if rate:
        r = pd.to_numeric(munis[rate], errors="coerce")
        munis["rate"] = r * 100 if _column_kind(rate, r).startswith("frac") else r
    elif stay:
        munis["rate"] = 100 * munis[out] / (munis[out] + munis[stay])
    else:
        munis["rate"] = munis[out]
    is_rate = bool(rate or stay)
    d = munis[["municipality", year, "rate"]].rename(columns={year: "year"}).dropna()
    d["year"] = d["year"].astype(int)
    order = list(d[d["year"] == d["year"].max()].sort_values("rate", ascending=False)["municipality"])
    breaks: list[int] = []
    series_col = pick(cols, "source_series", "source_table")
    if series_col:
        firsts = munis.groupby(series_col)[year].min().sort_values()
        breaks = [int(v) for v in firsts.iloc[1:]]

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
        layer = lines
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
    what = "Out-commuters as % of employed residents" if is_rate else "Out-commuters (persons)"
    extra = f" Dashed lines mark series breaks ({', '.join(map(str, breaks))})." if breaks else ""
    body += _note(f"{what}, {int(d['year'].min())}–{int(d['year'].max())}.{extra}", kind="info")
    return Block(
        title=title,
        body=body,
        vintage=_year_span(munis, year),
        **prov,
        intro="SCB's long commuting series across the municipal border (RAMS 1993–2018, BAS from 2019). "
        "This is real SCB data, independent of the origin–destination matrix above.",
    )


# ----------------------------------------------------------------------------------------------------------------
# 5. Locality typology


TYPO_NAMES = ("mart_locality_typology", "mart_localities_typology", "mart_ortstypologi")


DIMENSIONS = (
    # dimension, class column candidates, value column candidates, value kind, header
    ("size", ("size_class",), ("population", "locality_population"), "int", "Population"),
    ("growth", ("growth_class",), ("growth_pct_per_year", "growth_pct"), "pct", "Growth % / yr"),
    ("density", ("density_class",), ("density_per_km2", "density"), "int", "Inhabitants / km²"),
    (
        "function",
        ("function_class",),
        ("municipality_job_ratio", "job_ratio", "jobs_per_employed_resident"),
        "num2",
        "Jobs / employed resident",
    ),
    ("accessibility", ("accessibility_class",), ("municipality_category", "category"), "text", "Access to K1"),
)


def _typology_rules(wh: Warehouse) -> pd.DataFrame:
    try:
        return wh.con.execute("select * from seeds.locality_typology_rules order by dimension_order, class_order").df()
    except Exception:
        seed = PROJECT_ROOT / "dbt_project" / "seeds" / "locality_typology_rules.csv"
        if seed.exists():
            return pd.read_csv(seed, dtype=str).sort_values(["dimension_order", "class_order"], kind="stable")
    return pd.DataFrame()


def block_typology(wh: Warehouse) -> Block:
    title = "Locality typology (ortstypologi)"
    table = wh.find(TYPO_NAMES, (r"typolog",))
    if table is None:
        return _unavailable(title, wh.missing_reason(TYPO_NAMES))
    df = wh.read(table)
    cols = list(df.columns)
    loc = pick(cols, "locality_code", "tatort_code", "tatort", contains=("locality", "code"))
    if not loc:
        return _unavailable(title, f"{MART_SCHEMA}.{table} has no locality column")
    loc_name = pick(cols, "locality_name", "tatort_name", contains=("locality", "name"))
    muni = pick(cols, "municipality_code", "kommun_code")
    county = pick(cols, "county_code")
    study = pick(cols, "is_study_area", "study_area", "in_study_area")
    code_col = pick(cols, "typology_code", "typology", "class_code", "class")
    name_col = pick(cols, "typology_name_en", "typology_name", "class_name_en", "class_name")
    rule = pick(cols, "rule_applied", "rule", "rule_text", "rules", contains=("rule",))
    basis = pick(cols, "category_basis")
    prev_year = pick(cols, "previous_year")
    year = pick(cols, "year", "delineation_year")
    df, y = _latest(df, year)
    df = df.copy()
    df["_muni"] = df[muni].astype(str) if muni else df[loc].astype(str).str[:4]
    in_county = df[county].astype(str) == COUNTY_CODE if county else df["_muni"].str.startswith(COUNTY_CODE)
    sub = df[in_county] if in_county.any() else df
    prov = _provenance(wh, table, sub, ["localities", "population", "employment_by_sector"])
    sub = sub.copy()
    sub["_muni_name"] = sub["_muni"].map(wh.name_of)
    if study:
        sub["_study"] = sub[study].fillna(False).astype(bool)
    else:
        sub["_study"] = sub["_muni"].map(lambda c: bool(wh.muni_info(c).get("is_study_area") or False))
    pop = pick(cols, "population", "locality_population")
    sub["_muni_key"] = sub["_muni_name"].map(sv_key)
    sub = sub.sort_values(
        ["_muni_key", *([pop] if pop else []), loc], ascending=[True, *([False] if pop else []), True], kind="stable"
    )
    dims = []
    for dim, ccands, vcands, kind, header in DIMENSIONS:
        ccol, vcol = pick(cols, *ccands), pick(cols, *vcands)
        if ccol or vcol:
            dims.append((dim, ccol, vcol, kind, header))
    head = ["<th>Locality</th>", "<th>Municipality</th>", "<th>Class</th>"]
    head += [f'<th class="{"n" if kind != "text" else ""}">{html.escape(h)}</th>' for _, _, _, kind, h in dims]
    rows = []
    for _, r in sub.iterrows():
        name = r[loc_name] if loc_name and pd.notna(r[loc_name]) else r[loc]
        cells = [
            f"<td><b>{html.escape(str(name))}</b><br><span class=muted>{html.escape(str(r[loc]))}</span></td>",
            f"<td>{html.escape(str(r['_muni_name']))}"
            f"{' <span class=chip-sa title=study-area>study area</span>' if r['_study'] else ''}</td>",
        ]
        cls_txt = html.escape(str(r[code_col])) if code_col and pd.notna(r[code_col]) else "–"
        cls_name = html.escape(str(r[name_col])) if name_col and pd.notna(r[name_col]) else ""
        rule_html = ""
        if rule and pd.notna(r[rule]):
            items = "".join(f"<li>{html.escape(t.strip())}</li>" for t in str(r[rule]).split(";") if t.strip())
            rule_html = f"<details><summary>rule</summary><ul>{items}</ul></details>"
        cells.append(f'<td class="cls"><b title="{cls_name}">{cls_txt}</b>{rule_html}</td>')
        for dim, ccol, vcol, kind, _h in dims:
            val = _cell(kind, r[vcol])[0] if vcol else ""
            if dim == "accessibility" and basis and pd.notna(r.get(basis)) and "proxy" in str(r[basis]):
                val += "<span class=muted title='commuting proxy'>*</span>"
            chip = (
                f' <span class="chip c-{html.escape(str(r[ccol])[:1])}" title="{html.escape(dim)}">'
                f"{html.escape(str(r[ccol]))}</span>"
                if ccol and pd.notna(r[ccol])
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
    n_study = int(sub["_study"].sum())
    growth_from = ""
    if prev_year and sub[prev_year].notna().any():
        growth_from = f" Growth is annualised since the {int(sub[prev_year].dropna().min())} delineation."
    proxy = (
        " * = K1/K2/K3 from the commuting proxy."
        if basis and sub[basis].astype(str).str.contains("proxy").any()
        else ""
    )
    body += _note(
        f"{len(sub)} localities in the county"
        + (f"; {n_study} in the study area (highlighted)" if n_study else "")
        + ". Sorted by "
        "municipality, then population. The class code joins one class per dimension "
        "(size-growth-density-function-accessibility); open 'rule' for the rules that applied." + growth_from + proxy,
        kind="info",
    )
    rules = _typology_rules(wh)
    if not rules.empty:
        rcols = [
            c
            for c in ("dimension", "class_code", "class_name_en", "class_name_sv", "description")
            if c in rules.columns
        ]
        body += Markup(
            '<details class="legend"><summary>Classification rules (seed '
            "<code>locality_typology_rules</code>, editable)</summary>"
        )
        body += html_table(
            rules,
            rcols,
            labels={
                "class_code": "Class",
                "class_name_en": "Name",
                "class_name_sv": "Namn",
                "description": "Rule",
                "dimension": "Dimension",
            },
            compact=True,
        )
        body += Markup("</details>")
    return Block(
        title=title,
        body=body,
        vintage=str(y) if y else _year_span(sub),
        **prov,
        intro="Each tätort gets a class on five dimensions — size, growth, density, function (jobs per "
        "employed resident, of the municipality) and accessibility to K1 — with the values behind "
        "it and the rule that applied. Two places of the same size are told apart by the others.",
    )


# ----------------------------------------------------------------------------------------------------------------
# Assembly


def build_sections(wh: Warehouse) -> list[Section]:
    spec = [
        (
            "population",
            "Population growth by municipality category",
            "How fast the county's municipalities grow, grouped the way the regional-development plan groups them.",
            [(block_category_growth, "population"), (block_population_trend, "population")],
        ),
        (
            "sectors",
            "Largest sectors per municipality",
            "Employment by SNI 2007 sector group (TAB3204, by workplace).",
            [(block_top_sectors, "employment")],
        ),
        (
            "lq",
            "Specialisation: location quotients",
            "Which sectors are over- or under-represented in each municipality compared with Sweden.",
            [(block_lq, "employment")],
        ),
        (
            "commuting",
            "Commuting",
            "Where people live and where they work: the net balance per municipality, the largest flows, and the "
            "long out-commuting series.",
            [
                (block_commuting_balance, "commuting matrix"),
                (block_top_flows, "commuting matrix"),
                (block_commuting_series, "commuting totals"),
            ],
        ),
        (
            "localities",
            "Locality typology",
            "A transparent classification of the county's localities (tätorter).",
            [(block_typology, "localities")],
        ),
    ]
    sections = []
    for sid, title, intro, fns in spec:
        sec = Section(id=sid, title=title, intro=intro)
        for fn, domain in fns:
            name = fn.__name__.removeprefix("block_").replace("_", " ")
            block = _guard(name, lambda fn=fn: fn(wh))
            block.domain = domain
            sec.blocks.append(block)
        sections.append(sec)
    return sections


def _header_facts(wh: Warehouse, settings: Settings, sections: list[Section]) -> dict:
    spans: dict[str, list[int]] = {}
    synthetic_domains: set[str] = set()
    for s in sections:
        for b in s.blocks:
            if b.vintage and b.unavailable is None:
                years = [int(x) for x in re.findall(r"\d{4}", b.vintage)]
                if years:
                    span = spans.setdefault(b.domain or b.title, [min(years), max(years)])
                    span[0], span[1] = min(span[0], *years), max(span[1], *years)
                if b.synthetic and not b.partly_synthetic:
                    synthetic_domains.add(b.domain or b.title)
    vintages = [
        (d, (str(a) if a == b else f"{a}–{b}") + (" (synthetic)" if d in synthetic_domains else ""))
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
