"""A fake SendGrid v3 ``mail/send`` on 127.0.0.1 for the dispatch benchmarks.

Run in its own process (so its threads do not share the dispatcher's interpreter lock):
it answers every POST after ``latency`` seconds with 202 and an ``X-Message-Id``, counts
the messages it received per (request id, slot) from the custom args every message
carries, and reports on ``GET /stats``: ``{"received", "duplicates", "peak_in_flight"}``.
``POST /latency?seconds=…`` changes the latency; ``POST /reset`` forgets what it counted.
"""

import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakeSendGrid(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default (5) drops connections under a burst of senders

    def __init__(self, latency):
        super().__init__(("127.0.0.1", 0), Handler)
        self.latency = latency
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.seen = Counter()
            self.in_flight = self.peak_in_flight = 0

    def stats(self):
        with self.lock:
            return {
                "received": sum(self.seen.values()),
                "duplicates": sum(n - 1 for n in self.seen.values() if n > 1),
                "peak_in_flight": self.peak_in_flight,
            }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._answer(200, json.dumps(self.server.stats()).encode())

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        if parts.path == "/latency":
            self.server.latency = float(parse_qs(parts.query)["seconds"][0])
            return self._answer(200, b"{}")
        if parts.path == "/reset":
            self.server.reset()
            return self._answer(200, b"{}")
        server = self.server
        with server.lock:
            server.in_flight += 1
            server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
        answered = False
        try:
            args = json.loads(body).get("custom_args") or {}
            if server.latency:
                time.sleep(server.latency)
            # The call ends here, before its answer is written: counted after the write, a
            # sender that had its answer and sent its next call was sometimes counted twice
            # (10 in flight from 8 senders).
            with server.lock:
                server.seen[(args.get("request_id"), args.get("slot"))] += 1
                server.in_flight -= 1
                answered = True
            self._answer(202, b"", {"X-Message-Id": uuid.uuid4().hex[:22]})
        finally:
            if not answered:
                with server.lock:
                    server.in_flight -= 1

    def _answer(self, status, payload, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def serve(latency, port_pipe):
    """Entry point of the fake's process: sends its port back, then serves forever."""
    server = FakeSendGrid(latency)
    port_pipe.send(server.server_address[1])
    server.serve_forever(poll_interval=0.05)


def start(latency):
    """Start the fake in a child process; returns (process, base url)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=serve, args=(latency, theirs), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{ours.recv()}"


def call(url, path, method="GET"):
    import urllib.request

    request = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")
