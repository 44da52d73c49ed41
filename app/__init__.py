"""Post-purchase video testimonial requests: the app factory."""

import logging
import os
from urllib.parse import urlparse

from flask import Flask, g, jsonify, render_template, request
from markupsafe import escape
from sqlalchemy.exc import DatabaseError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from app.extensions import bootstrap, check_limits_only_where_declared, csrf, db, limiter, login_manager, migrate
from app.web import wants_json


def create_app(config_class=None):
    from config import check_shop_timezone, config_from_env

    app = Flask(__name__, instance_relative_config=True)
    app.config.from_object(config_class or config_from_env())
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.setdefault("UPLOAD_DIR", None)
    if not app.config["UPLOAD_DIR"]:
        app.config["UPLOAD_DIR"] = os.path.join(app.instance_path, "uploads")
    configure_logging(app)
    from app.secret_key import ensure_secret_key

    ensure_secret_key(app)
    check_production_config(app)
    check_shop_timezone(app.config)
    check_storage_config(app)
    from app.clock import stamp_arrival

    app.before_request(stamp_arrival)  # before every other hook: the webhooks' received_at
    from app import security

    security.init_app(app)  # headers on every response, error pages included
    if app.config.get("TRUSTED_PROXIES"):
        count = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    register_extensions(app)
    register_domain_signals()
    register_input_guards(app)
    register_blueprints(app)
    register_commands(app)
    register_error_handlers(app)
    from app.scheduler import start_for_flask_run

    start_for_flask_run(app)  # `flask run` only: no other command, no test, no script
    return app


def check_production_config(app):
    if not app.config.get("PRODUCTION"):
        return
    problems = []
    if app.config.get("ORDER_WEBHOOK_ENABLED", True):
        secret = (app.config.get("ORDER_WEBHOOK_SECRET") or "").strip()
        if not secret:
            problems.append(
                "ORDER_WEBHOOK_SECRET must be set: unsigned order webhooks would let anyone make the shop "
                "email or text any address (or set ORDER_WEBHOOK_ENABLED=false when orders come only "
                "through Shopify)"
            )
        elif len(secret) < 16:
            problems.append(f"ORDER_WEBHOOK_SECRET must be at least 16 characters (got {len(secret)})")
    from app.secret_key import production_key_problem

    key_problem = production_key_problem(app.config.get("SECRET_KEY"))
    if key_problem:
        problems.append(key_problem)
    from config import provider_config_problems

    problems.extend(provider_config_problems(app.config))
    from app.webhooks.signatures import webhook_config_problems

    problems.extend(webhook_config_problems(app.config))
    if problems:
        raise RuntimeError("refusing to start in production: " + "; ".join(problems))


def check_storage_config(app):
    """Refuse to start on a VIDEO_STORAGE_URL that names no storage (checked, not connected)."""
    url = app.config.get("VIDEO_STORAGE_URL") or ""
    if url.startswith("s3://"):
        bucket = urlparse(url).netloc
        if not bucket:
            raise RuntimeError(f"refusing to start: VIDEO_STORAGE_URL={url!r} names no bucket (s3://bucket/prefix)")
    elif url and not url.startswith("file://"):
        raise RuntimeError(
            f"refusing to start: VIDEO_STORAGE_URL={url!r} is neither s3://bucket/prefix nor file:///folder"
        )


