"""WSGI entry point: ``flask --app wsgi run`` or ``gunicorn wsgi:app``.

This is the serving process, so it starts the in-process scheduler. The ``flask``
command line (``FLASK_APP=app``) builds the app without it.
"""

from app import create_app
from app.scheduler import start_scheduler

app = create_app()
start_scheduler(app)
