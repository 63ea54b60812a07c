"""Section 3, specialisation: a heatmap of location quotients per municipality and sector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from warehouse.report.access import Unavailable, Warehouse
from warehouse.report.charts import Chart, chart
from warehouse.report.model import Block

LQ_RANGE = (0.25, 4.0)  # the colour scale's cap, symmetric on a log scale


@dataclass(frozen=True)
class HeatmapView:
    chart: Chart
    note: str


def _heatmap_spec(d: pd.DataFrame, sector_order: list[str], muni_order: list[str]) -> dict[str, Any]:
    import altair as alt

    base = alt.Chart(d).encode(
        x=alt.X("sector:N", sort=sector_order, title=None, axis=alt.Axis(labelAngle=-40, labelLimit=190, orient="top")),
        y=alt.Y("municipality:N", sort=muni_order, title=None),
    )
    rect = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=alt.Color(
            "lq_color:Q",
            title="LQ",
            scale=alt.Scale(type="log", domain=list(LQ_RANGE), domainMid=1, scheme="redblue", reverse=True),
            legend=alt.Legend(values=[0.25, 0.5, 1, 2, 4], format=".2~f", gradientLength=180),
        ),
        tooltip=["municipality", "sector", alt.Tooltip("lq:Q", format=".2f")],
    )
    text = base.mark_text(fontSize=10).encode(
        text="label:N",
        color=alt.condition("datum.lq_color > 2.2 || datum.lq_color < 0.45", alt.value("white"), alt.value("#1f2937")),
    )
    width = max(380, 42 * len(sector_order))
    return dict((rect + text).properties(width=width, height=24 * len(muni_order)).to_dict())


def _heatmap_frame(wh: Warehouse, rows: pd.DataFrame, label: Any) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Heatmap cells (row label, sector, LQ) in the rows' order, sectors in SNI order."""
    sni = wh.seed("sni2007_groups", ["sort_order"]).set_index("sni_group_code")
    d = rows.copy()
    d["municipality"] = label(d)
    d["sector"] = d["sni_group_code"] + " " + d["sni_group_code"].map(sni["name_en"]).fillna(d["sni_group_code"])
    d["_order"] = d["sni_group_code"].map(sni["sort_order"]).fillna(999)
    sector_order = list(d.sort_values(["_order", "sni_group_code"]).drop_duplicates("sni_group_code")["sector"])
    muni_order = list(d.drop_duplicates("region_code")["municipality"])
    d = d[["municipality", "sector", "lq"]].copy()
    d["lq_color"] = d["lq"].clip(lower=LQ_RANGE[0], upper=LQ_RANGE[1])
    d["label"] = d["lq"].map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    return d, sector_order, muni_order


def location_quotients_real(wh: Warehouse) -> Block:
    """Real figures first: every county (SCB RAMS) and the county's municipalities with a municipal file, each in
    its latest year without a synthetic input."""
    mart = "mart_sector_location_quotients"
    basis = str(wh.vars.get("employment_basis", "day"))
    try:
        rows = wh.read(mart, "location_quotients_real", basis=basis)
    except Unavailable as exc:
        raise Unavailable(
            f"no location quotient rests on real figures only ({exc}); load SCB RAMS by county "
            "(raw.regional_employment) or a municipal FO05 file"
        ) from exc
    d, sector_order, muni_order = _heatmap_frame(
        wh, rows, lambda f: f["region_code"].map(wh.name_of) + " " + f["year"].astype(int).astype(str)
    )
    years = sorted({int(y) for y in rows["year"]})
    return Block(
        title="",
        view=HeatmapView(
            chart=chart(lambda: _heatmap_spec(d, sector_order, muni_order), "lqheatreal"),
            note=f"Shown: basis = {basis}; real figures only, each region in its latest such year.",
        ),
        macro="heatmap",
        prov=wh.provenance(mart, rows, ["employment_by_sector", "regional_employment", "municipal_day_population"]),
        vintage=", ".join(str(y) for y in years),
        intro="Real figures: the 21 counties from SCB RAMS (employed 16+, November 2018) against Sweden as the sum "
        "of the counties, and the county's municipalities that supplied a district file (FO05, ages 16-74/15-74; "
        "against RAMS the ages differ, see bases_match in the mart). Same colour scale as below.",
    )


def location_quotients(wh: Warehouse) -> Block:
    mart = "mart_sector_location_quotients"
    basis = str(wh.vars.get("employment_basis", "day"))
    rows = wh.read(mart, "location_quotients", basis=basis)
    d, sector_order, muni_order = _heatmap_frame(wh, rows, lambda f: f["region_code"].map(wh.name_of))
    return Block(
        title="",
        view=HeatmapView(
            chart=chart(lambda: _heatmap_spec(d, sector_order, muni_order), "lqheat"), note=f"Shown: basis = {basis}."
        ),
        macro="heatmap",
        prov=wh.provenance(mart, rows, ["employment_by_sector"]),
        vintage=str(int(rows["year"].max())),
        intro="LQ = (sector's share of the municipality's employment) / (sector's share of Sweden's). "
        "Above 1 (red) the municipality is more specialised in the sector than Sweden, below 1 "
        "(blue) less. The colour scale is logarithmic and capped at ¼ and 4.",
    )
