"""GX expectation suites for landing batches: one suite per catalogue entry (SCB source or municipal file).

Suites are built as code from the catalogue model (:mod:`regionstat.catalogue`: columns, explicit code lists,
the region reference), plus domain knowledge
that the catalogue cannot express (known region and SNI codes, period formats, which measures are counts).

Severities, as bigquery-etl's ``#fail`` / ``#warn``: every expectation carries ``meta["severity"]``;
**fail** blocks the batch (quarantine), **warn** is recorded and the batch passes. GX's own ``severity``
field is set to match (``critical`` / ``warning``) so Data Docs show it too.

A suite has a static part (cached per source) and a per-batch part that needs the batch's context: the row
count promised by the manifest and the dimension values of the previous good batch (a value that vanished
fails). Checks GX cannot express on a single frame (year totals vs the previous load, commuting row sums vs
employed residents) live in :mod:`expectations.checks` and are recorded in the same result rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from expectations.gxcore import gx
from regionstat.catalogue import FileSource, Source, load_catalogue, load_regions
from regionstat.results import Severity

FAIL = Severity.FAIL
WARN = Severity.WARN
_GX_SEVERITY: dict[str, str] = {FAIL: "critical", WARN: "warning"}

#: PxWeb cell symbols allowed in ``status`` (null = a number).
STATUS_SYMBOLS = ["..", ".", "-", "...", "...."]
#: SNI 2007 groups at municipality level, plus the total: the catalogue's ``sni2007_groups``.
SNI_CODES = load_catalogue().sni_codes
#: Years, quarters (2024K4) and months (2024M01).
PERIOD_REGEX = r"^\d{4}(?:K[1-4]|M(?:0[1-9]|1[0-2]))?$"
LOCALITY_REGEX = r"^\d{4}T[BC]\d{3}$"
#: Content codes whose values are not counts of people (land area km², hectares, density): the catalogue's measures.
NON_COUNT_CONTENTS = load_catalogue().non_count_contents
#: Columns holding region codes.
REGION_COLUMNS = ("Region", "Bostadskommun", "Arbetsstallekommun")
TIME_COLUMNS = ("Tid", "period")
#: Net flows may be negative in municipal commuting files (PE12 ``Netto``).
NET_FLOW_CODES = ["Netto", "Nettopendling", "netto", "Net", "net"]
#: Reference kinds a catalogue ``files:`` entry may name in ``codes`` (instead of an explicit list).
REFERENCE_CODES = {
    "region": "a region code known to SCB (TAB638: Riket, county or municipality)",
    "district": "a municipal district code (three digits, as PE12/FO05's NYKODAG22T) or a municipality code",
}


@cache
def known_regions() -> tuple[str, ...]:
    """Region codes of SCB's Region dimension (TAB638: Riket, 21 counties, 290 municipalities)."""
    return tuple(r.code for r in load_regions())


@dataclass(frozen=True)
class SuiteSpec:
    """What a landing table of one source must look like; the static half of its GX suite."""

    source_name: str
    raw_table: str
    kind: str  # pxweb | file | unknown
    dimensions: tuple[str, ...]
    code_lists: tuple[tuple[str, tuple[str, ...]], ...] = ()
    count_contents: str = "all"  # all | none | condition
    non_count_codes: tuple[str, ...] = ()
    value_nonneg_condition: str | None = None
    description: str = ""
    #: (column, reference kind) for file sources: codes checked against a reference, see REFERENCE_CODES.
    code_refs: tuple[tuple[str, str], ...] = ()
    #: selection variables filled from the region set: every region asked for must come back with a value
    region_variables: tuple[str, ...] = ()
    #: Values may be negative (net changes) on every row: no non-negativity expectation (catalogue value_kind mixed).
    signed_values: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def suite_name(self) -> str:
        return f"landing.{self.raw_table}.{self.source_name}"

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.dimensions, "value", "status")


