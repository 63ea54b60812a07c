"""Section: population by age and sex: the county's pyramid and the age indicators per municipality."""

from __future__ import annotations

from typing import Any

import pandas as pd

from warehouse.report.access import Unavailable, Warehouse
from warehouse.report.charts import chart
from warehouse.report.commuting import ChartTableView
from warehouse.report.format import fmt_int
from warehouse.report.model import Block, Column, Table

INDICATOR_COLUMNS = (
    Column("area_name", "Area"),
    Column("population_total", "Inhabitants", "int"),
    Column("median_age", "Median age", "num2"),
    Column("share_0_19_pct", "0–19", "pctu"),
    Column("share_20_64_pct", "20–64", "pctu"),
    Column("share_65_plus_pct", "65+", "pctu"),
    Column("share_80_plus_pct", "80+", "pctu"),
    Column("dependency_ratio", "Dependency ratio", "num2"),
)
CHANGE_COLUMN = Column("median_age_change", "Median age change", "num2")
SEX_COLOURS = {"men": "#1d4ed8", "women": "#be185d"}


def _pyramid_spec(d: pd.DataFrame, year: int) -> dict[str, Any]:
    """Men to the left, women to the right of a shared age axis (oldest group on top)."""
    import altair as alt

    order = list(d.sort_values("age_group_from", ascending=False)["age_group"].drop_duplicates())
    top = float(d["population"].max())

    def side(sex: str, reverse: bool) -> alt.Chart:
        return (
            alt.Chart(d[d["sex"] == sex])
            .mark_bar(color=SEX_COLOURS[sex])
            .encode(
                y=alt.Y(
                    "age_group:N",
                    sort=order,
                    title=None,
                    axis=alt.Axis(orient="right", labelPadding=6) if reverse else None,
                ),
                x=alt.X(
                    "population:Q",
                    title=f"{sex}, {year}",
                    scale=alt.Scale(domain=[0, top], reverse=reverse),
                    axis=alt.Axis(format="~s", tickCount=4),
                ),
                tooltip=["age_group", "sex", alt.Tooltip("population:Q", format=",.0f")],
            )
            .properties(width=250, height=16 * len(order))
        )

    return dict(alt.hconcat(side("men", True), side("women", False), spacing=44).to_dict())


def age_structure(wh: Warehouse) -> Block:
    pyramid_mart, indicators_mart = "mart_population_age_groups", "mart_population_age_structure"
    pyramid = wh.read(pyramid_mart, "age_pyramid")
    indicators = wh.read(indicators_mart, "age_structure")
    year = int(pyramid["year"].max())
    if int(indicators["year"].max()) != year:
        raise Unavailable(f"age groups ({year}) and age indicators ({int(indicators['year'].max())}) differ in year")
    columns: tuple[Column, ...] = INDICATOR_COLUMNS
    if indicators["median_age_change"].notna().any():
        columns = (*columns, CHANGE_COLUMN)
    county = indicators[indicators["area_type"] == "county"]
    men = int(pyramid.loc[pyramid["sex"] == "men", "population"].sum())
    women = int(pyramid.loc[pyramid["sex"] == "women", "population"].sum())
    notes = [str(n) for n in indicators["completeness_note"].dropna().unique()]
    note = (
        f"{county['area_name'].iloc[0] if len(county) else 'County'} {year}: {fmt_int(men)} men and "
        f"{fmt_int(women)} women. Median age interpolated within the median single year of age; dependency ratio "
        "= (0–19 + 65+) / (20–64)." + (f" Dashes: {'; '.join(notes)}." if notes else "")
    )
    rows = indicators.to_dict("records")
    return Block(
        title="",
        view=ChartTableView(
            chart=chart(lambda: _pyramid_spec(pyramid, year), "pyramid"),
            table=Table(columns, rows),
            note=note,
        ),
        macro="chart_table",
        prov=wh.provenance(indicators_mart, pd.concat([pyramid, indicators], ignore_index=True), ["population_by_age"]),
        vintage=str(year),
        intro="The county's population pyramid by five-year age group (men left, women right), then the age "
        "structure of each municipality, the study area and the county. A group is the sum of all its member "
        "municipalities; where one lacks age data the group is not shown.",
    )
