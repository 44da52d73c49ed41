"""WSGI entry point: ``flask --app wsgi run`` or ``gunicorn wsgi:app``.

This is the serving process, so it starts the in-process scheduler; any other ``flask``
command given ``--app wsgi`` (``dispatch``, ``db upgrade``, ``--help``…) builds the app
without it (app/scheduler.py, is_serving_process).

Once the app is built, the objects made so far (modules, models, compiled statements and
templates: about 150,000) are moved out of the garbage collector's reach: they live as
long as the process, and each full collection scanned them all, a pause of about 75 ms
for every thread of a gunicorn worker (seen in ``bench/webhooks.py``, where it landed in
the slowest hundredth of the webhooks).
"""

import gc

from app import create_app
from app.scheduler import is_serving_process, start_scheduler

app = create_app()
gc.collect()  # what start-up left as garbage is freed, not kept for good
gc.freeze()
if is_serving_process():
    start_scheduler(app)
