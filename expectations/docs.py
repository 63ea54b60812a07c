"""GX Data Docs under ``<data_dir>/docs/gx/``, rendered so that they work offline.

Validation stores every GX result as JSON in ``docs/gx/_store/results/<suite>/<load_id>.json`` (quarantined
batches included). Building loads them and the catalogue's suites into a throw-away ephemeral context whose
one Data Docs site writes to ``docs/gx``, then makes the HTML self-contained:

GX's templates pull Bootstrap 4, bootstrap-table, jQuery, popper, Font Awesome, vega and a logo from CDNs
(cdn.jsdelivr.net, cdnjs, maxcdn/stackpath.bootstrapcdn, unpkg, code.jquery.com, S3). None of those ship in an
installed Python package here, so every such ``<link>``/``<script>`` is replaced by two local files shipped in
``expectations/static/``: ``offline.css`` (the Bootstrap subset the pages use, icon glyphs) and ``offline.js``
(a tiny ``$`` covering what the pages call: tabs, collapse, and rendering the index tables from their inline
data). The logo points at GX's own ``static/images/logo-long.png``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from expectations.gxcore import gx
from expectations.suites import all_suites

STATIC = Path(__file__).resolve().parent / "static"
SITE = "regionstat"
_LINK_RE = re.compile(r"<link\b[^>]*href=\"https?://[^\"]*\"[^>]*>\s*", re.I)
_SCRIPT_RE = re.compile(r"<script\b[^>]*src=\"https?://[^\"]*\"[^>]*>\s*</script>\s*", re.I)
_LOGO_RE = re.compile(r"src=\"https://great-expectations-web-assets[^\"]*logo-long\.png[^\"]*\"", re.I)


def build(settings: Any) -> Path:
    g = gx()
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    site_dir = Path(settings.docs_dir) / "gx"
    store = site_dir / "_store"
    site_dir.mkdir(parents=True, exist_ok=True)
    for old in ("index.html", "validations", "expectations", "static"):
        p = site_dir / old
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()

    ctx = g.get_context(mode="ephemeral")
    ctx.add_data_docs_site(
        site_name=SITE,
        site_config={
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "show_cta_footer": False},
        },
    )
    for suite in all_suites():
        ctx.suites.add(suite)
    results_dir = store / "results"
    for path in sorted(results_dir.glob("*/*.json")) if results_dir.exists() else []:
        data = json.loads(path.read_text(encoding="utf-8"))
        suite_name, load_id = path.parent.name, path.stem
        meta = data.setdefault("meta", {})
        run_id = RunIdentifier(run_name=load_id, run_time=meta.get("batch_markers", {}).get("ge_load_time"))
        _name_run_and_asset(meta, run_id)
        result = ExpectationSuiteValidationResult(**data)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=run_id,
            batch_identifier=suite_name.rsplit(".", 1)[-1],
        )
        ctx.validation_results_store.set(key, result)
    ctx.build_data_docs(site_names=[SITE])
    make_offline(site_dir)
    return site_dir / "index.html"


def _name_run_and_asset(meta: dict[str, Any], run_id: Any) -> None:
    """Give GX's page renderer the run and asset it looks for: a result validated on a batch (not through a
    checkpoint) has no ``run_id`` (pages said ``__none__``), and a fluent batch's ``batch_spec`` has no
    ``data_asset_name`` (pages said "Data asset: None"); both are taken from the result's own metadata."""
    meta.setdefault("run_id", run_id.to_json_dict())
    asset = (meta.get("active_batch_definition") or {}).get("data_asset_name")
    if asset and isinstance(meta.get("batch_spec"), dict):
        meta["batch_spec"].setdefault("data_asset_name", asset)


def make_offline(site_dir: Path) -> None:
    """Replace CDN assets in every page with the local ``static/regionstat/offline.{css,js}``."""
    target = site_dir / "static" / "regionstat"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("offline.css", "offline.js"):
        shutil.copyfile(STATIC / name, target / name)
    for page in site_dir.rglob("*.html"):
        if "_store" in page.relative_to(site_dir).parts:
            continue
        depth = len(page.relative_to(site_dir).parts) - 1
        rel = "../" * depth
        html = page.read_text(encoding="utf-8")
        local = (
            f'<link rel="stylesheet" href="{rel}static/regionstat/offline.css">\n'
            f'<script src="{rel}static/regionstat/offline.js"></script>\n'
        )
        first = min((m.start() for m in (_LINK_RE.search(html), _SCRIPT_RE.search(html)) if m), default=None)
        html = _SCRIPT_RE.sub("", _LINK_RE.sub("", html))
        if first is not None:
            html = html[:first] + local + html[first:]
        else:
            html = html.replace("</head>", local + "</head>", 1)
        html = _LOGO_RE.sub(f'src="{rel}static/images/logo-long.png"', html)
        page.write_text(html, encoding="utf-8")


def remote_assets(site_dir: Path) -> list[str]:
    """Any asset (stylesheet, script, image) a page still loads from the network; [] when offline-ready."""
    found: list[str] = []
    pat = re.compile(r"<(?:script|img)\b[^>]*src=\"(https?://[^\"]+)\"|<link\b[^>]*href=\"(https?://[^\"]+)\"", re.I)
    for page in site_dir.rglob("*.html"):
        for m in pat.finditer(page.read_text(encoding="utf-8")):
            found.append(f"{page.relative_to(site_dir)}: {m.group(1) or m.group(2)}")
    return found
