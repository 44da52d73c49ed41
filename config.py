"""Configuration read from environment variables.

With no variable set at all the app runs on the embedded defaults: a SQLite file under
``instance/``, the ``outbox`` message provider and the in-process scheduler.
"""

import os


def _bool(name, default):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class ConfigError(ValueError):
    """An environment variable the app cannot use; the message names it."""


def _number(name, default, kind, what):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = kind(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {value!r}") from None
    if number < 0 or number != number or number == float("inf"):
        raise ConfigError(f"{name} must be {what} of 0 or more, got {value!r}")
    return number


def _int(name, default):
    return _number(name, default, int, "a whole number")


def _float(name, default):
    return _number(name, default, float, "a number")


def _choice(name, default, choices):
    value = (os.environ.get(name) or "").strip().upper()
    if not value:
        return default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {os.environ[name]!r}")
    return value


DEFAULT_EMAIL_FROM = "reviews@shop.example"


class Config:
    # No built-in key (app/secret_key.py). Unset: outside production, a random key kept in
    # SECRET_KEY_FILE (default instance/secret-key); production refuses to start.
    SECRET_KEY = os.environ.get("SECRET_KEY") or None
    SECRET_KEY_FILE = os.environ.get("SECRET_KEY_FILE") or None
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", "sqlite:///testimonials.db")
    SQLALCHEMY_ENGINE_OPTIONS = {}
    # Connections one process keeps open for reuse (opened only when needed; 10 more may be
    # opened for a burst, and closed after it). Below the threads that use the database at
    # once (gunicorn's --threads, plus the scheduler's), a connection is closed and a new
    # one opened at almost every request, and each new one plans every statement again.
    DATABASE_POOL_SIZE = _int("DATABASE_POOL_SIZE", 20)
    # FULL: a commit is on disk before the provider is called, so a power cut cannot undo
    # the record of a send that went out (and send it again). NORMAL is faster and safe
    # against a crash of the app, not of the machine. See docs/durability.md.
    SQLITE_SYNCHRONOUS = _choice("SQLITE_SYNCHRONOUS", "FULL", ("FULL", "NORMAL"))

    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    SHOP_NAME = os.environ.get("SHOP_NAME", "Demo Shop")
    SHOP_TIMEZONE = os.environ.get("SHOP_TIMEZONE", "UTC")

    ORDER_WEBHOOK_SECRET = (os.environ.get("ORDER_WEBHOOK_SECRET") or "").strip() or None
    # false: /webhooks/orders answers 404 and production needs no ORDER_WEBHOOK_SECRET (a
    # shop whose orders come only through /webhooks/shopify).
    ORDER_WEBHOOK_ENABLED = _bool("ORDER_WEBHOOK_ENABLED", True)
    # Shopify webhooks (docs/shopify.md): the signing secret shown in Shopify admin, or the
    # app's client secret. Unset: /webhooks/shopify answers 503 and accepts nothing.
    SHOPIFY_WEBHOOK_SECRET = os.environ.get("SHOPIFY_WEBHOOK_SECRET") or None
    WEBHOOK_MAX_BYTES = 1024 * 1024

    EMAIL_PROVIDER = os.environ.get("EMAIL_PROVIDER", "outbox")
    SMS_PROVIDER = os.environ.get("SMS_PROVIDER", "outbox")
    EMAIL_FROM = os.environ.get("EMAIL_FROM", DEFAULT_EMAIL_FROM)

    # SendGrid (EMAIL_PROVIDER=sendgrid); docs/providers.md
    SENDGRID_API_KEY = os.environ.get("SENDGRID_API_KEY") or None
    SENDGRID_API_HOST = os.environ.get("SENDGRID_API_HOST") or "https://api.sendgrid.com"
    SENDGRID_TIMEOUT_SECONDS = _float("SENDGRID_TIMEOUT_SECONDS", 10.0)
    # SendGrid accepts and validates the mail but delivers nothing (staging).
    SENDGRID_SANDBOX = _bool("SENDGRID_SANDBOX", False)
    # The mailto: half of List-Unsubscribe; default: the address in EMAIL_FROM.
    EMAIL_UNSUBSCRIBE_MAILTO = os.environ.get("EMAIL_UNSUBSCRIBE_MAILTO") or None

    # SendGrid Signed Event Webhook (docs/events.md): the verification key SendGrid shows
    # (base64 ECDSA P-256 public key). Set: unsigned or badly signed events get 401.
    SENDGRID_WEBHOOK_PUBLIC_KEY = os.environ.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or None

    # Twilio (SMS_PROVIDER=twilio); docs/providers.md
    TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID") or None
    TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN") or None
    TWILIO_FROM = os.environ.get("TWILIO_FROM") or None
    TWILIO_MESSAGING_SERVICE_SID = os.environ.get("TWILIO_MESSAGING_SERVICE_SID") or None
    TWILIO_API_BASE_URL = os.environ.get("TWILIO_API_BASE_URL") or None  # default: the SDK's
    TWILIO_TIMEOUT_SECONDS = _float("TWILIO_TIMEOUT_SECONDS", 10.0)

    SCHEDULER_ENABLED = _bool("SCHEDULER_ENABLED", True)
    SCHEDULER_INTERVAL_SECONDS = _int("SCHEDULER_INTERVAL_SECONDS", 60)
    DISPATCH_BATCH_SIZE = _int("DISPATCH_BATCH_SIZE", 200)  # slots one claim statement takes at most
    # Provider calls in flight at once (a bounded pool of sender threads per process), and
    # per-channel limits on how many calls start in any one second (0: no limit). Twilio
    # long codes take about one SMS per second; SendGrid answers 429 when over its limit.
    SEND_CONCURRENCY = _int("SEND_CONCURRENCY", 8)
    EMAIL_RATE_PER_SECOND = _float("EMAIL_RATE_PER_SECOND", 0.0)
    SMS_RATE_PER_SECOND = _float("SMS_RATE_PER_SECOND", 1.0)
    # A claim older than this belongs to a process that died mid-send.
    SEND_LEASE_SECONDS = _int("SEND_LEASE_SECONDS", 600)
    # A tick stops claiming after this much real time (what is left waits for the next
    # tick), so that a long tick never outlives its own claims' lease. Unset: half the lease.
    DISPATCH_TIME_BUDGET_SECONDS = _float("DISPATCH_TIME_BUDGET_SECONDS", None)
    RETRY_BASE_SECONDS = _int("RETRY_BASE_SECONDS", 300)
    MAX_SEND_ATTEMPTS = _int("MAX_SEND_ATTEMPTS", 3)

    # Monitoring (spec §10): the SLO limits behind the dashboard's banner and the alert email.
    SLO_CREATION_SECONDS = _float("SLO_CREATION_SECONDS", 10.0)  # webhook → request creation, p95
    SLO_DUE_SEND_SECONDS = _int("SLO_DUE_SEND_SECONDS", 300)  # due time → provider accepted, p95
    # Failure rate of the last hour's sends (0.20 = 20 %; "20" is read as 20 % too).
    ALERT_FAILURE_RATE = _float("ALERT_FAILURE_RATE", 0.20)
    ALERT_EMAIL = os.environ.get("ALERT_EMAIL") or None  # one email per breach, via the email provider

    # The wall (/embed/wall) may be framed only by these origins (space- or comma-separated,
    # e.g. "https://shop.example https://shop.myshopify.com"); unset: only by this app.
    EMBED_ALLOWED_ORIGINS = os.environ.get("EMBED_ALLOWED_ORIGINS", "")

    VIDEO_MAX_MB = _int("VIDEO_MAX_MB", 200)
    VIDEO_MAX_SECONDS = _int("VIDEO_MAX_SECONDS", 90)  # the recorder stops by itself at this length
    UPLOAD_DIR = os.environ.get("UPLOAD_DIR") or None  # default: instance/uploads
    # Where videos, posters and uploads live (app/storage): unset = the UPLOAD_DIR folder;
    # s3://bucket/prefix = an S3-compatible bucket shared by several app machines.
    VIDEO_STORAGE_URL = os.environ.get("VIDEO_STORAGE_URL") or None
    S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL") or None  # MinIO, R2, …; unset: AWS
    S3_REGION = os.environ.get("S3_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    S3_PRESIGN_SECONDS = _int("S3_PRESIGN_SECONDS", 300)  # how long an admin's video link works
    # Resumable uploads that got no byte for this long are deleted (with their parts).
    UPLOAD_EXPIRY_HOURS = _int("UPLOAD_EXPIRY_HOURS", 24)
    # The processing job tries a video this many times (errors of the tools, storage
    # outages) before marking it failed; a file that is not a video fails at once.
    VIDEO_PROCESS_ATTEMPTS = _int("VIDEO_PROCESS_ATTEMPTS", 3)
    VIDEO_PROCESS_LEASE_SECONDS = _int("VIDEO_PROCESS_LEASE_SECONDS", 900)
    VIDEO_JOB_INTERVAL_SECONDS = _int("VIDEO_JOB_INTERVAL_SECONDS", 30)
    # "Not arrived yet?" on the customer's page pushes the next message back this far, once.
    POSTPONE_DAYS = _int("POSTPONE_DAYS", 7)
    # Werkzeug 3.1 refuses non-file form fields over 500 kB by default; the customer's form
    # (a 5,000-character text and a few small fields) stays far below, so the default is kept.
    MAX_FORM_MEMORY_SIZE = 500 * 1024

    # werkzeug's scrypt at its default cost (N=32768): about 0.2 s per login on purpose.
    PASSWORD_HASH_METHOD = "scrypt"
    # Failed logins allowed per client address and per account before 429 (Flask-Limiter
    # syntax). Several processes must share one store: RATELIMIT_STORAGE_URI, e.g.
    # redis://127.0.0.1:6379/0 or memcached://127.0.0.1:11211 (README, "Running in production").
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT") or "10 per minute"
    # Behind N reverse proxies (nginx, a load balancer): the client's address and scheme
    # come from their X-Forwarded-For / X-Forwarded-Proto (werkzeug's ProxyFix). 0: none.
    TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or "memory://"
    RATELIMIT_HEADERS_ENABLED = True  # Retry-After on a 429
    RATELIMIT_STRATEGY = "moving-window"  # the last minute, not the clock's minute
    RATELIMIT_KEY_PREFIX = "testimonials"

    WTF_CSRF_TIME_LIMIT = None
    BOOTSTRAP_SERVE_LOCAL = True  # no CDN: the dashboard works offline
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"


class ProductionConfig(Config):
    """Refuses to start on insecure defaults (checked in ``create_app``)."""

    PRODUCTION = True
    # Served over HTTPS (behind a TLS-terminating proxy): cookies never travel in clear.
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True


class TestConfig(Config):
    TESTING = True
    SCHEDULER_ENABLED = False
    SECRET_KEY = "test-secret"
    PUBLIC_BASE_URL = "http://testserver.local"
    # Still scrypt, at a cost a test can pay thousands of times (a login is ~2 ms, not
    # ~0.2 s); test_auth checks that the real setting stores a full-cost hash.
    PASSWORD_HASH_METHOD = "scrypt:256:8:1"
    # A test's database is thrown away: no need to wait for the disk at each commit
    # (tests/test_database.py checks the real default).
    SQLITE_SYNCHRONOUS = "NORMAL"


def config_from_env():
    return ProductionConfig if os.environ.get("APP_ENV") == "production" else Config


def check_shop_timezone(config):
    """Refuse to start on a SHOP_TIMEZONE that is not an IANA time zone name.

    Send windows ("SMS 09:00-20:00 shop time") are read in this zone; guessing UTC for a
    typo would text customers in the middle of their night.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = config.get("SHOP_TIMEZONE") or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuntimeError(
            f"refusing to start: SHOP_TIMEZONE={name!r} is not a time zone name; use an IANA "
            "name such as Europe/Berlin, America/New_York or UTC"
        ) from None
    config["SHOP_TIMEZONE"] = name


def provider_config_problems(config):
    """What stops the configured message providers from working (empty list: fine).

    Production refuses to start on any of these: a provider without credentials would
    only show up as every request failing, hours later.
    """
    problems = []
    email, sms = config.get("EMAIL_PROVIDER"), config.get("SMS_PROVIDER")
    if email not in ("outbox", "sendgrid"):
        problems.append(f"EMAIL_PROVIDER={email!r} is not a known email provider (outbox, sendgrid)")
    if sms not in ("outbox", "twilio"):
        problems.append(f"SMS_PROVIDER={sms!r} is not a known SMS provider (outbox, twilio)")
    if email == "sendgrid":
        if not config.get("SENDGRID_API_KEY"):
            problems.append("EMAIL_PROVIDER=sendgrid needs SENDGRID_API_KEY")
        if not config.get("EMAIL_FROM") or config.get("EMAIL_FROM") == DEFAULT_EMAIL_FROM:
            problems.append("EMAIL_PROVIDER=sendgrid needs EMAIL_FROM (a sender verified in SendGrid)")
    if sms == "twilio":
        if not (config.get("TWILIO_ACCOUNT_SID") and config.get("TWILIO_AUTH_TOKEN")):
            problems.append("SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if not (config.get("TWILIO_FROM") or config.get("TWILIO_MESSAGING_SERVICE_SID")):
            problems.append("SMS_PROVIDER=twilio needs TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID")
    return problems
