"""Extension objects, created here and initialised in the app factory."""

from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
bootstrap = Bootstrap5()
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see the dashboard."
login_manager.login_message_category = "info"
# Login throttling (app/auth/views.py). Storage: RATELIMIT_STORAGE_URI, in memory by
# default (one process); each init_app starts from empty counters.
limiter = Limiter(key_func=get_remote_address)


def check_limits_only_where_declared(app):
    """After ``limiter.init_app``: Flask-Limiter checks every request in a before_request
    hook, for application-wide and per-blueprint limits. This app has neither: its limits
    (the login's) are decorators, which check when their view is called. On the order
    webhook that hook was about 5% of the process's CPU for nothing, so it is removed,
    unless default, application-wide or blueprint limits are set."""
    manager = limiter.limit_manager
    if manager._default_limits or manager._application_limits or manager._blueprint_limits:
        return
    hooks = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit in hooks:
        hooks.remove(limiter._check_request_limit)
