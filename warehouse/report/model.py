"""The report's structure: sections of blocks; each block carries a section view model and its provenance.

A block's ``view`` is the typed view model its section module returns; ``macro`` names the Jinja macro in
``templates/macros.html.j2`` that renders it, so markup lives in templates only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: What the report says for a source table whose upstream ``updated`` is not known (a file that states no date).
VINTAGE_UNKNOWN = "vintage unknown"


def format_updated(updated: dict[str, str]) -> str:
    """``TAB638 2025-02-21, AM0207I6 vintage unknown``: upstream ``updated`` dates per source table, for reading
    (an empty date is an unknown vintage, said rather than left out)."""
    return ", ".join(f"{t} {u[:10] or VINTAGE_UNKNOWN}" for t, u in updated.items())


@dataclass(frozen=True)
class Provenance:
    """Where the rows a block shows come from and whether they are made up."""

    source: str = ""
    synthetic: bool = False
    synthetic_note: str = ""
    partly_synthetic: bool = False
    #: source table id -> upstream `updated` (ISO-8601 UTC) of the rows shown, in source-table order; "" when the
    #: table's vintage is unknown (an inbox file without a date of its own)
    updated: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Column:
    """A table column: the row field it shows, its header and how its values are formatted (``format.FORMATS``)."""

    key: str
    header: str
    kind: str = "text"

    @property
    def numeric(self) -> bool:
        return self.kind != "text"


@dataclass(frozen=True)
class Table:
    """A plain data table for the ``table`` macro: rows are mappings from column key to value."""

    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]
    compact: bool = True


@dataclass
class Block:
    """One figure or table of a section (the view model of a section module, with title and provenance)."""

    title: str
    view: Any = None
    macro: str = ""
    prov: Provenance = field(default_factory=Provenance)
    vintage: str = ""
    intro: str = ""
    domain: str = ""
    unavailable: str | None = None

    @property
    def source(self) -> str:
        return self.prov.source

    @property
    def synthetic(self) -> bool:
        return self.prov.synthetic

    @property
    def partly_synthetic(self) -> bool:
        return self.prov.partly_synthetic

    @property
    def synthetic_note(self) -> str:
        return self.prov.synthetic_note

    @property
    def updated(self) -> dict[str, str]:
        return self.prov.updated

    @property
    def updated_text(self) -> str:
        return format_updated(self.prov.updated)


@dataclass
class Section:
    id: str
    title: str
    intro: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def synthetic(self) -> bool:
        return any(b.synthetic for b in self.blocks)

    @property
    def partly_synthetic(self) -> bool:
        """Some, not all, of the section's data is synthetic (a real block next to a synthetic one, or a block
        built partly from synthetic inputs)."""
        shown = [b for b in self.blocks if b.unavailable is None]
        return self.synthetic and (
            any(not b.synthetic for b in shown) or all(b.partly_synthetic for b in shown if b.synthetic)
        )

    @property
    def available(self) -> bool:
        return any(b.unavailable is None for b in self.blocks)
