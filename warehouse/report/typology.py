"""Section 5, localities: the five-dimension typology of each tätort with the values and rules behind it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from warehouse.report.access import Warehouse
from warehouse.report.format import cell, is_missing
from warehouse.report.model import Block, Column, Table


@dataclass(frozen=True)
class Dimension:
    name: str
    class_column: str
    value_column: str
    kind: str
    header: str


DIMENSIONS = (
    Dimension("size", "size_class", "population", "int", "Population"),
    Dimension("growth", "growth_class", "growth_pct_per_year", "pct", "Growth % / yr"),
    Dimension("density", "density_class", "density_per_km2", "int", "Inhabitants / km²"),
    Dimension("function", "function_class", "function_job_ratio", "num2", "Jobs / employed resident"),
    Dimension("accessibility", "accessibility_class", "municipality_category", "text", "Access to K1"),
)
# rule_applied joins one rule per dimension with "; " ("size = 3391.0 -> S2 ...; growth = ..."); a rule's own text
# may hold "; " too (accessibility: "(or commuting proxy; see basis)"), so split only where a dimension starts
_RULE_SEPARATOR = re.compile(r";\s*(?=(?:" + "|".join(d.name for d in DIMENSIONS) + r") = )")
RULE_COLUMNS = (
    Column("dimension", "Dimension"),
    Column("class_code", "Class"),
    Column("class_name_en", "Name"),
    Column("class_name_sv", "Namn"),
    Column("description", "Rule"),
)


@dataclass(frozen=True)
class DimensionCell:
    dimension: str
    value: str  # formatted
    numeric: bool
    class_code: str | None
    proxy: bool  # accessibility from the commuting proxy


@dataclass(frozen=True)
class LocalityRow:
    code: str
    name: str
    municipality: str
    study_area: bool
    typology_code: str
    typology_name: str
    rules: list[str]
    cells: list[DimensionCell]


@dataclass(frozen=True)
class TypologyView:
    dimensions: tuple[Dimension, ...]
    rows: list[LocalityRow]
    note: str
    rules: Table | None


def _row(r: pd.Series) -> LocalityRow:
    cells = [
        DimensionCell(
            dimension=dim.name,
            value=cell(r[dim.value_column], dim.kind),
            numeric=dim.kind != "text",
            class_code=None if is_missing(r[dim.class_column]) else str(r[dim.class_column]),
            proxy=dim.name == "accessibility" and "proxy" in str(r["category_basis"]),
        )
        for dim in DIMENSIONS
    ]
    rule = "" if is_missing(r["rule_applied"]) else str(r["rule_applied"])
    return LocalityRow(
        code=str(r["locality_code"]),
        name=str(r["locality_code"] if is_missing(r["locality_name"]) else r["locality_name"]),
        municipality=str(r["municipality_name"]),
        study_area=bool(r["is_study_area"]),
        typology_code=cell(r["typology_code"], "text"),
        typology_name="" if is_missing(r["typology_name_en"]) else str(r["typology_name_en"]),
        rules=rule_lines(rule),
        cells=cells,
    )


def rule_lines(rule_applied: str) -> list[str]:
    """The mart's ``rule_applied`` as one line per dimension, for the class cell's 'rule' list."""
    return [part.strip() for part in _RULE_SEPARATOR.split(rule_applied) if part.strip()]


def _note(df: pd.DataFrame) -> str:
    n_study = int(df["is_study_area"].sum())
    growth_from = ""
    if df["previous_year"].notna().any():
        growth_from = f" Growth is annualised since the {int(df['previous_year'].min())} delineation."
    proxy = (
        " * = K1/K2/K3 from the commuting proxy." if df["category_basis"].fillna("").str.contains("proxy").any() else ""
    )
    return (
        f"{len(df)} localities in the county"
        + (f"; {n_study} in the study area (highlighted)" if n_study else "")
        + ". Sorted by municipality, then population. The class code joins one class per dimension "
        "(size-growth-density-function-accessibility); open 'rule' for the rules that applied." + growth_from + proxy
    )


def locality_typology(wh: Warehouse) -> Block:
    """Rows come sorted from DuckDB: municipality in Swedish order (ICU collation), then population."""
    mart = "mart_locality_typology"
    df = wh.read(mart, "locality_typology")
    rules = wh.seed("locality_typology_rules", ["dimension_order", "class_order"])
    view = TypologyView(
        dimensions=DIMENSIONS,
        rows=[_row(r) for _, r in df.iterrows()],
        note=_note(df),
        rules=None if rules.empty else Table(RULE_COLUMNS, rules.to_dict("records")),
    )
    return Block(
        title="",
        view=view,
        macro="typology",
        prov=wh.provenance(mart, df, ["localities", "population", "employment_by_sector"]),
        vintage=str(int(df["year"].max())),
        intro="Each tätort gets a class on five dimensions — size, growth, density, function (jobs per "
        "employed resident: the locality's own where its districts' figures are loaded, else the "
        "municipality's; the rule says which) and accessibility to K1 — with the values behind "
        "it and the rule that applied. Two places of the same size are told apart by the others.",
    )
