"""The app served on 127.0.0.1 in a thread, for tests that need a real HTTP client (a browser, tuspy)."""

import threading
from contextlib import contextmanager

from werkzeug.serving import make_server


def closing(app):
    """Close every response body, even when the client hangs up half-way.

    Werkzeug's development server skips ``close()`` on the response when the socket is
    already gone (a browser that leaves a page while a poster is still downloading), which
    leaves the served file open until the garbage collector warns about it. A generator's
    ``finally`` runs when it is dropped unfinished, so the file is closed either way.
    """

    def wrapped(environ, start_response):
        body = app(environ, start_response)

        def chunks():
            try:
                yield from body
            finally:
                if hasattr(body, "close"):
                    body.close()

        return chunks()

    return wrapped


@contextmanager
def serving(app):
    """Yield the server's base URL while the app answers on a free port of 127.0.0.1."""
    server = make_server("127.0.0.1", 0, closing(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
