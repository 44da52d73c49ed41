"""gunicorn's settings for this app: read by ``gunicorn wsgi:app`` started in this
directory (or given with ``--config``), and by ``bench/webhooks.py`` for both servers it
compares. Command-line options (``--workers``, ``--threads``, ``--bind``) still apply.

``reuse_port``: each worker listens on a socket of its own, and the kernel spreads new
connections over the workers. With one shared socket, the worker that accepts a
keep-alive connection keeps it for good, and in ``bench/webhooks.py`` one worker of two
usually held 12 to 15 of the 16 clients' connections: one core did the work while the
other waited, and the slowest webhooks queued behind it. Measured with and without it in
README "Scaling out".
"""

reuse_port = True