def _spec_from_source(src: Source) -> SuiteSpec:
    selection: dict[str, Any] = src.selection or {}
    dims = tuple(selection)
    code_lists = []
    for var, sel in selection.items():
        if isinstance(sel, dict):  # {codelist: ID, values: ...}: the codelist's codes, not the table's
            continue
        if isinstance(sel, list):
            code_lists.append((var, tuple(str(v) for v in sel)))
    contents = selection.get("ContentsCode")
    non_count: tuple[str, ...] = ()
    count_contents = "all"
    if isinstance(contents, list):
        nc = [c for c in contents if str(c) in NON_COUNT_CONTENTS]
        if len(nc) == len(contents):
            count_contents = "none"
        elif nc:
            count_contents, non_count = "condition", tuple(nc)
    elif "ContentsCode" in dims:  # "*": decide per row
        count_contents, non_count = "condition", tuple(sorted(NON_COUNT_CONTENTS))
    return SuiteSpec(
        source_name=src.name,
        raw_table=src.raw_table,
        kind="pxweb",
        dimensions=dims,
        code_lists=tuple(code_lists),
        count_contents=count_contents,
        non_count_codes=non_count,
        description=(src.description or "").strip(),
        region_variables=src.region_variables(),
    )


def _spec_from_file(entry: FileSource) -> SuiteSpec:
    targets = entry.target_columns
    cond = None
    if "flow_type" in targets:
        cond = f"flow_type not in {NET_FLOW_CODES!r}"
    code_lists, code_refs = [], []
    for col, codes in (entry.codes or {}).items():
        if col not in targets:
            raise ValueError(f"catalogue files entry {entry.name!r}: codes for {col!r}: not a target column")
        if isinstance(codes, str):
            if codes not in REFERENCE_CODES:
                raise ValueError(
                    f"catalogue files entry {entry.name!r}: codes of {col!r} name unknown reference {codes!r} "
                    f"(known: {', '.join(REFERENCE_CODES)})"
                )
            code_refs.append((col, codes))
        else:
            code_lists.append((col, tuple(str(c) for c in codes)))
    return SuiteSpec(
        source_name=entry.name,
        raw_table=entry.raw_table,
        kind="file",
        dimensions=tuple(targets),
        code_lists=tuple(code_lists),
        code_refs=tuple(code_refs),
        value_nonneg_condition=cond,
        description=(entry.description or "").strip(),
        # value_kind mixed: rates, shares and net changes next to counts, so neither whole nor non-negative
        count_contents="none" if entry.value_kind == "mixed" else "all",
        signed_values=entry.value_kind == "mixed",
    )


@cache
def suite_specs() -> dict[str, SuiteSpec]:
    """Every catalogue entry's spec, by source name."""
    cat = load_catalogue()
    specs = {s.name: _spec_from_source(s) for s in cat.sources}
    specs.update({f.name: _spec_from_file(f) for f in cat.files})
    return specs


def spec_for(source_name: str, raw_table: str | None = None, schema: dict[str, str] | None = None) -> SuiteSpec:
    """The spec of a catalogue entry; an unknown source gets a generic spec from its manifest's schema."""
    spec = suite_specs().get(source_name)
    if spec is not None:
        return spec
    dims = tuple(c for c in (schema or {}) if c not in ("value", "status"))
    return SuiteSpec(
        source_name=source_name,
        raw_table=raw_table or "unknown",
        kind="unknown",
        dimensions=dims,
        count_contents="condition" if "ContentsCode" in dims else "all",
        non_count_codes=tuple(sorted(NON_COUNT_CONTENTS)),
    )


# -- building GX expectations ------------------------------------------------------------------------------


def _meta(severity: str, note: str, **more: Any) -> dict[str, Any]:
    return {"severity": severity, "notes": note, **more}


