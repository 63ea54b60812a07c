"""The locality typology's class cell at narrow widths: the class code is one unbroken label and its 'rule' list has
one line per dimension, even where a rule's own text holds a semicolon. Cheap: the template and the view only."""

from __future__ import annotations

import re

from warehouse.report.render import TEMPLATE_DIR, TEMPLATE_NAME, _environment
from warehouse.report.typology import DIMENSIONS, DimensionCell, LocalityRow, TypologyView, rule_lines

# as mart_locality_typology writes it (string_agg of the seed's rule texts with '; ')
RULE_APPLIED = (
    "size = 3391.0 -> S2 small town (Population 1 000-4 999); growth = 0.8 -> G3 growing (Annualised change 0.5 % "
    "per year or more); accessibility = K2 -> A2 within 45 min of K1 (Municipality within 45 minutes by car of K1 "
    "(or commuting proxy; see basis))"
)


def test_rule_lines_split_only_between_dimensions() -> None:
    assert rule_lines(RULE_APPLIED) == [
        "size = 3391.0 -> S2 small town (Population 1 000-4 999)",
        "growth = 0.8 -> G3 growing (Annualised change 0.5 % per year or more)",
        "accessibility = K2 -> A2 within 45 min of K1 (Municipality within 45 minutes by car of K1 "
        "(or commuting proxy; see basis))",
    ]
    assert rule_lines("") == []


def test_class_label_does_not_wrap() -> None:
    """The label is the <b> of the class cell, and the report's CSS keeps exactly that element on one line."""
    row = LocalityRow(
        code="0560TC101",
        name="Boxholm",
        municipality="Boxholm",
        study_area=False,
        typology_code="S2-G3-D2-F1-A2",
        typology_name="small town / growing / medium density / residential / within 45 min of K1",
        rules=rule_lines(RULE_APPLIED),
        cells=[DimensionCell(d.name, "1", True, "X1", False) for d in DIMENSIONS],
    )
    view = TypologyView(dimensions=DIMENSIONS, rows=[row], note="", rules=None)
    html = _environment().get_template("macros.html.j2").module.typology(view)  # type: ignore[attr-defined]
    assert re.search(
        r'<table class="[^"]*\btypology\b[^"]*">.*<td class="cls"><b title="[^"]+">S2-G3-D2-F1-A2</b>', html, re.S
    )
    assert html.count("<li>") == 3
    css = (TEMPLATE_DIR / TEMPLATE_NAME).read_text(encoding="utf-8")
    rule = re.search(r"table\.typology td\.cls > b \{([^}]*)\}", css)
    assert rule is not None and "white-space: nowrap" in rule.group(1)
