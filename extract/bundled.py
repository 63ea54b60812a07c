"""Real files bundled with the offline snapshot, dropped into the inbox as a municipality would drop them.

The offline demo (``make demo``) and ``regionstat inbox --bundled`` copy these files from ``reference/data/``
(byte copies with their provenance READMEs; one copy in the repository, none under tools/snapshot) into
``<data_dir>/inbox/commuting/``. The inbox DAG, or ``regionstat run``, then loads them like any dropped file:
real sector and commuting figures without the live API.

Adding a file is one line in :data:`BUNDLED_INBOX_FILES`; it must match exactly one catalogue ``files:`` pattern
(tests/test_inbox_shapes.py checks that). A file that carries no date of its own (CSV) also gets a line in
:data:`BUNDLED_VINTAGES`: the upstream vintage its provenance README states, or None where it states none
(tests/test_px_vintage.py checks that every such file has one).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from extract.files import copy_regular_file, file_sha256, matching_entries
from extract.pipeline import processed_file_hashes
from regionstat.catalogue import load_catalogue
from regionstat.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class DeclaredVintage:
    """A bundled file's upstream vintage as its provenance states it, and where it says so."""

    updated: str  # ISO-8601 UTC, e.g. "2023-05-25T00:00:00Z"
    source: str  # e.g. "reference/data/x/README.md: table `updated` 2023-05-25"


#: Repository paths of the bundled inbox files. Every one holds real published numbers (see its README).
BUNDLED_INBOX_FILES: tuple[str, ...] = (
    "reference/data/linkoping_kommun_px/FO05.px",  # Linköping day population by district x SNI, 2008-2024
    "reference/data/linkoping_kommun_px/PE12.px",  # Linköping in/out-commuting by district, 1994-2024
    "reference/data/county_rams_2018/AM0207I5_20230705-155636.csv",  # RAMS 2018 by county of residence (night)
    "reference/data/county_rams_2018/AM0207I6_20230706-115023.csv",  # RAMS 2018 by county of work (day)
    "reference/data/county_rams_2018/AM0207AC_20230705-141955.csv",  # county commuting matrix 21 x 21, 2018
    "reference/data/commuting_od_fixtures/norrbotten_ArRegPend2_2024_totalt.csv",  # Norrbotten OD 14 x 14, 2024
    "reference/data/linkoping_kommun_px/ksi2242.px",  # Linköping's KS indicators, quarterly 2010-2025
)


#: Upstream vintage (``updated``, ISO-8601 UTC) of the bundled files that carry no date of their own, as their
#: provenance (reference/data/README.md and the folder READMEs) states it, with where it says so; None where it
#: states none: the rows then say "vintage unknown" rather than carry an invented date. PX files date themselves
#: (``LAST-UPDATED``, extract/px.py) and are not listed. Looked up by the file's bytes (SHA-256), so a user's own
#: file of the same name or pattern never inherits a bundled file's vintage.
BUNDLED_VINTAGES: dict[str, DeclaredVintage | None] = {
    # PxWeb CSV exports: the time in the file name (2023-07-05/06) is when they were exported, not SCB's `updated`
    "reference/data/county_rams_2018/AM0207I5_20230705-155636.csv": None,
    "reference/data/county_rams_2018/AM0207I6_20230706-115023.csv": None,
    "reference/data/county_rams_2018/AM0207AC_20230705-141955.csv": None,
    # the source repository's data/meta.json names the table (ArRegPend2) but no date
    "reference/data/commuting_od_fixtures/norrbotten_ArRegPend2_2024_totalt.csv": None,
}


@dataclass(frozen=True)
class Dropped:
    """What happened to one bundled file: ``dropped`` into the inbox, else ``in_inbox`` or ``processed``."""

    name: str
    outcome: str


def bundled_paths(root: Path = PROJECT_ROOT) -> list[Path]:
    return [root / p for p in BUNDLED_INBOX_FILES]


def drop_bundled(settings: Settings, root: Path = PROJECT_ROOT) -> list[Dropped]:
    """Copy every bundled file into the inbox unless the same bytes are there or were landed/quarantined before.

    Idempotent: a file whose bytes were processed once (its SHA-256 in a landing or quarantine manifest of its
    catalogue entry) is not dropped again, so a second demo loads nothing new, even after the inbox was emptied.
    """
    entries = list(load_catalogue().files)
    inbox = settings.inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    out: list[Dropped] = []
    for source in bundled_paths(root):
        target = inbox / source.name
        digest = file_sha256(source)
        if target.is_file() and not target.is_symlink() and file_sha256(target) == digest:
            out.append(Dropped(source.name, "in_inbox"))
            continue
        if any(
            digest in processed_file_hashes(settings, e.raw_table, e.name)
            for e in matching_entries(source.name, entries)
        ):
            out.append(Dropped(source.name, "processed"))
            continue
        copy_regular_file(source, target)
        out.append(Dropped(source.name, "dropped"))
    return out


@cache
def _declared_by_digest(root: Path = PROJECT_ROOT) -> dict[str, DeclaredVintage]:
    return {file_sha256(root / path): v for path, v in BUNDLED_VINTAGES.items() if v is not None}


def declared_vintage(digest: str, root: Path = PROJECT_ROOT) -> DeclaredVintage | None:
    """The vintage :data:`BUNDLED_VINTAGES` declares for the bundled file with these bytes; None for any other file."""
    if not any(BUNDLED_VINTAGES.values()):  # nothing declared: no need to hash the bundled files
        return None
    return _declared_by_digest(root).get(digest)
