"""A small threaded HTTP server on 127.0.0.1 that plays an outside API in tests.

It records every request and answers with scripted replies::

    with FakeHTTPServer() as api:
        api.reply(202, headers={"X-Message-Id": "abc"}, path="/v3/mail/send")
        api.reply(hang=True)            # never answers: the client's timeout fires
        api.reply(drop=True)            # closes the connection without an answer
        api.reply(202, delay=0.05)      # answers after 50 ms
        ...
        api.requests[0].json()

Replies are used once each, in the order given (``times=None`` keeps one forever); a
request nothing was scripted for gets ``api.default`` (a 599 that names the request, so
a test that forgot a reply fails loudly). ``refused_url()`` is an address where nothing
listens.
"""

import atexit
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: object = b""  # bytes, str, or anything JSON-serialisable
    headers: dict = field(default_factory=dict)
    hang: bool = False
    drop: bool = False
    method: str | None = None
    path: str | None = None
    times: int | None = 1
    delay: float = 0  # seconds to wait before answering (a provider's latency)

    def matches(self, method, path):
        return (self.method is None or self.method == method) and (self.path is None or self.path == path)

    def payload(self):
        if isinstance(self.body, bytes):
            return self.body, None
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict  # names lower-cased
    body: bytes

    def json(self):
        return json.loads(self.body)

    def form(self):
        """Form fields, one value each (the last when repeated)."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog (5) overflows when a pool of senders, or several, connect at
    # once: a connection then waits a second for the SYN to be sent again, or fails.
    request_queue_size = 256


class FakeHTTPServer:
    def __init__(self):
        self.requests = []
        self.default = Reply(599, {"error": "the fake server has no reply scripted for this request"})
        self._replies = []
        self._lock = threading.Lock()
        self._release = threading.Event()  # set on stop: hanging handlers return
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reply(
        self, status=200, body=b"", headers=None, *, method=None, path=None, times=1, hang=False, drop=False, delay=0
    ):
        with self._lock:
            self._replies.append(Reply(status, body, dict(headers or {}), hang, drop, method, path, times, delay))
        return self

    def start(self):
        # A short poll interval: stop() waits for the serving loop to notice.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _next_reply(self, method, path):
        with self._lock:
            for reply in self._replies:
                if reply.matches(method, path):
                    if reply.times is not None:
                        reply.times -= 1
                        if reply.times <= 0:
                            self._replies.remove(reply)
                    return reply
        return self.default

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with fake._lock:
                    fake.requests.append(recorded)
                reply = fake._next_reply(self.command, parts.path)
                if reply.hang:
                    fake._release.wait()
                    self.close_connection = True
                    return
                if reply.drop:
                    self.close_connection = True
                    return
                if reply.delay:
                    fake._release.wait(reply.delay)
                payload, content_type = reply.payload()
                self.send_response(reply.status)
                headers = dict(reply.headers)
                if content_type and not any(k.lower() == "content-type" for k in headers):
                    headers["Content-Type"] = content_type
                for name, value in headers.items():
                    self.send_header(name, str(value))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, *args):  # keep test output clean
                pass

        return Handler


def refused_url():
    """An http://127.0.0.1 address where nothing listens (connections are refused).

    The port stays bound (never listening) until the test process ends, so no other
    server — another test run on this machine included — can take it meanwhile.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _held_sockets.append(sock)
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


_held_sockets = []
atexit.register(lambda: [sock.close() for sock in _held_sockets])
