"""What the report reads: the marts (through ``.sql`` files beside this module), the load ledger, and from the dbt
project its vars (the focus county, "top n" and "minutes" rules) and its source documentation (labels and which raw
tables are synthetic offline). Nothing here restates a fact the catalogue, dbt or the data already holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from regionstat.catalogue import load_regions
from regionstat.settings import PROJECT_ROOT, Settings
from warehouse.db import connect_reader
from warehouse.provenance import (
    PROVENANCE_COLUMNS,
    SYNTHETIC_FALSE,
    SYNTHETIC_PARTIAL,
    SourceVintage,
    combine,
    dbt_manifest_path,
    from_lineage,
    landing_updated,
    read_model_docs,
    source_vintages,
)
from warehouse.report.model import Provenance

log = logging.getLogger(__name__)

MART_SCHEMA = "marts"
SQL_DIR = Path(__file__).resolve().parent / "sql"
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"

_SQL = Environment(loader=FileSystemLoader(str(SQL_DIR)), undefined=StrictUndefined, keep_trailing_newline=True)


class Unavailable(Exception):
    """A block cannot be shown; the message says why (shown as "not available: <message>")."""


@cache
def dbt_vars() -> dict[str, Any]:
    """The dbt project's vars (``dbt_project.yml``): the analysis settings the marts were built with."""
    data = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8")) or {}
    return dict(data.get("vars") or {})


@dataclass(frozen=True)
class RawSource:
    """A dbt source table (a ``raw`` table) as its YAML documents it."""

    name: str
    source: str
    source_tables: tuple[str, ...] = ()
    synthetic_offline: bool = False

    @property
    def label(self) -> str:
        """``SCB TAB638/TAB5557``, or ``municipal files`` for sources without SCB table ids."""
        if self.source_tables:
            return f"{self.source.upper()} {'/'.join(self.source_tables)}"
        return f"{self.source} files"


def _source_nodes(settings: Settings) -> list[dict[str, Any]]:
    """Source table nodes from dbt's manifest, else from the sources YAML the manifest is compiled from."""
    path = dbt_manifest_path(settings)
    if path is not None:
        try:
            return list(json.loads(path.read_text(encoding="utf-8")).get("sources", {}).values())
        except (OSError, ValueError) as exc:
            log.info("report: cannot read dbt manifest %s: %s", path, exc)
    nodes = []
    for yml in sorted((DBT_PROJECT_DIR / "models").glob("**/*.yml")):
        for src in (yaml.safe_load(yml.read_text(encoding="utf-8")) or {}).get("sources", []):
            nodes += [{**t, "source_name": src["name"]} for t in src.get("tables", [])]
    return nodes


def raw_sources(settings: Settings) -> dict[str, RawSource]:
    """raw table -> its dbt source documentation."""
    out = {}
    for node in _source_nodes(settings):
        meta = node.get("meta") or (node.get("config") or {}).get("meta") or {}
        name = str(node.get("identifier") or node["name"])
        out[name] = RawSource(
            name=name,
            source=str(node.get("source_name", "")),
            source_tables=tuple(str(t) for t in meta.get("source_tables") or ()),
            synthetic_offline=bool(meta.get("synthetic_offline", False)),
        )
    return out


def region_set_counties(settings: Settings) -> tuple[str, ...]:
    """The counties of the run's region set, in code order (none when the catalogue cannot say)."""
    from regionstat.catalogue import load_catalogue
    from regionstat.errors import RegionstatError

    try:
        return tuple(sorted(load_catalogue().region_set(settings.region_set).counties))
    except RegionstatError as exc:
        log.warning("report: region set %r: %s", settings.region_set, exc)
        return ()


def _load_region_names() -> dict[str, str]:
    """SCB's region names from the catalogue's one regions reference."""
    return {r.code: r.name for r in load_regions()}


def _any(flags: pd.Series) -> bool:
    """``is_synthetic`` of any row (null counts as false)."""
    return bool(flags.fillna(False).astype(bool).any())


