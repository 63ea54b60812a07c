"""Table metadata model and client-side resolution of PxWeb v2 selections.

Selections are resolved against the metadata before any data request, so cell counts (and chunk plans) are
known up front and errors name the table, variable and value. Supported items (case-insensitive function
names, as in PxWebApi 2.0):

- a value code (``"0580"``); a code that itself looks like an expression is written in brackets (``"[[X]]"``)
- ``*`` (all), wildcards ``*`` (any run) and ``?`` (one character): ``"05*"``, ``"*01"``, ``"??"``
- ``top(n)`` / ``top(n, offset)``, ``bottom(n)`` / ``bottom(n, offset)``; for the table's time variable
  ``top`` means the latest periods (as SCB does: ``Tid: top(1)`` is the last year), otherwise the first
  values in metadata order
- ``range(a, b)``, ``from(x)``, ``to(x)`` (inclusive, metadata order)

A selection value is a code/expression string or a list of them; a string is split on top-level commas
(``"0580,0581"``). The resolved codes are returned in metadata order without duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from extract.jsonstat import category_codes, category_labels
from regionstat.errors import (
    InvalidSelectionError,
    NonEliminableVariableError,
    ResponseError,
    UnknownValueCodeError,
    UnknownVariableError,
)

__all__ = ["ResolvedSelection", "TableMetadata", "Variable", "resolve_selection", "split_items"]


@dataclass(frozen=True)
class Variable:
    code: str
    label: str
    codes: tuple[str, ...]
    labels: tuple[str, ...]
    elimination: bool
    elimination_value_code: str | None = None
    is_time: bool = False
    is_contents: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pos", {c: i for i, c in enumerate(self.codes)})

    def position(self, code: str) -> int | None:
        return self._pos.get(code)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.codes)


@dataclass(frozen=True)
class TableMetadata:
    """Parsed JSON-stat 2.0 metadata (``GET /tables/{id}/metadata``). ``raw`` is the parsed document."""

    table_id: str
    label: str
    updated: str | None
    variables: tuple[Variable, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_jsonstat(cls, table_id: str, ds: Mapping[str, Any]) -> TableMetadata:
        if "dimension" not in ds or "id" not in ds:
            raise ResponseError(f"table {table_id}: metadata is not a JSON-stat 2.0 dataset", table_id=table_id)
        role = ds.get("role") or {}
        time_vars = set(role.get("time") or [])
        metric_vars = set(role.get("metric") or [])
        sizes = ds.get("size") or [None] * len(ds["id"])
        variables = []
        for code, size in zip(ds["id"], sizes, strict=False):
            d = ds["dimension"][code]
            codes = category_codes(d, size)
            ext = d.get("extension") or {}
            variables.append(
                Variable(
                    code=code,
                    label=d.get("label", code),
                    codes=tuple(codes),
                    labels=tuple(category_labels(d, codes)),
                    elimination=bool(ext.get("elimination", False)),
                    elimination_value_code=ext.get("eliminationValueCode"),
                    is_time=code in time_vars,
                    is_contents=code in metric_vars,
                )
            )
        return cls(table_id, ds.get("label", table_id), ds.get("updated"), tuple(variables), ds)

    @property
    def codes(self) -> list[str]:
        return [v.code for v in self.variables]

    def variable(self, code: str) -> Variable:
        for v in self.variables:
            if v.code == code:
                return v
        raise UnknownVariableError(self.table_id, code, self.codes)

    @property
    def cells(self) -> int:
        n = 1
        for v in self.variables:
            n *= len(v)
        return n


@dataclass(frozen=True)
class ResolvedSelection:
    """Selected variables in metadata order with their codes (metadata order); eliminated variables."""

    table_id: str
    selected: tuple[tuple[str, tuple[str, ...]], ...]
    eliminated: tuple[str, ...]

    @property
    def variables(self) -> list[str]:
        return [v for v, _ in self.selected]

    @property
    def sizes(self) -> list[int]:
        return [len(c) for _, c in self.selected]

    @property
    def cells(self) -> int:
        n = 1
        for s in self.sizes:
            n *= s
        return n

    def as_query(self) -> dict[str, list[str]]:
        return {v: list(c) for v, c in self.selected}


_FUNC = re.compile(r"^\s*(top|bottom|range|from|to)\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)


def split_items(value: str) -> list[str]:
    """Split a selection string on commas that are not inside parentheses or brackets."""
    items: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in value:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur).strip())
    return [i for i in items if i]


def _as_items(value: Any) -> list[str]:
    if isinstance(value, str):
        return split_items(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, Iterable):
        out = []
        for v in value:
            if not isinstance(v, str | int) or isinstance(v, bool):
                raise TypeError(f"selection items must be strings, got {v!r}")
            out.append(str(v).strip())
        return out
    raise TypeError(f"a selection is a code, an expression or a list of them, got {value!r}")


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$", re.DOTALL
    )


def _resolve_item(table_id: str, var: Variable, item: str) -> list[int]:
    """Positions (metadata order) selected by one item."""
    raw = item
    if item.startswith("[") and item.endswith("]"):
        inner = item[1:-1]
        if inner.startswith("[") and inner.endswith("]"):  # [[CODE]] -> literal "[CODE]"
            pos = var.position(inner)
            if pos is None:
                raise UnknownValueCodeError(table_id, var.code, inner)
            return [pos]
        item = inner
    pos = var.position(item)
    if pos is not None:  # an exact code wins over any expression reading
        return [pos]
    n = len(var)
    m = _FUNC.match(item)
    if m:
        func = m.group(1).lower()
        args = [a.strip() for a in m.group(2).split(",")] if m.group(2).strip() else []
        if func in ("top", "bottom"):
            if not 1 <= len(args) <= 2:
                raise InvalidSelectionError(table_id, var.code, raw, f"{func} takes (n) or (n, offset)")
            try:
                count = int(args[0])
                offset = int(args[1]) if len(args) == 2 else 0
            except ValueError:
                raise InvalidSelectionError(table_id, var.code, raw, "n and offset must be integers") from None
            if count < 1 or offset < 0:
                raise InvalidSelectionError(table_id, var.code, raw, "n must be >= 1 and offset >= 0")
            from_start = (func == "top") != var.is_time  # time: top = latest periods
            if from_start:
                return list(range(min(offset, n), min(offset + count, n)))
            hi = max(n - offset, 0)
            return list(range(max(hi - count, 0), hi))
        positions = []
        for a in args:
            p = var.position(a)
            if p is None:
                raise UnknownValueCodeError(table_id, var.code, a)
            positions.append(p)
        if func == "range":
            if len(positions) != 2:
                raise InvalidSelectionError(table_id, var.code, raw, "range takes two value codes")
            lo, hi = positions
            if lo > hi:
                raise InvalidSelectionError(table_id, var.code, raw, f"{args[0]!r} comes after {args[1]!r}")
            return list(range(lo, hi + 1))
        if len(positions) != 1:
            raise InvalidSelectionError(table_id, var.code, raw, f"{func} takes one value code")
        return list(range(positions[0], n)) if func == "from" else list(range(0, positions[0] + 1))
    if "*" in item or "?" in item:
        if item == "*":
            return list(range(n))
        rx = _wildcard(item)
        return [i for i, c in enumerate(var.codes) if rx.match(c)]
    raise UnknownValueCodeError(table_id, var.code, item)


def resolve_selection(meta: TableMetadata, selection: Mapping[str, Any] | None) -> ResolvedSelection:
    """Resolve a user selection against table metadata.

    Raises UnknownVariableError, UnknownValueCodeError, InvalidSelectionError or NonEliminableVariableError;
    never touches the network.
    """
    selection = dict(selection or {})
    known = {v.code for v in meta.variables}
    for code in selection:
        if code not in known:
            raise UnknownVariableError(meta.table_id, code, meta.codes)
    selected: list[tuple[str, tuple[str, ...]]] = []
    eliminated: list[str] = []
    for var in meta.variables:
        if var.code not in selection or selection[var.code] is None:
            if not var.elimination:
                raise NonEliminableVariableError(meta.table_id, var.code)
            eliminated.append(var.code)
            continue
        items = _as_items(selection[var.code])
        if not items:
            raise InvalidSelectionError(
                meta.table_id, var.code, "", "no value selected (leave the variable out to eliminate it)"
            )
        chosen: set[int] = set()
        for item in items:
            hit = _resolve_item(meta.table_id, var, item)
            if not hit:
                raise InvalidSelectionError(meta.table_id, var.code, item, "matches no value")
            chosen.update(hit)
        selected.append((var.code, tuple(var.codes[i] for i in sorted(chosen))))
    return ResolvedSelection(meta.table_id, tuple(selected), tuple(eliminated))
