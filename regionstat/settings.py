"""Runtime settings, read from the environment once, passed explicitly everywhere else."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LIVE_API_URL = "https://statistikdatabasen.scb.se/api/v2"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: HTTP limits an operator can set without editing the catalogue (which holds the defaults, see ``http:``)
HTTP_ENV = {
    "request_deadline_seconds": "REGIONSTAT_REQUEST_DEADLINE_SECONDS",
    "max_attempts": "REGIONSTAT_MAX_ATTEMPTS",
    "table_retry_budget": "REGIONSTAT_TABLE_RETRY_BUDGET",
}


def _http_from_env() -> dict[str, float]:
    from regionstat.errors import RegionstatError

    out: dict[str, float] = {}
    for key, var in HTTP_ENV.items():
        text = os.environ.get(var, "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if value <= 0 or (key != "request_deadline_seconds" and not value.is_integer()):
            raise RegionstatError(f"{var}={text!r}: expected a positive {'number' if 'seconds' in key else 'integer'}")
        out[key] = value
    return out


@dataclass(frozen=True)
class Settings:
    """Where data lives and which API to talk to.

    ``api_url`` is None for the embedded offline snapshot (the default); live SCB only when asked for.
    """

    data_dir: Path = field(default_factory=lambda: Path("data").resolve())
    api_url: str | None = None
    region_set: str = "ostergotland"
    #: overrides of the catalogue's ``http:`` limits (keys of ``HTTP_ENV``), from the environment
    http: dict[str, float] = field(default_factory=dict, compare=False)
    #: dbt vars of this run over dbt_project.yml's (``regionstat.config``: --var, --period, override seeds)
    dbt_vars: dict[str, Any] = field(default_factory=dict, compare=False)

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
            http=_http_from_env(),
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
