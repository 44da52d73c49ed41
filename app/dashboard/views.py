"""The dashboard home: monitoring for a period (spec §8) and the SLO panel (spec §10)."""

from flask import current_app, render_template, request

from app.clock import now
from app.monitoring import metrics, slo
from app.monitoring.alerts import current_breaches, recent_alerts
from app.monitoring.chart import bar_chart_svg
from app.testimonials import overview
from app.web import dashboard_blueprint

bp = dashboard_blueprint("dashboard", __name__)


@bp.get("/")
def home():
    current = now()
    error, status = None, 200
    try:
        period = metrics.parse_period(request.args, current)
        campaign_id = metrics.parse_campaign(request.args.get("campaign"))
    except metrics.PeriodInvalid as exc:
        error, status = str(exc), 400
        period, campaign_id = metrics.parse_period({}, current), None
    figures = metrics.period_metrics(period, campaign_id)
    limits = slo.Limits.from_config(current_app.config)
    breached = {b.kind for b in current_breaches(current)}
    chart = bar_chart_svg(
        [(f"{d.day:%d %b}", d.scheduled) for d in figures.days],
        title=f"Requests scheduled per day, {period.label} (UTC days)",
    )
    by_campaign = overview.funnel_by_campaign(period, campaign_id)
    return render_template(
        "dashboard/home.html",
        waiting=overview.waiting_count(),
        latest=overview.latest_testimonials(),
        funnel_campaigns=by_campaign,
        funnel_total=overview.totals(by_campaign),
        funnel_products=overview.funnel_by_product(period, campaign_id),
        figures=figures,
        period=period,
        presets=metrics.PRESETS,
        campaigns=metrics.campaign_choices(),
        campaign_id=campaign_id,
        chart=chart,
        slo_rows=metrics.slo_panel(current, limits, breached),
        alerts=recent_alerts(),
        error=error,
        now=current,
    ), status