def configure_logging(app):
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logger = logging.getLogger("app")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler()  # stderr: CLI --json output stays clean
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def register_extensions(app):
    from app import models  # noqa: F401  (the whole schema, for Alembic)
    from app.database import configure_engine, prepare_engine_options

    prepare_engine_options(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"))
    csrf.init_app(app)
    bootstrap.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    check_limits_only_where_declared(app)
    configure_engine(app)

    from app.auth.models import admin_for_session

    login_manager.user_loader(admin_for_session)

    from app.dashboard import nav
    from app.monitoring.alerts import slo_banners

    nav.init_app(app, banner_sources=[slo_banners])

    from app.campaigns.models import STATUS_BADGES, channel_name
    from app.lifecycle import states
    from app.lifecycle.names import mask_email, mask_phone

    app.add_template_filter(channel_name, "channel_name")
    # Lists show contacts masked (a•••@example.com, +1•••••4567); a request's page in full.
    app.add_template_filter(mask_email, "mask_email")
    app.add_template_filter(mask_phone, "mask_phone")
    app.add_template_global(STATUS_BADGES, "campaign_badges")  # a campaign status → its badge colour
    # A request status by name in templates: request_statuses.FAILED, request_statuses.TERMINAL…
    app.add_template_global(states.TEMPLATE_NAMES, "request_statuses")

    from app.settings import settings_context
    from app.settings.dates import register_filters

    app.context_processor(settings_context)
    register_filters(app)


def register_domain_signals():
    """One package reacting to another's change without importing it back."""
    from app.lifecycle.results import send_refused
    from app.lifecycle.services import cancel_requests_to
    from app.optouts.services import suppress_refused, suppressed

    # A contact put on the suppression list: its pending requests stop (connecting the same
    # function again, for another app in the same process, changes nothing).
    suppressed.connect(cancel_requests_to)
    # A send the provider refused because the recipient unsubscribed with it (the tick
    # reports every refusal as data): the suppression list takes the contact.
    send_refused.connect(suppress_refused)


def register_input_guards(app):
    # After the CSRF check (registered with the extensions), before the blueprints' routes.
    from app.input_guard import DatabaseIntConverter, refuse_nul_in_url

    app.url_map.converters["int"] = DatabaseIntConverter
    app.before_request(refuse_nul_in_url)


def register_blueprints(app):
    # Dashboard pages: campaigns, message templates, testimonials, intake log, outbox, opt-outs.
    from app.campaign_admin.views import bp as campaigns_bp
    from app.campaigns.template_views import bp as templates_bp
    from app.erasure.views import bp as erasure_bp
    from app.intake.log_views import bp as intake_log_bp
    from app.optouts.views import bp as optouts_bp
    from app.outbox.views import bp as outbox_bp
    from app.testimonials.views import bp as testimonials_bp

    for page_bp in (campaigns_bp, templates_bp, testimonials_bp, intake_log_bp, outbox_bp, optouts_bp, erasure_bp):
        app.register_blueprint(page_bp)

    from app.auth.views import bp as auth_bp
    from app.dashboard.views import bp as dashboard_bp
    from app.intake.views import bp as intake_bp
    from app.public.views import bp as public_bp
    from app.shopify.views import bp as shopify_bp

    app.register_blueprint(intake_bp)
    app.register_blueprint(shopify_bp)
    from app.events.views import bp as events_bp

    app.register_blueprint(events_bp)
    app.register_blueprint(public_bp)
    from app.showcase.embed_views import bp as showcase_embed_bp
    from app.showcase.views import bp as showcase_bp

    app.register_blueprint(showcase_bp)
    app.register_blueprint(showcase_embed_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(dashboard_bp)

    from app.lifecycle.views import bp as requests_bp

    app.register_blueprint(requests_bp)
    from app.settings.views import brand_bp
    from app.settings_admin.views import bp as settings_bp

    app.register_blueprint(settings_bp)
    app.register_blueprint(brand_bp)


def register_commands(app):
    from app.auth.cli import admins_cli
    from app.campaign_admin.cli import campaigns_cli
    from app.demo.cli import seed_demo_command
    from app.lifecycle.cli import dispatch_command, requests_cli
    from app.outbox.cli import outbox_cli
    from app.providers.cli import providers_cli
    from app.scheduler import worker_command
    from app.shopify.cli import shopify_cli

    app.cli.add_command(admins_cli)
    app.cli.add_command(campaigns_cli)
    app.cli.add_command(requests_cli)
    app.cli.add_command(outbox_cli)
    app.cli.add_command(dispatch_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(providers_cli)
    from app.optouts.cli import optouts_cli

    app.cli.add_command(optouts_cli)
    app.cli.add_command(shopify_cli)
    from app.monitoring.cli import stats_cli

    app.cli.add_command(stats_cli)
    from app.erasure.cli import customers_cli
    from app.testimonials.cli import testimonials_cli

    app.cli.add_command(testimonials_cli)
    app.cli.add_command(customers_cli)


# The last resort when even the error page cannot render: no template, no database.
PLAIN_ERROR_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{status} — {title}</title>'
    '</head><body><main style="max-width:34rem;margin:2rem auto;font-family:system-ui,sans-serif">'
    "<h1>{title}</h1><p>{text}</p></main></body></html>"
)
DATABASE_DOWN = "The database cannot be used right now; the request was not applied. Please try again in a moment."


def register_error_handlers(app):
    def forget_session():
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - a broken connection may refuse even a rollback
            pass

    def error_page(error, status, database_down=False):
        """The app's error page. Rendering it reads the database (the logged-in admin, the
        nav counts and banners): when the database is the problem, it renders without."""
        if database_down:
            g.database_unusable = True
        try:
            return render_template("error.html", error=error, database_down=database_down), status
        except SQLAlchemyError:
            if database_down:
                raise
            forget_session()
            return error_page(error, status, database_down=True)
        except Exception:  # noqa: BLE001 - never Werkzeug's bare page or a traceback
            app.logger.exception("the error page failed to render")
            title = f"{error.code} {error.name}" if error else "Something went wrong"
            text = (
                error.description
                if error
                else (DATABASE_DOWN if database_down else "The request was not applied. Please try again in a moment.")
            )
            return PLAIN_ERROR_PAGE.format(status=status, title=escape(title), text=escape(text)), status

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if wants_json():
            return jsonify({"error": exc.description, "status": exc.code}), exc.code
        return error_page(exc, exc.code)

    @app.errorhandler(Exception)
    def unexpected_error(exc):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        forget_session()
        # Down, locked, corrupt, missing a table, or every pooled connection in use past the pool's timeout.
        if isinstance(exc, DatabaseError | PoolTimeout):
            if wants_json():
                return jsonify({"error": DATABASE_DOWN, "status": 503}), 503, {"Retry-After": "30"}
            response, status = error_page(None, 503, database_down=True)
            return response, status, {"Retry-After": "30"}
        if wants_json():
            return jsonify({"error": "internal error; the request was not applied"}), 500
        return error_page(None, 500)
