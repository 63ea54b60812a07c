"""Runtime settings, read from the environment once, passed explicitly everywhere else."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

LIVE_API_URL = "https://statistikdatabasen.scb.se/api/v2"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Where data lives and which API to talk to.

    ``api_url`` is None for the embedded offline snapshot (the default); live SCB only when asked for.
    """

    data_dir: Path = field(default_factory=lambda: Path("data").resolve())
    api_url: str | None = None
    region_set: str = "ostergotland"

    @classmethod
    def from_env(
        cls,
        *,
        live: bool = False,
        api_url: str | None = None,
        region_set: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> Settings:
        env_url = os.environ.get("REGIONSTAT_API_URL") or None
        url = api_url or (LIVE_API_URL if live else env_url)
        if url == "live":
            url = LIVE_API_URL
        return cls(
            data_dir=Path(data_dir or os.environ.get("REGIONSTAT_DATA_DIR") or "data").resolve(),
            api_url=url.rstrip("/") if url else None,
            region_set=region_set or os.environ.get("REGIONSTAT_REGION_SET") or "ostergotland",
        )

    @property
    def offline(self) -> bool:
        return self.api_url is None

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def inbox_dir(self) -> Path:
        return self.data_dir / "inbox" / "commuting"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def marts_dir(self) -> Path:
        return self.data_dir / "marts"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def docs_dir(self) -> Path:
        return self.data_dir / "docs"

    @property
    def state_dir(self) -> Path:
        return self.data_dir / ".state"
