"""Inline SVG charts for the report (no script, no library: the page must stay self-contained)."""

from __future__ import annotations

from html import escape
from typing import Any

from markupsafe import Markup


def histogram_svg(
    bins: list[dict[str, Any]],
    *,
    x_label: str,
    y_label: str = "rows",
    width: int = 420,
    height: int = 190,
    chart_id: str = "",
) -> Markup:
    """A bar chart of `stats.histogram` bins: one bar per bin, bin edges on the x axis, counts on y.

    Each bar carries a `<title>` (hover: range and count) and `data-count`, so a test can read what
    the chart says.
    """
    if not bins:
        return Markup("")
    left, right, top, bottom = 40, 10, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(b["count"] for b in bins) or 1
    bar_w = plot_w / len(bins)
    id_attr = f' id="{escape(chart_id)}"' if chart_id else ""
    parts = [
        f'<svg class="chart"{id_attr} viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(x_label)} histogram" xmlns="http://www.w3.org/2000/svg">',
        # axes
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">{peak}</text>',
        f'<text class="tick" x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    label_every = max(1, len(bins) // 6)
    for i, b in enumerate(bins):
        h = plot_h * b["count"] / peak
        x = left + i * bar_w
        parts.append(
            f'<rect class="chart-bar" data-count="{b["count"]}" x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}"><title>{b["lo"]}–{b["hi"]} '
            f"{escape(x_label)}: {b['count']} {escape(y_label)}</title></rect>"
        )
        if i % label_every == 0:
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle">{b["lo"]}</text>'
            )
    parts.append(
        f'<text class="tick" x="{left + plot_w:.1f}" y="{top + plot_h + 14}" text-anchor="end">'
        f"{bins[-1]['hi']}</text>"
    )
    parts.append(
        f'<text class="axis-label" x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    parts.append(
        f'<text class="axis-label" x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">{escape(y_label)}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