class Warehouse:
    """What the report needs from the warehouse: the marts, the load ledger and the dbt lineage."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.con: duckdb.DuckDBPyConnection | None = None
        self.error: str | None = None
        self.tables: set[str] = set()
        self.loads = pd.DataFrame()
        self.raw_synthetic: dict[str, bool] = {}
        self.lineage: dict[str, set[str]] = {}
        self.columns: dict[str, set[str]] = {}  # mart -> its columns
        #: raw table -> the source tables live in it, with their upstream `updated` and synthetic flag
        self.vintages: dict[str, list[SourceVintage]] = {}
        self.munis: dict[str, dict[str, Any]] = {}
        self.sources = raw_sources(settings)
        #: dbt_project.yml's vars under this run's own (regionstat.config): the ones the marts were built with
        self.vars = {**dbt_vars(), **settings.dbt_vars}
        #: the counties of the region set, one report section group each; ``county`` is the one being rendered
        self.counties = region_set_counties(settings)
        self.county = self.counties[0] if self.counties else str(self.vars.get("county_code", ""))
        self._names = _load_region_names()
        try:
            self.con = connect_reader(settings)
        except Exception as exc:
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("report: warehouse not readable: %s", self.error)
            return
        self._list_marts()
        self._read_ledger()
        self._read_lineage()
        self._read_municipalities()

    def close(self) -> None:
        if self.con is not None:
            self.con.close()

    def _list_marts(self) -> None:
        assert self.con is not None
        try:
            for table, column in self.con.execute(
                "select table_name, column_name from information_schema.columns where table_schema = ?", [MART_SCHEMA]
            ).fetchall():
                self.tables.add(table)
                self.columns.setdefault(table, set()).add(column)
        except Exception as exc:
            log.warning("report: cannot list marts: %s", exc)

    # -- marts ------------------------------------------------------------------------------------------------
    def read(self, mart: str, query: str, **params: object) -> pd.DataFrame:
        """Run ``sql/<query>.sql`` against ``marts.<mart>`` with ``$county`` and ``params`` bound.
        ``{{ prov }}`` in a select list becomes the mart's provenance columns (``, is_synthetic, source_tables,
        ...``, those it has), so each block can show the flag and vintage of exactly the rows it displays.
        Raises ``Unavailable`` when the mart is missing or the query returns no rows."""
        if self.con is None or mart not in self.tables:
            have = ", ".join(sorted(self.tables)) or "none"
            raise Unavailable(
                self.error or f"mart {MART_SCHEMA}.{mart} not found in the warehouse (marts present: {have})"
            )
        prov = "".join(f", {c}" for c in PROVENANCE_COLUMNS if c in self.columns.get(mart, ()))
        sql = _SQL.get_template(f"{query}.sql").render(prov=prov)
        df = self.con.execute(sql, {"county": self.county, **params}).df()
        if df.empty:
            raise Unavailable(f"{MART_SCHEMA}.{mart} has no rows for county {self.county}")
        return df

    def seed(self, name: str, order_by: Sequence[str]) -> pd.DataFrame:
        """A dbt seed from schema ``seeds``, or from its CSV in the dbt project when the warehouse has none."""
        try:
            assert self.con is not None
            return self.con.execute(f'select * from seeds."{name}" order by {", ".join(order_by)}').df()
        except Exception:
            path = SEEDS_DIR / f"{name}.csv"
            return pd.read_csv(path).sort_values(list(order_by), kind="stable") if path.exists() else pd.DataFrame()

    def name_of(self, code: str) -> str:
        return self._names.get(str(code), str(code))

    def muni_info(self, code: str) -> dict[str, Any]:
        return self.munis.get(str(code), {})

    def in_study_area(self, code: str) -> bool:
        flag = self.muni_info(code).get("is_study_area")
        return bool(flag) if pd.notna(flag) else False

    def _read_municipalities(self) -> None:
        """Municipality facts (names, study area, travel time to K1) from dim_municipalities."""
        if "dim_municipalities" not in self.tables or self.con is None:
            return
        try:
            dim = self.con.execute(
                f"select municipality_code, municipality_name, is_study_area, minutes_by_car_to_k1 "
                f"from {MART_SCHEMA}.dim_municipalities order by municipality_code"
            ).df()
        except Exception as exc:
            log.info("report: cannot read dim_municipalities: %s", exc)
            return
        for rec in dim.to_dict("records"):
            self.munis[rec["municipality_code"]] = rec
            if rec["municipality_name"]:
                self._names[rec["municipality_code"]] = rec["municipality_name"]

    def county_short_name(self) -> str:
        """``Östergötland`` from SCB's ``Östergötlands län``: the county's name without "län" and the genitive s."""
        name = self.name_of(self.county)
        short = name.removesuffix(" län")
        return short.removesuffix("s") if short != name and name.endswith("s län") else short

    def counties_short_names(self) -> str:
        """``Jönköping and Örebro``: the short names of the region set's counties."""
        saved = self.county
        try:
            names = []
            for code in self.counties or (self.county,):
                self.county = code
                names.append(self.county_short_name())
        finally:
            self.county = saved
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    def region_label(self) -> str:
        """``Östergötlands län (county 05, 13 municipalities) with Sweden (00) as reference``, from the data
        (municipalities from dim_municipalities; SCB's regions list when that mart was not built)."""
        labels = []
        for county in self.counties or (self.county,):
            county_munis = [c for c in self.munis if c.startswith(county)] or [
                r.code for r in load_regions() if r.level == "municipality" and r.county_code == county
            ]
            labels.append(f"{self.name_of(county)} (county {county}, {len(county_munis)} municipalities)")
        label = ", ".join(labels)
        ref = str(self.vars.get("reference_region", ""))
        return f"{label} with {self.name_of(ref)} ({ref}) as reference" if ref else label

    def _read_ledger(self) -> None:
        assert self.con is not None
        try:
            self.loads = self.con.execute(
                "select source_name, raw_table, table_id, synthetic, loaded_at, load_id from ops.loads "
                "where status = 'loaded' qualify row_number() over (partition by source_name "
                "order by loaded_at desc, load_id desc) = 1 order by raw_table, source_name"
            ).df()
        except Exception as exc:
            log.info("report: no load ledger (%s)", str(exc).splitlines()[0])
            self.loads = pd.DataFrame(
                columns=["source_name", "raw_table", "table_id", "synthetic", "loaded_at", "load_id"]
            )
        self._read_vintages()
        for raw_table, grp in self.loads.groupby("raw_table", sort=True):
            if grp["synthetic"].notna().any():
                self.raw_synthetic[str(raw_table)] = _any(grp["synthetic"])
        try:
            raw_tables = [
                r[0]
                for r in self.con.execute(
                    "select distinct table_name from information_schema.columns where table_schema = 'raw' "
                    "and column_name = '_synthetic' order by 1"
                ).fetchall()
            ]
        except Exception:
            raw_tables = []
        for t in raw_tables:
            if t in self.raw_synthetic:
                continue
            try:
                row = self.con.execute(f'select bool_or(_synthetic) from raw."{t}"').fetchone()
                flag = row[0] if row else None
            except Exception:
                continue
            if flag is not None:
                self.raw_synthetic[t] = bool(flag)

    def _read_vintages(self) -> None:
        """Source tables per raw table with their upstream ``updated``: from the raw lineage columns, else (a
        warehouse without them) from the ledger and the landing manifests of its loads."""
        if self.con is not None:
            try:
                self.vintages = source_vintages(self.con, self.settings)
            except Exception as exc:
                log.info("report: cannot read raw lineage columns: %s", str(exc).splitlines()[0])
        for raw_table, grp in self.loads.groupby("raw_table", sort=True):
            if self.vintages.get(str(raw_table)):
                continue
            found = {}
            for r in grp.itertuples(index=False):
                if pd.isna(r.table_id):
                    continue
                updated = landing_updated(self.settings, str(raw_table), str(r.source_name), str(r.load_id))
                found[str(r.table_id)] = SourceVintage(
                    str(raw_table), str(r.table_id), updated, bool(r.synthetic) if pd.notna(r.synthetic) else False
                )
            self.vintages[str(raw_table)] = [found[k] for k in sorted(found)]

    def _read_lineage(self) -> None:
        """model name -> raw tables it depends on, from dbt's manifest (when a build has written one)."""
        self.lineage = {name: doc.raw_tables for name, doc in read_model_docs(self.settings).items()}

    # -- provenance -------------------------------------------------------------------------------------------
    def raw_tables_of(self, mart: str, default: Sequence[str]) -> list[str]:
        if self.lineage.get(mart):
            return sorted(self.lineage[mart])
        return list(default)

    def offline_synthetic(self) -> list[str]:
        """Raw tables made up in the offline snapshot (the sources' ``meta.synthetic_offline``)."""
        return sorted(t for t, s in self.sources.items() if s.synthetic_offline)

    def synthetic_inputs(self, raw_tables: Sequence[str]) -> list[str]:
        out = []
        for t in raw_tables:
            flag = self.raw_synthetic.get(t)
            if flag is None:
                flag = self.settings.offline and t in self.offline_synthetic() and not self.raw_synthetic
            if flag:
                out.append(t)
        return out

    def raw_table_of(self, table_id: str) -> str | None:
        return next((raw for raw, vs in self.vintages.items() for v in vs if v.table_id == table_id), None)

    def source_label(self, raw_tables: Sequence[str], table_ids: Sequence[str] = ()) -> str:
        """``TAB5557 + TAB638 (population); ...``: the source tables behind a block, grouped by raw table."""
        if table_ids:
            groups: dict[str, list[str]] = {}
            for t in table_ids:
                groups.setdefault(self.raw_table_of(t) or "", []).append(t)
            return "; ".join(f"{' + '.join(ids)} ({raw})" if raw else " + ".join(ids) for raw, ids in groups.items())
        return "; ".join(f"{self.sources[t].label if t in self.sources else t} ({t})" for t in raw_tables)

    def updated_of(self, table_ids: Sequence[str] = ()) -> dict[str, str]:
        """table id -> upstream ``updated`` of the live batch (all known source tables when none are named)."""
        known = {v.table_id: v.updated for vs in self.vintages.values() for v in vs if v.updated}
        return {t: known[t] for t in (table_ids or sorted(known)) if t in known}

    # -- provenance of a block --------------------------------------------------------------------------------
    def provenance(self, mart: str, rows: pd.DataFrame, default_raw: Sequence[str]) -> Provenance:
        """Source line, upstream vintage and synthetic flags of a block, from the mart's provenance columns over
        the rows it shows (selected with ``{{ prov }}``). Whatever the mart lacks comes from dbt's lineage: the
        raw tables it is built from (``default_raw`` when no manifest says) and the batches live in them."""
        raw = self.raw_tables_of(mart, default_raw)
        syn_raw = self.synthetic_inputs(raw)  # raw tables, with the offline fallback when nothing is recorded

        def column(name: str) -> list[Any] | None:
            return list(rows[name]) if name in rows.columns else None

        has_flags = "is_synthetic" in rows.columns
        syn_rows = int(rows["is_synthetic"].fillna(False).astype(bool).sum()) if has_flags else None
        prov = combine(
            rows=len(rows),
            synthetic_rows=syn_rows,
            source_tables=column("source_tables"),
            source_updated=column("source_updated"),
            synthetic_inputs=column("synthetic_inputs"),
            lineage=from_lineage(raw, self.vintages),
        )
        # without row flags, the synthetic raw tables the mart is built from decide
        synthetic = bool(syn_raw) if syn_rows is None else prov.synthetic != SYNTHETIC_FALSE
        if "synthetic_inputs" in rows.columns and "source_tables" in rows.columns:
            syn_ids = set(prov.synthetic_inputs)
            built_in_part = synthetic and bool(syn_ids) and syn_ids < set(prov.source_tables)
            inputs = ", ".join(
                f"raw.{self.raw_table_of(t)} ({t})" if self.raw_table_of(t) else t for t in prov.synthetic_inputs
            )
        else:
            built_in_part = bool(synthetic and syn_raw and len(syn_raw) < len(raw))
            inputs = ", ".join(f"raw.{t}" for t in syn_raw)
        partly = prov.synthetic == SYNTHETIC_PARTIAL or built_in_part
        if prov.synthetic == SYNTHETIC_PARTIAL:
            note = f"partly synthetic: {syn_rows} of {len(rows)} rows shown derive from synthetic inputs: {inputs}"
        elif partly:
            note = "partly synthetic: built in part from " + inputs
        elif synthetic:
            note = "synthetic data (offline snapshot), not SCB figures"
        else:
            note = ""
        known = (prov.source_updated or self.updated_of(prov.source_tables)) if prov.source_tables else {}
        updated = {t: known.get(t, "") for t in prov.source_tables}  # "": vintage unknown, shown as such
        return Provenance(
            source=f"{MART_SCHEMA}.{mart} ← {self.source_label(raw, prov.source_tables)}",
            synthetic=synthetic,
            synthetic_note=note,
            partly_synthetic=partly,
            updated=updated,
        )
