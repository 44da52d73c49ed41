"""Benchmark: four processes dispatching the same due slots on PostgreSQL.

    .venv/bin/python bench/concurrency.py                 # 5,000 slots, 4 processes
    .venv/bin/python bench/concurrency.py --slots 2000 --processes 2 --latency 50

Seeds a new database on the test PostgreSQL (127.0.0.1:54329, ``make postgres``) with N
due first messages (as bench/dispatch.py does), then starts the processes at once, each
running dispatch ticks (its own app, engine and pool of SEND_CONCURRENCY senders) until
nothing is due, all sending through one fake SendGrid on 127.0.0.1 that counts every
message it receives. Prints the messages received twice (must be 0), how the slots split
between the processes, and the throughput. Figures, never assertions.
"""

import argparse
import logging
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import fake_sendgrid  # noqa: E402
from bench.dispatch import NOW, build_app, new_database, seed  # noqa: E402


def dispatcher(url, api_url, start, results):
    from app.lifecycle.dispatch import dispatch_due

    app = build_app(url, api_url)
    logging.getLogger("app").setLevel(logging.WARNING)
    sent = 0
    with app.app_context():
        start.wait()
        while True:
            report = dispatch_due(NOW)
            sent += report.sent
            if not report.claimed and not report.left_for_next_tick:
                break
    results.put((os.getpid(), sent, time.perf_counter()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--latency", type=float, default=20, help="the fake's answer time, in ms")
    args = parser.parse_args()
    fake, api_url = fake_sendgrid.start(args.latency / 1000)
    url, drop = new_database("postgresql")
    try:
        seed(build_app(url, api_url), args.slots)
        fake_sendgrid.call(api_url, "/reset", "POST")
        ctx = multiprocessing.get_context("spawn")
        start, results = ctx.Barrier(args.processes + 1), ctx.Queue()
        workers = [ctx.Process(target=dispatcher, args=(url, api_url, start, results)) for _ in range(args.processes)]
        for w in workers:
            w.start()
        start.wait()
        began = time.perf_counter()
        done = [results.get(timeout=3600) for _ in workers]
        for w in workers:
            w.join()
        seconds = max(t for *_, t in done) - began
        stats = fake_sendgrid.call(api_url, "/stats")
        print(
            f"{args.slots} due first messages on PostgreSQL, {args.processes} processes × SEND_CONCURRENCY=8, "
            f"fake SendGrid answering after {args.latency:g} ms, {os.cpu_count()} cores"
        )
        print(f"  sent per process: {sorted(n for _, n, _ in done)} (total {sum(n for _, n, _ in done)})")
        print(f"  fake received {stats['received']}, duplicates {stats['duplicates']} (must be 0)")
        print(f"  throughput: {stats['received'] / seconds:.0f} slots/s ({seconds:.1f} s)")
    finally:
        fake.terminate()
        drop()


if __name__ == "__main__":
    main()
