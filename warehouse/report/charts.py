"""Charts as inline SVG rendered by vl-convert from Vega-Lite specs (no JavaScript, no CDN)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

log = logging.getLogger(__name__)

_CHART_FONT = "Inter, Segoe UI, Helvetica Neue, Arial, sans-serif"
_CHART_CONFIG = {
    "font": _CHART_FONT,
    "view": {"stroke": None},
    "axis": {
        "labelColor": "#374151",
        "titleColor": "#111827",
        "gridColor": "#eef0f3",
        "domainColor": "#9ca3af",
        "tickColor": "#9ca3af",
        "labelFontSize": 11,
        "titleFontSize": 11,
        "titleFontWeight": 600,
    },
    "legend": {"labelFontSize": 11, "titleFontSize": 11, "labelColor": "#374151", "titleColor": "#111827"},
    "header": {"labelFontSize": 11, "labelFontWeight": 600, "labelColor": "#111827", "titleFontSize": 0},
    "title": {"fontSize": 13, "color": "#111827"},
    "background": "white",
}


@dataclass(frozen=True)
class Chart:
    """A rendered chart (``svg``) or why there is none (``error``); the macro ``chart`` shows either."""

    svg: Markup | None = None
    error: str | None = None


def render_svg(spec: dict[str, Any], prefix: str) -> Markup:
    """Vega-Lite spec -> inline SVG with element ids made unique per chart and a responsive width."""
    import vl_convert as vlc

    spec = dict(spec)
    spec.pop("$schema", None)
    config = dict(_CHART_CONFIG)
    config.update(spec.get("config") or {})
    spec["config"] = config
    svg: str = vlc.vegalite_to_svg(spec)
    # Renumber element ids per chart: unique in the page and independent of vl-convert's global counters.
    ids = list(dict.fromkeys(re.findall(r'\bid="([^"]+)"', svg)))
    mapping = {old: f"{prefix}-{n}" for n, old in enumerate(ids, start=1)}
    if mapping:
        pattern = re.compile(r'(\bid="|url\(#|href="#)(' + "|".join(map(re.escape, ids)) + r')(?=[")])')
        svg = pattern.sub(lambda m: m.group(1) + mapping[m.group(2)], svg)
    m = re.match(r'<svg([^>]*?)\swidth="([\d.]+)"\sheight="([\d.]+)"', svg)
    if m:
        w = m.group(2)
        svg = svg.replace(
            f'width="{w}" height="{m.group(3)}"',
            f'width="{w}" height="{m.group(3)}" style="max-width:100%;height:auto"',
            1,
        )
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))


def chart(build: Callable[[], dict[str, Any]], prefix: str) -> Chart:
    """Render the spec ``build`` returns; a chart that fails is a note, never the end of the report."""
    try:
        return Chart(svg=render_svg(build(), prefix))
    except Exception as exc:
        log.warning("report: chart %s failed: %s", prefix, exc)
        return Chart(error=f"chart not available: {exc}")
