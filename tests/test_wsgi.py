"""The serving entry point (``gunicorn wsgi:app``)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_serving_app_keeps_its_start_up_objects_out_of_the_garbage_collectors_scans(tmp_path):
    """A gunicorn worker imports ``wsgi``: what the app is built of lives as long as the
    process, so it is frozen (``gc.freeze``), and a full collection no longer pauses
    every thread of the worker to scan it again."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SCHEDULER_ENABLED": "false"}
    script = "import gc, wsgi; print(gc.get_freeze_count(), len(gc.get_objects()))"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    frozen, still_tracked = map(int, result.stdout.split())
    assert frozen > 50_000 and still_tracked < frozen / 10, (frozen, still_tracked)
