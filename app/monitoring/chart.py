"""A bar chart as inline SVG, drawn on the server: no JavaScript, works offline and in print."""

from markupsafe import Markup, escape


def nice_ceiling(value):
    """The smallest 1/2/5 × 10^k at or above value (the y axis top); 1 for an empty chart."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def bar_chart_svg(points, *, title, width=720, height=200, unit="requests"):
    """``points`` is [(label, value)] in order; returns SVG markup with one <rect> per point,
    a <title> tooltip on each bar and the figures in the accessible label."""
    left, right, top, bottom = 40, 8, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_ceiling(max((v for _, v in points), default=0))
    n = max(len(points), 1)
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.8)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="bar-chart" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = top + plot_h - fraction * plot_h
        label = top_value * fraction
        label = f"{label:g}"
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid" '
            'stroke="#dee2e6" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#6c757d">{label}</text>'
        )
    for i, (label, value) in enumerate(points):
        h = plot_h * value / top_value
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="#0d6efd" '
            f'data-label="{escape(label)}" data-value="{value}"><title>{escape(label)}: {value} {unit}'
            "</title></rect>"
        )
    if points:
        for i in sorted({0, len(points) // 2, len(points) - 1}):
            x = left + i * slot + slot / 2
            anchor = "start" if i == 0 else ("end" if i == len(points) - 1 else "middle")
            if len(points) == 1:
                anchor = "middle"
            parts.append(
                f'<text x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}" font-size="11" '
                f'fill="#6c757d">{escape(points[i][0])}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
