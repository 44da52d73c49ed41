"""The in-process scheduler: a declarative job table, each job a thin shell over a service;
``flask worker`` runs it alone.

Every process that starts a scheduler runs its jobs (each gunicorn worker; both sides of
the debug reloader), so the start is guarded and the dispatch job is safe to run
concurrently anyway: it claims slots in the database.
"""

import logging
import os
import signal
import threading

import click
from apscheduler.schedulers.background import BackgroundScheduler
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.serving import is_running_from_reloader

from app.clock import now
from app.extensions import db
from app.lifecycle.dispatch import dispatch_due
from app.lifecycle.heartbeat import record_tick
from app.monitoring.alerts import evaluate_alerts
from app.testimonials.processing import process_due_videos
from app.testimonials.uploads import delete_expired_uploads

log = logging.getLogger("app.scheduler")
_scheduler = None


def dispatch_job(app):
    with app.app_context():
        try:
            started = now()
            report = dispatch_due(started)
            record_tick(started, now(), report)
        except Exception:  # logged, and the next tick tries again; the heartbeat shows the gap
            log.exception("dispatch tick failed")
            return
        if report.claimed or report.expired or report.recovered:
            log.info("tick: %s", report.to_dict())


def alerts_job(app):
    with app.app_context():
        try:
            evaluate_alerts(now())
        except Exception:  # logged; the next interval evaluates again
            log.exception("alert evaluation failed")


def video_job(app):
    with app.app_context():
        try:
            counts = process_due_videos(now())
            counts["uploads_deleted"] = delete_expired_uploads(now())
            db.session.commit()
        except Exception:  # logged; each video's state is in the database, the next run goes on
            log.exception("video processing failed")
            return
        if any(counts.values()):
            log.info("videos: %s", counts)


JOBS = [
    # (id, function, interval config key)
    ("dispatch", dispatch_job, "SCHEDULER_INTERVAL_SECONDS"),
    # SLO breaches (spec §10): opens/resolves alerts, one email per breach.
    ("alerts", alerts_job, "SCHEDULER_INTERVAL_SECONDS"),
    # Submitted videos: probe, poster, a copy that plays everywhere; stale uploads deleted.
    ("videos", video_job, "VIDEO_JOB_INTERVAL_SECONDS"),
]


def note_scheduler_start(app, when=None):
    """The heartbeat counts from here: a gap before this start (a slow seed, a stopped app)
    is not the scheduler failing (app/monitoring/slo.py, heartbeat_breach)."""
    with app.app_context():
        started = when or now()
    app.extensions.setdefault("monitoring", {})["scheduler_started_at"] = started
    return started


def flask_command():
    """The ``flask`` command this process is running ("run", "dispatch", …), or None when
    it is not the flask command line (a WSGI server such as gunicorn imported the app)."""
    if os.environ.get("FLASK_RUN_FROM_CLI") != "true":  # set by the flask command line
        return None
    ctx = click.get_current_context(silent=True)
    # The app is loaded inside the command for `flask run`, and by the group (to list or
    # find the command) for every other one: only "run" is a server.
    return ctx.command.name if ctx is not None and ctx.command is not None else ""


def is_serving_process():
    """A process that serves HTTP: a WSGI server, or ``flask run`` (whatever the --app).
    Never another flask command: ``flask --app wsgi dispatch --help`` must not tick."""
    return flask_command() in (None, "run")


def start_for_flask_run(app):
    """Called by the factory: ``flask --app app run`` serves too, so it gets the jobs."""
    if flask_command() == "run":
        start_scheduler(app)


def start_scheduler(app, *, worker=False):
    """Start the jobs unless disabled, already started, or this is the reloader's parent.

    ``worker``: ``flask worker``, the process whose one job is the scheduler; it runs
    whatever SCHEDULER_ENABLED says (that setting is for the web side)."""
    global _scheduler
    if not app.config["SCHEDULER_ENABLED"] and not worker:
        log.info("scheduler disabled (SCHEDULER_ENABLED=false)")
        return None
    if _scheduler is not None:
        return _scheduler
    if app.debug and not is_running_from_reloader() and not worker:
        return None  # the reloader's watcher process: the serving child starts it
    scheduler = BackgroundScheduler(
        timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )
    for job_id, func, interval_key in JOBS:
        scheduler.add_job(
            func, "interval", seconds=app.config[interval_key], args=[app], id=job_id, next_run_time=now()
        )
    note_scheduler_start(app)
    scheduler.start()
    _scheduler = scheduler
    log.info("scheduler started: dispatch every %ss", app.config["SCHEDULER_INTERVAL_SECONDS"])
    return scheduler


def run_worker(app, stop):
    """``flask worker``: the scheduler's jobs in the foreground until ``stop`` is set."""
    scheduler = start_scheduler(app, worker=True)
    log.info("worker running the scheduler; SIGTERM or Ctrl-C stops it after the running jobs")
    try:
        while not stop.wait(1):
            pass
    finally:
        scheduler.shutdown(wait=True)
        global _scheduler
        _scheduler = None


@click.command("worker")
@with_appcontext
def worker_command():
    """Run the scheduler (dispatch, alerts, videos) and nothing else, until stopped.

    For deployments that keep the web workers free of it (SCHEDULER_ENABLED=false on the
    web side). Several workers, on several machines, may run at once on PostgreSQL: their
    claims never overlap."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo("worker: running the scheduler (SIGTERM or Ctrl-C to stop)")
    run_worker(current_app._get_current_object(), stop)
    click.echo("worker: stopped")
