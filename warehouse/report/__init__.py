"""The self-contained HTML report: ``data/reports/index.html``.

One file that works offline: inline CSS, charts as inline SVG rendered by vl-convert (no JavaScript, no CDN).
Each section module (``population``, ``sectors``, ``lq``, ``commuting``, ``typology``) reads its marts through a
``.sql`` file in ``sql/`` and returns a typed view model; ``templates/macros.html.j2`` renders them. A mart that
is missing (dbt still running, a failed build) or a block that fails gives a visible "not available: <reason>"
note and a log warning, never a crash. Output is deterministic apart from the generation timestamp.
"""

from warehouse.report.render import render_html, write_report

__all__ = ["render_html", "write_report"]
