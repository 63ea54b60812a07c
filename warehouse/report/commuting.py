"""Section 4, commuting: net balance per municipality, the largest flows, and SCB's long out-commuting series."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from warehouse.report.access import Warehouse
from warehouse.report.charts import Chart, chart
from warehouse.report.format import cell, fmt_pct, is_missing, span
from warehouse.report.model import Block, Column, Table

BALANCE_COLUMNS = (
    Column("municipality", "Municipality"),
    Column("employed_residents", "Employed residents", "int"),
    Column("jobs", "Jobs", "int"),
    Column("out_commuters", "Out", "int"),
    Column("in_commuters", "In", "int"),
    Column("net_commuting", "Net", "sint"),
    Column("job_ratio", "Jobs per resident", "num2"),
    Column("self_containment_supply", "Stay share", "fracu"),
    Column("largest", "Largest outflow (share)"),
)
FLOW_COLUMNS = (
    Column("rank", "#", "plain"),
    Column("residence_name", "From (residence)"),
    Column("workplace_name", "To (workplace)"),
    Column("commuters", "Commuters", "int"),
    Column("share_of_residents", "Share of residents", "pctu"),
)


@dataclass(frozen=True)
class ChartTableView:
    """A chart above a table (either may be absent) and an explanatory note."""

    chart: Chart | None
    table: Table | None
    note: str


def _balance_spec(d: pd.DataFrame, year: int) -> dict[str, Any]:
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
    return dict((bars + rule).properties(width=560, height=22 * len(d)).to_dict())


def commuting_balance(wh: Warehouse) -> Block:
    mart = "mart_commuting_balance"
    df = wh.read(mart, "commuting_balance")
    year = int(df["year"].max())
    d = df[["municipality", "net_commuting"]].rename(columns={"net_commuting": "net"})
    d["direction"] = d["net"].map(lambda v: "net in-commuting" if v >= 0 else "net out-commuting")
    df["largest"] = [
        ("–" if is_missing(name) else str(name)) + ("" if is_missing(share) else f" ({cell(share, 'fracu')})")
        for name, share in zip(df["largest_outflow_name"], df["largest_outflow_share"], strict=True)
    ]
    rows = df.sort_values("net_commuting", ascending=False, kind="stable").to_dict("records")
    la_out = fmt_pct(float(wh.vars.get("la_max_out_share", 0)) * 100, digits=0, signed=False).replace("\u2009", " ")
    la_one = fmt_pct(float(wh.vars.get("la_max_single_destination_share", 0)) * 100, signed=False)
    view = ChartTableView(
        chart=chart(lambda: _balance_spec(d, year), "netcomm"),
        table=Table(BALANCE_COLUMNS, rows),
        note="Stay share = employed residents who work in their own municipality (supply-side "
        "self-containment); the largest outflow share is the single largest destination's share of "
        f"employed residents (SCB's LA rule uses {la_out} and {la_one.replace(chr(0x2009), ' ')}).",
    )
    return Block(
        title="",
        view=view,
        macro="chart_table",
        prov=wh.provenance(mart, df, ["commuting_flows"]),
        vintage=str(year),
        intro="Net commuting = people working in the municipality minus employed people living there. "
        "Positive: more come in than go out (a job centre); negative: a residential municipality.",
    )


def top_flows(wh: Warehouse, top_n: int) -> Block:
    mart = "fct_commuting_flows"
    df = wh.read(mart, "top_flows", top_n=top_n)
    df.insert(0, "rank", range(1, len(df) + 1))
    return Block(
        title="",
        view=ChartTableView(
            chart=None, table=Table(FLOW_COLUMNS, df.to_dict("records")), note="Shown: sex_code = total."
        ),
        macro="chart_table",
        prov=wh.provenance(mart, df, ["commuting_flows"]),
        vintage=str(int(df["year"].max())),
        intro="The largest flows between two different municipalities in the origin–destination matrix. "
        "'Share of residents' is the flow as a share of the employed residents of the origin.",
    )


def _series_spec(d: pd.DataFrame, breaks: list[int], order: list[str]) -> dict[str, Any]:
    import altair as alt

    lines = (
        alt.Chart()
        .mark_line(strokeWidth=1.5, color="#0f766e")
        .encode(
            x=alt.X(
                "year:Q", title=None, scale=alt.Scale(zero=False, nice=False), axis=alt.Axis(format="d", tickCount=4)
            ),
            y=alt.Y("rate:Q", title=None, axis=alt.Axis(tickCount=4)),
            tooltip=["municipality", "year", alt.Tooltip("rate:Q", format=".1f")],
        )
    )
    if breaks:
        rules = (
            alt.Chart(pd.DataFrame({"year": breaks})).mark_rule(color="#9ca3af", strokeDash=[3, 3]).encode(x="year:Q")
        )
        layer = alt.layer(rules, lines, data=d)
    else:
        layer = alt.layer(lines, data=d)
    return dict(
        layer.properties(width=190, height=95)
        .facet(facet=alt.Facet("municipality:N", title=None, sort=order), columns=4, spacing={"row": 14, "column": 18})
        .resolve_axis(x="independent")
        .to_dict()
    )


def commuting_series(wh: Warehouse) -> Block:
    mart = "mart_commuting_totals_series"
    df = wh.read(mart, "commuting_series")
    breaks = [int(y) for y in df.groupby("source_series")["year"].min().sort_values().iloc[1:]]
    d = df[["municipality", "year", "rate"]].dropna()
    first, last = int(d["year"].min()), int(d["year"].max())
    order = list(d[d["year"] == last].sort_values("rate", ascending=False, kind="stable")["municipality"])
    extra = f" Dashed lines mark series breaks ({', '.join(map(str, breaks))})." if breaks else ""
    return Block(
        title="",
        view=ChartTableView(
            chart=chart(lambda: _series_spec(d, breaks, order), "outseries"),
            table=None,
            note=f"Out-commuters as % of employed residents, {first}–{last}.{extra}",
        ),
        macro="chart_table",
        prov=wh.provenance(mart, df, ["commuting_totals"]),
        vintage=span(int(df["year"].min()), int(df["year"].max())),
        intro="SCB's long commuting series across the municipal border (RAMS 1993–2018, BAS from 2019). "
        "This is real SCB data, independent of the origin–destination matrix above.",
    )
