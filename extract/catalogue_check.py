"""``regionstat check-catalogue``: every catalogue selection checked against an API's table metadata, no data.

For each source: the table exists; every selected variable exists; every value code or expression matches a
code (for a ``{codelist: ID, values: ...}`` selection: the variable offers that codelist, and the values are
checked against the metadata with the codelist applied when the API serves it); every variable left out may be
eliminated. All mismatches are reported, each naming table, variable and code, so one run against SCB (``--live``)
or recorded metadata says everything that would fail before a single data request is spent.

A source whose table id is not a confirmed v2 id carries ``discover:`` (search words): ``discover_tables``
searches the API's table list (``GET /tables?query=``) and checks the source's selection against each candidate's
metadata, so the real id can be read off and set in one edit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from extract.pxweb import TableInfo
from extract.selection import TableMetadata, _as_items, _resolve_item
from regionstat.catalogue import Catalogue, RegionSet, Source
from regionstat.errors import PxWebError, TableNotFoundError

__all__ = ["Candidate", "Discovery", "Mismatch", "check_catalogue", "check_source", "discover_tables"]


@dataclass(frozen=True)
class Mismatch:
    source_name: str
    table_id: str
    variable: str | None
    code: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.table_id} ({self.source_name})"
        if self.variable:
            where += f" {self.variable}"
        if self.code is not None:
            where += f" {self.code!r}"
        return f"{where}: {self.message}"


def _offered_codelists(meta: TableMetadata, variable: str) -> list[str]:
    """Codelist ids the metadata lists for a variable (``dimension[VAR].extension.codelists[].id``)."""
    dim = (meta.raw.get("dimension") or {}).get(variable) or {}
    return [str(c.get("id")) for c in (dim.get("extension") or {}).get("codelists") or [] if c.get("id")]


def _check_values(source: Source, meta: TableMetadata, variable: str, spec: Any) -> list[Mismatch]:
    var = meta.variable(variable)
    out: list[Mismatch] = []
    try:
        items = _as_items(spec)
    except TypeError as exc:
        return [Mismatch(source.name, source.table, variable, None, str(exc))]
    if not items:
        out.append(Mismatch(source.name, source.table, variable, None, "no value selected"))
    for item in items:
        try:
            hit = _resolve_item(meta.table_id, var, item)
        except PxWebError as exc:
            out.append(Mismatch(source.name, source.table, variable, item, _short(exc, meta.table_id)))
            continue
        if not hit:
            out.append(Mismatch(source.name, source.table, variable, item, "matches no value"))
    return out


def _short(exc: Exception, table_id: str) -> str:
    """The error without the 'table X: variable Y:' prefix the Mismatch already shows."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    prefix = f"table {table_id}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def check_source(client: Any, source: Source, region_set: RegionSet) -> list[Mismatch]:
    """The mismatches of one source's selection against the API's metadata (no data request)."""
    selection = source.resolved_selection(region_set)
    codelists = source.codelists()
    try:
        meta = client.metadata(source.table)
    except TableNotFoundError:
        return [Mismatch(source.name, source.table, None, None, "no such table at this API")]
    except PxWebError as exc:
        return [Mismatch(source.name, source.table, None, None, _short(exc, source.table))]
    out: list[Mismatch] = []
    known = {v.code for v in meta.variables}
    for variable, spec in selection.items():
        if variable not in known:
            out.append(
                Mismatch(source.name, source.table, variable, None, f"no such variable (has: {', '.join(meta.codes)})")
            )
            continue
        target = meta
        codelist = codelists.get(variable)
        if codelist:
            offered = _offered_codelists(meta, variable)
            if codelist not in offered:
                out.append(
                    Mismatch(
                        source.name,
                        source.table,
                        variable,
                        None,
                        f"codelist {codelist!r} not offered (has: {', '.join(offered) or 'none'})",
                    )
                )
                continue
            try:
                target = client.metadata(source.table, codelists={variable: codelist})
            except PxWebError as exc:
                out.append(
                    Mismatch(
                        source.name,
                        source.table,
                        variable,
                        None,
                        f"codelist {codelist!r} is offered, but its values could not be read: "
                        + _short(exc, source.table),
                    )
                )
                continue
        out.extend(_check_values(source, target, variable, spec))
    for var in meta.variables:
        if var.code not in selection and not var.elimination:
            out.append(
                Mismatch(
                    source.name, source.table, var.code, None, "not selected, and SCB does not allow eliminating it"
                )
            )
    return out


def check_catalogue(client: Any, catalogue: Catalogue, region_set: RegionSet) -> list[Mismatch]:
    """Every source's mismatches, in catalogue order."""
    out: list[Mismatch] = []
    for source in catalogue.sources:
        out.extend(check_source(client, _as_served(client, source), region_set))
    return out


