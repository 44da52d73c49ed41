"""WSGI entry point: ``flask --app wsgi run`` or ``gunicorn wsgi:app``.

This is the serving process, so it starts the in-process scheduler; any other ``flask``
command given ``--app wsgi`` (``dispatch``, ``db upgrade``, ``--help``…) builds the app
without it (app/scheduler.py, is_serving_process).
"""

from app import create_app
from app.scheduler import is_serving_process, start_scheduler

app = create_app()
if is_serving_process():
    start_scheduler(app)
