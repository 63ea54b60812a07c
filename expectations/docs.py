"""GX Data Docs under ``<data_dir>/docs/gx/``, built by GX's own site builder and readable offline.

Validation stores every GX result as JSON in ``docs/gx/_store/results/<suite>/<load_id>.json`` (quarantined
batches included). Building loads them and the catalogue's suites into a throw-away ephemeral context whose one
Data Docs site writes to ``docs/gx`` (``context.build_data_docs``).

GX's page templates load Bootstrap, bootstrap-table, jQuery, popper, Font Awesome and vega from CDNs and the logo
from S3. The site is configured with GX's own extension point for that, a custom ``view`` class per site section
(:class:`OfflinePageView`, :class:`OfflineIndexPageView`): it renders GX's templates with each CDN address
replaced by the same file, vendored unchanged from its npm package in ``expectations/static/vendor/`` (see the
README there; the two files GX pins with ``integrity`` hashes match them), and the logo by GX's own copy in
``static/images/``. A template that loads an asset not in :data:`VENDORED` fails the build by name, so a GX
upgrade that adds one cannot silently put a network dependency back.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, pass_context
from jinja2.runtime import Context

from expectations.gxcore import gx
from expectations.suites import all_suites

gx()  # quiet GX before its modules are imported; this module is only imported to build the docs
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView  # noqa: E402

VENDOR = Path(__file__).resolve().parent / "static" / "vendor"
SITE = "regionstat"
#: GX's logo comes from this S3 folder; GX also copies it into the site's ``static/images/``
GX_WEB_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"

#: every CDN address in GX 1.24's Data Docs templates -> the vendored copy under ``static/vendor/``
VENDORED: dict[str, str] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap@4.3.1/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap@4.3.1/js/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table@1.19.1/bootstrap-table.min.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table@1.19.1/bootstrap-table.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table@1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table@1.19.0/extensions/filter-control/bootstrap-table-filter-control.css"
    ),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "bootstrap-table@1.19.0/extensions/filter-control/bootstrap-table-filter-control.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker@1.9.0/css/bootstrap-datepicker.min.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker@1.9.0/js/bootstrap-datepicker.min.js"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "bootstrap-dark@1.1.0/css/bootstrap-prefers-dark.css"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-free@6.6.0/css/all.min.css"
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery@3.7.1/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js@1.12.9/umd/popper.min.js",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega@5.33.1/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite@5.23.0/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed@6.29.0/vega-embed.min.js",
}
#: GX pins two CDN scripts with Subresource Integrity and ``crossorigin``; a browser refuses a cross-origin
#: (CORS) request for a ``file://`` page, so the local copies load without them. The hashes are checked against
#: the vendored files instead (tests/test_expectations.py).
_SRI_ATTRS = re.compile(r'\s+integrity="sha\d+-[^"]+"\s+crossorigin="anonymous"')
_ASSET_TAG = re.compile(r"<(?:script|link|img)\b[^>]*?(?:src|href)=\"(https?://[^\"]+)\"", re.I)


class UnvendoredAssetError(RuntimeError):
    """A GX template loads a network asset that has no vendored copy (GX upgraded?)."""


@pass_context
def local_static(context: Context, path: str) -> str:
    """``path`` under the site's ``static/``, relative to the page being rendered (GX nests pages by suite name
    and run: the same depths its own ``top_navbar.j2`` uses for ``static/images/``)."""
    renderer = str(context.get("renderer_type") or "")
    dots = str(context.get("expectation_suite_name") or "").count(".")
    if "ValidationResults" in renderer or "ProfilingResults" in renderer:
        depth = dots + 4
    elif "ExpectationSuite" in renderer:
        depth = dots + 1
    else:  # the site index
        depth = 0
    return "../" * depth + "static/" + path


def offline_template(name: str, source: str) -> str:
    """GX's template ``source`` with every CDN address pointing at its vendored copy and the logo at GX's own."""
    source = source.replace(f'"{GX_WEB_ASSETS}"', 'local_static("images/")')  # inside a {% set %}
    for url, local in VENDORED.items():
        source = source.replace(f'"{url}"', f"\"{{{{ local_static('vendor/{local}') }}}}\"")
    source = _SRI_ATTRS.sub("", source)
    left = _ASSET_TAG.findall(source)
    if left:
        raise UnvendoredAssetError(
            f"GX Data Docs template {name} loads {left[0]}, which has no vendored copy in expectations/static/vendor "
            "(add it there and to expectations.docs.VENDORED)"
        )
    return source


class OfflineTemplateLoader(BaseLoader):
    """GX's own template loader, its sources passed through :func:`offline_template`."""

    def __init__(self, inner: BaseLoader) -> None:
        self.inner = inner

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Callable[[], bool]]:
        source, filename, uptodate = self.inner.get_source(environment, template)
        return offline_template(template, source), filename, uptodate or (lambda: True)