def _mk(cls_name: str, severity: str, note: str, meta: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    cls = getattr(gx().expectations, cls_name)
    return cls(meta=_meta(severity, note, **(meta or {})), severity=_GX_SEVERITY[severity], **kwargs)


def static_expectations(spec: SuiteSpec) -> list[Any]:
    """The batch-independent expectations of a source, in reporting priority (schema first)."""
    ex: list[Any] = []
    dims = list(spec.dimensions)
    ex.append(
        _mk(
            "ExpectTableColumnsToMatchSet",
            FAIL,
            "schema: the selected variables plus value and status",
            column_set=list(spec.columns),
            exact_match=True,
        )
    )
    ex.append(_mk("ExpectColumnValuesToBeOfType", FAIL, "value is float64", column="value", type_="float64"))
    for col in (*dims, "status"):
        ex.append(_mk("ExpectColumnValuesToBeOfType", FAIL, f"{col} holds strings", column=col, type_="str"))
    for col in dims:
        ex.append(_mk("ExpectColumnValuesToNotBeNull", FAIL, f"{col} is a key: never null", column=col))
    if dims:
        ex.append(
            _mk(
                "ExpectCompoundColumnsToBeUnique", FAIL, "one row per combination of dimension values", column_list=dims
            )
        )
    for col in dims:
        if col in REGION_COLUMNS:
            ex.append(
                _mk(
                    "ExpectColumnValuesToBeInSet",
                    FAIL,
                    f"{col}: a region code known to SCB (TAB638)",
                    column=col,
                    value_set=list(known_regions()),
                    meta={"code_kind": "region"},
                )
            )
        elif col == "SNI2007":
            ex.append(
                _mk(
                    "ExpectColumnValuesToBeInSet",
                    FAIL,
                    "SNI 2007 group known at municipality level",
                    column=col,
                    value_set=SNI_CODES,
                    meta={"code_kind": "SNI"},
                )
            )
        elif col in TIME_COLUMNS:
            ex.append(
                _mk(
                    "ExpectColumnValuesToMatchRegex",
                    FAIL,
                    "period is a year, 2024K4 or 2024M01",
                    column=col,
                    regex=PERIOD_REGEX,
                )
            )
        elif col == "Tatort":
            ex.append(
                _mk(
                    "ExpectColumnValuesToMatchRegex",
                    FAIL,
                    "locality code KKKKTCNNN / KKKKTBNNN",
                    column=col,
                    regex=LOCALITY_REGEX,
                )
            )
            munis = "|".join(c for c in known_regions() if len(c) == 4)
            ex.append(
                _mk(
                    "ExpectColumnValuesToMatchRegex",
                    WARN,
                    "first four digits: a known municipality",
                    column=col,
                    regex=rf"^(?:{munis})T[BC]\d{{3}}$",
                    meta={"check": "locality_municipality"},
                )
            )
    for col, codes in spec.code_lists:
        if col in REGION_COLUMNS or col in TIME_COLUMNS:
            continue
        ex.append(
            _mk(
                "ExpectColumnValuesToBeInSet",
                FAIL,
                f"{col}: only the codes the catalogue selects",
                column=col,
                value_set=list(codes),
                meta={"code_kind": col},
            )
        )
    for col, ref in spec.code_refs:
        if ref == "region":
            ex.append(
                _mk(
                    "ExpectColumnValuesToBeInSet",
                    FAIL,
                    f"{col}: {REFERENCE_CODES[ref]}",
                    column=col,
                    value_set=list(known_regions()),
                    meta={"code_kind": "region"},
                )
            )
        else:  # district
            munis = "|".join(c for c in known_regions() if len(c) == 4)
            ex.append(
                _mk(
                    "ExpectColumnValuesToMatchRegex",
                    FAIL,
                    f"{col}: {REFERENCE_CODES[ref]}",
                    column=col,
                    regex=rf"^(?:\d{{3}}|{munis})$",
                    meta={"code_kind": "district"},
                )
            )
    ex.append(
        _mk(
            "ExpectColumnValuesToBeInSet",
            FAIL,
            "status is a PxWeb symbol or null",
            column="status",
            value_set=STATUS_SYMBOLS,
            meta={"code_kind": "status symbol"},
        )
    )
    nonneg: dict[str, Any] = {}
    if spec.value_nonneg_condition:
        nonneg = {"row_condition": spec.value_nonneg_condition, "condition_parser": "pandas"}
    if spec.value_nonneg_condition and spec.value_nonneg_condition.startswith("flow_type not in"):
        # GX would print the pandas condition ("If flow_type not in [...] ..."); say what it means instead
        nonneg["description"] = "value is never negative, except on net-flow rows (a net flow can be negative)"
    if not spec.signed_values:
        ex.append(
            _mk(
                "ExpectColumnValuesToBeBetween",
                FAIL,
                "values are counts or areas: never negative",
                column="value",
                min_value=0,
                **nonneg,
            )
        )
    if spec.count_contents != "none":
        cond = "value % 1 != 0"
        whole = "value: counts are whole numbers (no row has a fractional value)"
        if spec.count_contents == "condition":
            cond += f" and ContentsCode not in {list(spec.non_count_codes)!r}"
            whole = f"value: counts are whole numbers (all contents except {', '.join(spec.non_count_codes)})"
        ex.append(
            _mk(
                "ExpectColumnValuesToBeNull",
                FAIL,
                "counts are integral: rows with a fractional value must not exist",
                description=whole,
                column="value",
                row_condition=cond,
                condition_parser="pandas",
                meta={"check": "integral"},
            )
        )
    ex.append(
        _mk(
            "ExpectColumnValuesToNotBeNull",
            WARN,
            "a missing value carries a PxWeb status symbol",
            description="status: a missing value (NaN) carries a PxWeb status symbol saying why it is missing",
            column="status",
            row_condition="value != value",
            condition_parser="pandas",
            meta={"check": "missing_value_has_status"},
        )
    )
    return ex


def batch_expectations(
    spec: SuiteSpec, *, cells: int | None, previous_values: dict[str, list[str]] | None, previous_load_id: str | None
) -> list[Any]:
    """Expectations that need the manifest and the previous good batch."""
    ex: list[Any] = []
    if cells is not None:
        ex.append(_mk("ExpectTableRowCountToEqual", FAIL, "rows = cells requested (manifest)", value=int(cells)))
    for col, values in (previous_values or {}).items():
        ex.append(
            _mk(
                "ExpectColumnDistinctValuesToContainSet",
                FAIL,
                f"no {col} value of the previous good batch {previous_load_id} vanished",
                column=col,
                value_set=sorted(values),
                meta={"check": "vanished_dimension_value", "previous_load_id": previous_load_id},
            )
        )
    return ex


def build_suite(
    spec: SuiteSpec,
    *,
    cells: int | None = None,
    previous_values: dict[str, list[str]] | None = None,
    previous_load_id: str | None = None,
) -> Any:
    """A fresh (unsaved) GX ``ExpectationSuite`` for one batch of ``spec``'s source."""
    g = gx()
    expectations = static_expectations(spec) + batch_expectations(
        spec, cells=cells, previous_values=previous_values, previous_load_id=previous_load_id
    )
    for i, e in enumerate(expectations):
        e.meta = {**(e.meta or {}), "order": i}
    return g.ExpectationSuite(
        name=spec.suite_name,
        expectations=expectations,
        meta={
            "source_name": spec.source_name,
            "raw_table": spec.raw_table,
            "kind": spec.kind,
            "notes": spec.description,
        },
    )


def all_suites() -> list[Any]:
    """The static suite of every catalogue entry (for Data Docs and review)."""
    return [build_suite(spec) for spec in suite_specs().values()]


def severity_of(expectation_config: Any) -> Severity:
    meta = getattr(expectation_config, "meta", None) or {}
    return WARN if meta.get("severity") == WARN else FAIL


def period_ok(value: str) -> bool:
    return re.match(PERIOD_REGEX, value) is not None
