"""Section 2, sectors: the largest SNI 2007 sector groups per municipality (one collapsible table each)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from warehouse.report.access import Warehouse
from warehouse.report.format import is_missing
from warehouse.report.model import Block


@dataclass(frozen=True)
class SectorRow:
    rank: int
    code: str
    name: str
    employed: object
    share: object
    bar_pct: float  # bar width: the share relative to the region's largest share
    rank_change: object


@dataclass(frozen=True)
class RegionSectors:
    code: str
    name: str
    rows: list[SectorRow]
    synthetic: bool = False  # any row of the region derives from a synthetic input

    @property
    def top(self) -> SectorRow:
        return self.rows[0]


@dataclass(frozen=True)
class TopSectorsView:
    rank_change_header: str
    regions: list[RegionSectors]


def _region(wh: Warehouse, code: str, sub: pd.DataFrame) -> RegionSectors:
    max_share = float(sub["share"].max()) if sub["share"].notna().any() else 0.0
    rows = [
        SectorRow(
            rank=int(r.sector_rank),
            code=str(r.sni_group_code),
            name=str(r.sni_group_name_en),
            employed=r.employed,
            share=r.share,
            bar_pct=0.0 if is_missing(r.share) or max_share <= 0 else 100.0 * float(r.share) / max_share,
            rank_change=r.rank_change,
        )
        for r in sub.itertuples(index=False)
    ]
    synthetic = bool(sub["is_synthetic"].fillna(False).astype(bool).any()) if "is_synthetic" in sub else False
    return RegionSectors(code=code, name=wh.name_of(code), rows=rows, synthetic=synthetic)


def top_sectors(wh: Warehouse) -> Block:
    """The mart holds one basis (var employment_basis); regions with real figures first, each badged."""
    mart = "mart_top_sectors"
    df = wh.read(mart, "top_sectors")
    comparison = df["comparison_year"].dropna()
    header = f"Rank change since {int(comparison.max())}" if len(comparison) else "Rank change"
    regions = [_region(wh, str(code), sub) for code, sub in df.groupby("region_code", sort=False)]
    return Block(
        title="",
        view=TopSectorsView(rank_change_header=header, regions=regions),
        macro="top_sectors",
        prov=wh.provenance(mart, df, ["employment_by_sector"]),
        vintage=str(int(df["year"].max())),
        intro=f"The {wh.vars.get('top_sectors_n')} largest SNI 2007 sector groups by employment in each municipality "
        "(click a municipality to open it). The bar shows the share of the municipality's employment. Regions "
        "with real figures (e.g. Linköping from the municipality's FO05 file) come first; a region built from "
        "synthetic inputs is marked SYNTHETIC.",
    )
