"""Section key figures: a few of Linköping kommun's KS indicators (mart_key_figures, source ksi2242) side by
side for Linköping, Norrköping, the county and Sweden, each at its latest quarter."""

from __future__ import annotations

from typing import Any

from warehouse.report.access import Unavailable, Warehouse
from warehouse.report.format import fmt_num
from warehouse.report.model import Block, Column, Table

#: The indicators shown, in order (codes of ksi2242; names and units come from the mart).
INDICATORS = (
    "Befolkning",
    "Syssgrad",
    "Arbetlös16-65",
    "SysselDag",
    "SyssNatt",
    "Pendlingsnetto",
    "Nyföretagande",
    "PåbörjadTot",
)


def _value(value: object, unit: str) -> str:
    """Per cent with one decimal (as the file publishes it), counts whole."""
    if unit == "per cent":
        return fmt_num(value, 1) + "\u2009%"
    if unit == "times":
        return fmt_num(value, 2)
    return fmt_num(value, 0)  # a real minus sign for net figures


def key_figures(wh: Warehouse) -> Block:
    mart = "mart_key_figures"
    try:
        df = wh.read(mart, "key_figures", indicators=list(INDICATORS))
    except Unavailable:
        if mart not in wh.tables:
            raise
        raise Unavailable(
            "no KS indicators loaded: drop Linköping's ksi2242.px into data/inbox/commuting/ and run again"
        ) from None
    regions = [("0580", "Linköping"), ("0581", "Norrköping"), (wh.county, wh.name_of(wh.county)), ("00", "Sweden")]
    rows: list[dict[str, Any]] = []
    for code in INDICATORS:
        sub = df[df["indicator_code"] == code]
        if sub.empty:
            continue
        first = sub.iloc[0]
        values = dict(zip(sub["region_code"], sub["value"], strict=True))
        row = {"indicator": first["indicator_name"], "unit": first["unit"], "period": first["period"]}
        row.update({region: _value(values.get(region), str(first["unit"])) for region, _ in regions})
        rows.append(row)
    if not rows:
        raise Unavailable("mart_key_figures holds none of the indicators shown")
    columns = (
        Column("indicator", "Indicator"),
        Column("unit", "Unit"),
        Column("period", "Quarter"),
        *(Column(region, name) for region, name in regions),
    )
    return Block(
        title="",
        view=Table(columns, rows),
        macro="table",
        prov=wh.provenance(mart, df, ["key_indicators"]),
        vintage=str(df["period"].max())[:4],
        intro="Linköping kommun's KS indicators (ksi2242) at the latest quarter each has for Linköping. "
        "Employment figures are preliminary; every indicator with unit and definition, the peer groups "
        "and regionstat's own series are in marts.mart_key_figures.",
    )
