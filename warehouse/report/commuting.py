"""Section 4, commuting: real figures first (municipal PE12 files, the county matrix, SCB's long out-commuting
series), then the balance per municipality (real where a real source exists) and the largest OD flows."""

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
    Column("source", "Source"),
)
FILE_SERIES_COLUMNS = (
    Column("municipality", "Municipality"),
    Column("year", "Year", "plain"),
    Column("in_commuters", "In", "int"),
    Column("out_commuters", "Out", "int"),
    Column("net_commuting", "Net", "sint"),
    Column("stayers", "Live and work", "int"),
    Column("self_containment_supply", "Stay share", "fracu"),
)
COUNTY_COLUMNS = (
    Column("county", "County"),
    Column("employed_residents", "Employed residents", "int"),
    Column("jobs", "Jobs", "int"),
    Column("live_and_work", "Live and work", "int"),
    Column("in_commuters", "In", "int"),
    Column("out_commuters", "Out", "int"),
    Column("net_commuting", "Net", "sint"),
    Column("self_containment_supply", "Residents working in county", "fracu"),
    Column("self_containment_demand", "Jobs held by residents", "fracu"),
    Column("largest", "Largest outflow"),
)
#: how the balance table names the source of a row (mart_commuting_balance.balance_basis)
BASIS_LABELS = {
    "municipal_file_pe12": "municipal file",
    "commuting_totals": "SCB totals",
    "od_matrix": "OD matrix",
}
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


def _source_label(row: dict[str, Any]) -> str:
    basis = row.get("balance_basis")
    label = f"{BASIS_LABELS.get(str(basis), str(basis))}, {row.get('source_table')}" if basis else ""
    return label + (" (synthetic)" if row.get("is_synthetic") is True else "")


def commuting_balance(wh: Warehouse) -> Block:
    mart = "mart_commuting_balance"
    df = wh.read(mart, "commuting_balance")
    year = int(df["year"].max())
    d = df[["municipality", "net_commuting"]].rename(columns={"net_commuting": "net"}).dropna(subset=["net"])
    d["direction"] = d["net"].map(lambda v: "net in-commuting" if v >= 0 else "net out-commuting")
    df["largest"] = [
        ("–" if is_missing(name) else str(name)) + ("" if is_missing(share) else f" ({cell(share, 'fracu')})")
        for name, share in zip(df["largest_outflow_name"], df["largest_outflow_share"], strict=True)
    ]
    # real rows first (a real source where one exists: docs on mart_commuting_balance), each naming its source
    df["_synthetic_first"] = df["is_synthetic"].fillna(False).astype(bool) if "is_synthetic" in df.columns else False
    df = df.sort_values(["_synthetic_first", "net_commuting"], ascending=[True, False], kind="stable")
    rows = df.to_dict("records")
    for row in rows:
        row["source"] = _source_label(row)
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
        prov=wh.provenance(mart, df, ["commuting_flows", "commuting_totals", "municipal_commuting"]),
        vintage=str(year),
        intro="Each row comes from one source, real first: a municipality's own commuting file (PE12), SCB's "
        "commuting totals, then the origin–destination matrix (synthetic offline). Net commuting = people "
        "working in the municipality minus employed people living there. "
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


def _file_series_spec(d: pd.DataFrame) -> dict[str, Any]:
    import altair as alt

    lines = (
        alt.Chart(d)
        .mark_line(strokeWidth=1.8)
        .encode(
            x=alt.X("year:Q", title=None, scale=alt.Scale(zero=False, nice=False), axis=alt.Axis(format="d")),
            y=alt.Y("persons:Q", title="persons", axis=alt.Axis(format="~s")),
            color=alt.Color(
                "measure:N",
                title=None,
                legend=alt.Legend(orient="top"),
                scale=alt.Scale(domain=["in-commuters", "out-commuters"], range=["#1d4ed8", "#ea580c"]),
            ),
            strokeDash=alt.StrokeDash("municipality:N", title=None),
            tooltip=["municipality", "year", "measure", alt.Tooltip("persons:Q", format=",.0f")],
        )
    )
    return dict(lines.properties(width=560, height=180).to_dict())


def commuting_file_series(wh: Warehouse) -> Block:
    """The real series from municipal PE12 files (Linköping's own compilation of SCB data, 1994-)."""
    mart = "mart_commuting_balance"
    df = wh.read(mart, "commuting_file_series")
    first, last = int(df["year"].min()), int(df["year"].max())
    d = df.melt(
        id_vars=["municipality", "year"],
        value_vars=["in_commuters", "out_commuters"],
        var_name="measure",
        value_name="persons",
    ).dropna(subset=["persons"])
    d["measure"] = d["measure"].map({"in_commuters": "in-commuters", "out_commuters": "out-commuters"})
    # the table: every fifth year counted back from the latest, so the latest year is always shown
    shown = df[(last - df["year"]) % 5 == 0].sort_values(["municipality", "year"], kind="stable")
    files = ", ".join(sorted({str(t) for t in df["source_table"].dropna()}))
    return Block(
        title="",
        view=ChartTableView(
            chart=chart(lambda: _file_series_spec(d), "fileseries"),
            table=Table(FILE_SERIES_COLUMNS, shown.to_dict("records")),
            note=f"Commuting across the municipal border, {first}–{last}, from {files}. Ages 16+ to 2009, "
            "16–74 2010–2021, 15–74 from 2022 (the file's note). Live and work = employed residents who work "
            "in the municipality.",
        ),
        macro="chart_table",
        prov=wh.provenance(mart, df, ["municipal_commuting"]),
        vintage=span(first, last),
        intro="The municipality's own commuting file (PE12, SCB data compiled by the municipality): "
        "in-commuters work in the municipality and live in another one, out-commuters the reverse.",
    )


def county_commuting(wh: Warehouse) -> Block:
    """Every county's balance and self-containment from SCB's county matrix (AM0207AC, 2018: real)."""
    mart = "mart_county_commuting"
    df = wh.read(mart, "county_commuting")
    year = int(df["year"].max())
    df["largest"] = [
        "–" if is_missing(name) else f"{name} ({cell(n, 'int')})"
        for name, n in zip(df["largest_outflow_name"], df["largest_outflow"], strict=True)
    ]
    return Block(
        title="",
        view=ChartTableView(
            chart=None,
            table=Table(COUNTY_COLUMNS, df.to_dict("records")),
            note="Residents working in county = live and work / employed residents (supply-side "
            "self-containment); jobs held by residents = live and work / jobs (demand-side).",
        ),
        macro="chart_table",
        prov=wh.provenance(mart, df, ["commuting_od"]),
        vintage=str(year),
        intro="SCB's county-by-county commuting matrix: every employed person by county of residence and "
        "county of work, so jobs count commuters from all of Sweden.",
    )