def _offline(env: Environment) -> None:
    assert env.loader is not None
    env.loader = OfflineTemplateLoader(env.loader)
    env.globals["local_static"] = local_static


class OfflinePageView(DefaultJinjaPageView):
    """GX's page view (expectation suites, validation results) over :class:`OfflineTemplateLoader`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offline(self.env)


class OfflineIndexPageView(DefaultJinjaIndexPageView):
    """GX's index page view over :class:`OfflineTemplateLoader`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _offline(self.env)


def site_config(site_dir: Path) -> dict[str, Any]:
    """The one Data Docs site: GX's SiteBuilder, its sections and index rendered by the offline views."""
    page_view = {"module_name": __name__, "class_name": "OfflinePageView"}
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
        "site_section_builders": {
            "expectations": {"view": page_view},
            "validations": {"view": page_view},
            "profiling": {"view": page_view},
        },
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "show_cta_footer": False,
            "view": {"module_name": __name__, "class_name": "OfflineIndexPageView"},
        },
    }


def build(settings: Any) -> Path:
    """Rebuild the site from the stored results and the catalogue's suites; returns its ``index.html``."""
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
    ctx.add_data_docs_site(site_name=SITE, site_config=site_config(site_dir))
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
    shutil.copytree(VENDOR, site_dir / "static" / "vendor", ignore=shutil.ignore_patterns("README.md"))
    return site_dir / "index.html"


def _name_run_and_asset(meta: dict[str, Any], run_id: Any) -> None:
    """Give GX's page renderer the run and asset it looks for: a result validated on a batch (not through a
    checkpoint) has no ``run_id`` (pages said ``__none__``), and a fluent batch's ``batch_spec`` has no
    ``data_asset_name`` (pages said "Data asset: None"); both are taken from the result's own metadata."""
    meta.setdefault("run_id", run_id.to_json_dict())
    asset = (meta.get("active_batch_definition") or {}).get("data_asset_name")
    if asset and isinstance(meta.get("batch_spec"), dict):
        meta["batch_spec"].setdefault("data_asset_name", asset)


def remote_assets(site_dir: Path) -> list[str]:
    """Any asset (stylesheet, script, image) a page still loads from the network; [] when offline-ready."""
    found: list[str] = []
    for page in site_dir.rglob("*.html"):
        for url in _ASSET_TAG.findall(page.read_text(encoding="utf-8")):
            found.append(f"{page.relative_to(site_dir)}: {url}")
    return found


def missing_local_assets(site_dir: Path) -> list[str]:
    """Relative stylesheet/script/image references of any page that point at no file in the site.

    GX's ``favicon.j2`` assumes a fixed page depth, one level short for our dotted suite names: a missing
    favicon costs nothing, so it is not counted."""
    tag = re.compile(r"<(?:script|link|img)\b[^>]*?(?:src|href)=\"(?!https?://|data:|#)([^\"?]+)", re.I)
    missing: list[str] = []
    for page in site_dir.rglob("*.html"):
        if "_store" in page.relative_to(site_dir).parts:
            continue
        for ref in tag.findall(page.read_text(encoding="utf-8")):
            if not ref.endswith("favicon.ico") and not (page.parent / ref).resolve().is_file():
                missing.append(f"{page.relative_to(site_dir)}: {ref}")
    return missing
