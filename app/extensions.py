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