def _as_served(client: Any, source: Source) -> Source:
    """The source as the extract reads it: its ``offline_table`` when the API is regionstat's snapshot (its
    metadata carries ``extension.regionstat``; SCB's never does)."""
    if not source.offline_table:
        return source
    try:
        extension = client.metadata(source.table).raw.get("extension") or {}
    except PxWebError:
        return source  # reported by check_source
    return dataclasses.replace(source, table=source.offline_table) if "regionstat" in extension else source


def total_code(meta: TableMetadata, variable: str) -> str | None:
    """A variable's total: its ``eliminationValueCode``, else its only code labelled 'total…'/'totalt…'."""
    var = meta.variable(variable)
    if var.elimination_value_code and var.position(var.elimination_value_code) is not None:
        return var.elimination_value_code
    totals = [c for c, label in zip(var.codes, var.labels, strict=True) if label.lower().startswith("total")]
    return totals[0] if len(totals) == 1 else None


def elimination_notes(client: Any, catalogue: Catalogue, region_set: RegionSet) -> list[str]:
    """Variables a selection leaves to elimination although the table has a total code to select instead."""
    out: list[str] = []
    for source in (_as_served(client, s) for s in catalogue.sources):
        try:
            meta = client.metadata(source.table)
        except PxWebError:
            continue  # reported as a mismatch
        selection = source.resolved_selection(region_set)
        for var in meta.variables:
            code = None if var.code in selection else total_code(meta, var.code)
            if code is not None:
                out.append(
                    f"{source.table} ({source.name}) {var.code}: eliminated, but the table has the total {code!r} "
                    "to select explicitly"
                )
    return out


@dataclass(frozen=True)
class Candidate:
    """One table the API's search found, and per catalogue source the mismatches of its selection there."""

    info: TableInfo
    mismatches: dict[str, list[Mismatch]]

    @property
    def fits(self) -> list[str]:
        """The sources whose whole selection this table accepts."""
        return [name for name, found in self.mismatches.items() if not found]

    def __str__(self) -> str:
        periods = f"{self.info.first_period or '?'}-{self.info.last_period or '?'}"
        text = f"{self.info.id}: {self.info.label} ({periods}; variables: {', '.join(self.info.variable_names)})"
        verdicts = [_verdict(name, found) for name, found in self.mismatches.items()]
        return "; ".join([text, *verdicts])


def _verdict(source_name: str, mismatches: list[Mismatch]) -> str:
    """'fits NAME', or 'not NAME (the first mismatch, without the table already named)'."""
    if not mismatches:
        return f"fits {source_name}"
    first = mismatches[0]
    where = " ".join(part for part in (first.variable, repr(first.code) if first.code is not None else None) if part)
    more = f", {len(mismatches) - 1} more" if len(mismatches) > 1 else ""
    return f"not {source_name} ({where + ': ' if where else ''}{first.message}{more})"


@dataclass(frozen=True)
class Discovery:
    """The candidates for one unconfirmed table id, found with its sources' ``discover`` words."""

    table_id: str
    sources: tuple[str, ...]
    query: str
    candidates: tuple[Candidate, ...]
    found: int  # how many tables the API's search found (more than the candidates listed when it is large)
    error: str | None = None  # the search failed (an API without ``/tables?query=``): why

    def lines(self) -> list[str]:
        """The discovery as printed by ``regionstat check-catalogue``: a heading, then one line per candidate."""
        head = f"{self.table_id} ({', '.join(self.sources)}) is not a confirmed v2 id; GET /tables?query={self.query}"
        if self.error:
            return [f"{head} failed: {self.error}"]
        shown = f"{len(self.candidates)} of {self.found}" if self.found > len(self.candidates) else str(self.found)
        out = [f"{head}: {shown} table(s)"]
        out += [f"  {c}" for c in self.candidates]
        if self.candidates:
            out.append(
                f"  set the right id as `table:` of {', '.join(self.sources)} (and `source_table:` of their series) "
                "in the catalogue, drop `discover`/`verify_live`, run `regionstat generate`"
            )
        return out


def discover_tables(client: Any, catalogue: Catalogue, region_set: RegionSet, *, limit: int = 10) -> list[Discovery]:
    """Per unconfirmed table id (sources with ``discover``): the API's search results for the sources' words, each
    checked against every such source's selection (metadata requests only; one search per distinct query)."""
    groups: dict[tuple[str, str], list[Source]] = {}
    for source in catalogue.sources:
        if source.discover:
            groups.setdefault((source.table, source.discover), []).append(source)
    out: list[Discovery] = []
    for (table_id, query), sources in groups.items():
        names = tuple(s.name for s in sources)
        try:
            found, total = client.search_tables(query, limit=limit)
        except PxWebError as exc:
            out.append(Discovery(table_id, names, query, (), 0, error=_short(exc, table_id)))
            continue
        candidates = tuple(
            Candidate(
                info,
                {s.name: check_source(client, dataclasses.replace(s, table=info.id), region_set) for s in sources},
            )
            for info in found
        )
        out.append(Discovery(table_id, names, query, candidates, total))
    return out
