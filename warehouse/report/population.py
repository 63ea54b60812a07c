"""Section 1, population: growth by municipality category (K1/K2/K3) and the trend per municipality."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from warehouse.report.access import Warehouse
from warehouse.report.charts import Chart, chart
from warehouse.report.format import fmt_int, fmt_pct, is_missing, span
from warehouse.report.model import Block

#: K1/K2/K3 in display order.
CATEGORY_ORDER = {"K1": 0, "K2": 1, "K3": 2}
MAX_PERIODS = 4

Growth = tuple[float | None, float | None]  # (pooled, unweighted mean)


@dataclass(frozen=True)
class Period:
    start: int
    end: int
    label: str  # the mart's horizon label: '2014-2024' for an explicit period, '10y' for a horizon

    @property
    def title(self) -> str:
        return f"{self.start}–{self.end}"

    @property
    def horizon(self) -> str:
        """The horizon label worth showing next to the years ('10y'), or '' for an explicit period."""
        return "" if "-" in self.label else self.label


@dataclass(frozen=True)
class GroupRow:
    name: str
    basis: str
    members: object
    is_county: bool
    growth: list[Growth]


@dataclass(frozen=True)
class MemberRow:
    code: str
    name: str
    category: str
    basis: str
    minutes: object
    pooled: list[float | None]

    @property
    def is_proxy(self) -> bool:
        return "proxy" in self.basis


@dataclass
class CategoryGrowthView:
    periods: list[Period]
    groups: list[GroupRow]
    chart: Chart | None
    members: list[MemberRow] = field(default_factory=list)
    show_minutes: bool = False
    proxy_note: str = ""


@dataclass(frozen=True)
class TrendView:
    chart: Chart
    note: str


def _growth_table(df: pd.DataFrame) -> tuple[list[Period], dict[tuple[str, str, int, int], Growth]]:
    periods: dict[tuple[int, int], Period] = {}
    growth: dict[tuple[str, str, int, int], Growth] = {}
    for r in df.itertuples(index=False):
        a, b = int(r.start_year), int(r.end_year)
        if (a, b) not in periods and len(periods) < MAX_PERIODS:
            periods[(a, b)] = Period(a, b, str(r.horizon_label))
        values = (r.growth_pct_pooled, r.growth_pct_unweighted_mean)
        growth.setdefault(
            (str(r.group_type), str(r.group_code), a, b),
            (None if is_missing(values[0]) else float(values[0]), None if is_missing(values[1]) else float(values[1])),
        )
    return list(periods.values()), growth


def _group_rows(df: pd.DataFrame, periods: list[Period], growth: dict) -> list[GroupRow]:
    groups = df[df["group_type"].isin(["county", "category"])]
    keys = sorted(
        set(zip(groups["group_type"], groups["group_code"], strict=True)),
        key=lambda k: (k[0] != "category", CATEGORY_ORDER.get(k[1], 3), k[1]),
    )
    rows = []
    for t, c in keys:
        sub = groups[(groups["group_type"] == t) & (groups["group_code"] == c)]
        basis = ""
        if t == "category":
            basis = ", ".join(sorted({str(v).replace("_", " ") for v in sub["category_basis"].dropna()}))
        rows.append(
            GroupRow(
                name="County" if t == "county" else c,
                basis=basis,
                members=sub["members"].max(),
                is_county=t == "county",
                growth=[growth.get((t, c, p.start, p.end), (None, None)) for p in periods],
            )
        )
    return rows


def _growth_chart(rows: list[GroupRow], periods: list[Period]) -> Chart | None:
    records = [
        {"group": g.name, "period": p.title, "measure": measure, "growth": v}
        for g in rows
        for p, (pooled, mean) in zip(periods, g.growth, strict=True)
        for measure, v in (("pooled", pooled), ("unweighted mean", mean))
        if v is not None
    ]
    if not records:
        return None
    data = pd.DataFrame(records)
    group_order = [g.name for g in rows if not g.is_county] + ["County"]

    def spec() -> dict[str, Any]:
        import altair as alt

        return (
            alt.Chart(data)
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
            .facet(column=alt.Column("period:N", title=None, sort=[p.title for p in periods]), spacing=16)
            .to_dict()
        )

    return chart(spec, "catgrowth")


def _member_rows(wh: Warehouse, df: pd.DataFrame, periods: list[Period], growth: dict) -> list[MemberRow]:
    munis = df[df["group_type"] == "municipality"].drop_duplicates("group_code")
    munis = munis.assign(_order=munis["category"].map(lambda k: CATEGORY_ORDER.get(k, 3)))
    rows = []
    for r in munis.sort_values(["_order", "group_code"], kind="stable").itertuples(index=False):
        code = str(r.group_code)
        rows.append(
            MemberRow(
                code=code,
                name=wh.name_of(code),
                category="–" if is_missing(r.category) else str(r.category),
                basis="" if is_missing(r.category_basis) else str(r.category_basis),
                minutes=wh.muni_info(code).get("minutes_by_car_to_k1"),
                pooled=[growth.get(("municipality", code, p.start, p.end), (None, None))[0] for p in periods],
            )
        )
    return rows


def category_growth(wh: Warehouse) -> Block:
    mart = "mart_population_growth_by_category"
    df = wh.read(mart, "category_growth")
    periods, growth = _growth_table(df)
    groups = _group_rows(df, periods, growth)
    members = _member_rows(wh, df, periods, growth)
    view = CategoryGrowthView(
        periods=periods,
        groups=groups,
        chart=_growth_chart(groups, periods),
        members=members,
        show_minutes=any(not is_missing(m.minutes) for m in members),
    )
    minutes = wh.vars.get("k2_max_minutes")
    if any(m.is_proxy for m in members):
        share = fmt_pct(float(wh.vars.get("k2_proxy_min_share_to_k1", 0)) * 100, signed=False).replace("\u2009", " ")
        view.proxy_note = (
            "Basis 'commuting proxy': no travel time is maintained in the seed for this "
            f"municipality, so it is K2 when at least the var k2_proxy_min_share_to_k1 (default {share}) "
            "of its employed residents work in K1, or K1 takes its largest outflow, instead of the "
            f"{minutes}-minute rule. Offline the commuting matrix is synthetic, and so is this proxy."
        )
    if any(m.basis == "user_membership" for m in members):
        user_note = (
            "Basis 'user membership': the category is taken as given in the user's own membership file "
            "(regionstat.toml [seeds] k2_membership), not from travel times."
        )
        view.proxy_note = f"{view.proxy_note} {user_note}".strip() if view.proxy_note else user_note
    return Block(
        title="",
        view=view,
        macro="category_growth",
        prov=wh.provenance(mart, df, ["population"]),
        vintage=span(min(p.start for p in periods), max(p.end for p in periods)),
        intro=f"K1 is the county's largest municipality, K2 the municipalities within {minutes} minutes by car of "
        "K1, K3 the rest. 'Pooled' is the growth of the members' summed population; 'mean' is the "
        "unweighted mean of the members' own growth rates, the convention of the "
        "regional-development slides.",
    )


def population_trend(wh: Warehouse) -> Block:
    mart = "fct_population"
    rows = wh.read(mart, "population_trend")
    d = rows[["municipality", "year", "population"]]
    first, last = int(d["year"].min()), int(d["year"].max())
    latest = d[d["year"] == last].sort_values("population", ascending=False)
    order = list(latest["municipality"])

    def spec() -> dict[str, Any]:
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
                facet=alt.Facet("municipality:N", title=None, sort=order), columns=4, spacing={"row": 14, "column": 18}
            )
            .resolve_scale(y="independent")
            .resolve_axis(x="independent")
            .to_dict()
        )

    note = (
        f"{len(order)} municipalities, {first}–{last}; {fmt_int(latest['population'].sum())} inhabitants in "
        f"{last}. Each panel has its own vertical scale (ordered by size)."
    )
    return Block(
        title="",
        view=TrendView(chart=chart(spec, "poptrend"), note=note),
        macro="population_trend",
        prov=wh.provenance(mart, rows, ["population"]),
        vintage=f"{first}–{last}",
    )
