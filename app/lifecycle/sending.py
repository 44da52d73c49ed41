"""Step 5, the middle: hand claimed messages to the providers through a bounded pool.

``SEND_CONCURRENCY`` sender threads call the providers; no database transaction is open
in them or in the tick while they do (the outbox provider writes its own row in its own
short transaction, like a real provider's acceptance). Each channel has a limit on how
many calls may start in any one second (``EMAIL_RATE_PER_SECOND``,
``SMS_RATE_PER_SECOND``; 0 is no limit), shared by the process's senders; the outbox
provider, which leaves the machine for nowhere, is not limited.

The pool only sends and answers; the tick records the answers (results.py).
"""

import logging
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

from app.providers import ProviderError

log = logging.getLogger("app.lifecycle")


class RateLimiter:
    """At most ``per_second`` starts in any window of one second (a sliding log)."""

    def __init__(self, per_second):
        self.size = max(1, int(per_second)) if per_second else 0
        # A fractional rate (0.5/s) spaces the starts 1 / rate apart instead.
        self.window = 1.0 if not per_second or per_second >= 1 else 1.0 / per_second
        self._starts = deque()
        self._lock = threading.Lock()

    def wait(self):
        if not self.size:
            return
        while True:
            with self._lock:
                now = time.monotonic()
                while self._starts and now - self._starts[0] >= self.window:
                    self._starts.popleft()
                if len(self._starts) < self.size:
                    self._starts.append(now)
                    return
                pause = self.window - (now - self._starts[0])
            time.sleep(pause)


@dataclass
class Answer:
    """One message's outcome: the provider's message id, or its error."""

    claim: object
    channel: str
    provider: str
    message_id: str | None = None
    error: ProviderError | None = None


# How far ahead of the senders the tick claims, in time: the messages the senders get
# through in this long (at their recent pace) may wait for one, claimed and committed.
AHEAD_SECONDS = 0.5
# How long the tick waits, after one answer, for more to record with it.
LINGER_SECONDS = 0.05


class SendPool:
    """A bounded pool of ``SEND_CONCURRENCY`` senders; ``free`` says how many more
    messages it takes now."""

    def __init__(self, app, config):
        self.app = app
        self.size = max(1, int(config["SEND_CONCURRENCY"]))
        # The senders and the limits live as long as the process: a tick's limit counts the
        # calls of the tick before it, and each sender keeps its SDK client and connections.
        shared = app.extensions.setdefault("send_pool", {})
        key = (self.size, config["EMAIL_RATE_PER_SECOND"], config["SMS_RATE_PER_SECOND"])
        if shared.get("key") != key:
            if shared.get("executor") is not None:
                shared["executor"].shutdown(wait=False)
            shared.update(
                key=key,
                executor=ThreadPoolExecutor(self.size, thread_name_prefix="sender"),
                limits={"email": RateLimiter(key[1]), "sms": RateLimiter(key[2])},
            )
        self.limits, self._pool = shared["limits"], shared["executor"]
        self.most_ahead = max(2 * self.size, int(config.get("DISPATCH_BATCH_SIZE") or 0))
        self._in_flight = set()
        self._answered = deque()  # when the last second's answers came in (monotonic)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        wait(self._in_flight)  # a tick leaves nothing in flight behind it

    @property
    def depth(self):
        """Messages it holds at most, sending or waiting for a sender: one per sender and
        one more each, or what the senders answer in ``AHEAD_SECONDS`` at their pace of
        the last second when that is more (a provider answering at once: the claims and
        records are then made in batches, not a handful at a time), at most
        ``DISPATCH_BATCH_SIZE``. Slow or hanging providers keep it at twice the senders."""
        answered = self._answered
        cutoff = time.monotonic() - 1.0
        while answered and answered[0] < cutoff:
            answered.popleft()
        return max(2 * self.size, min(self.most_ahead, int(len(answered) * AHEAD_SECONDS)))

    @property
    def free(self):
        """Messages it takes now (so the next claim is made while the senders are busy,
        never more than ``depth`` ahead)."""
        depth = self.depth
        room = depth - len(self._in_flight)
        # A batch at a time: a claim statement costs about the same for one slot or fifty.
        return room if room >= max(1, depth // 4) or not self._in_flight else 0

    @property
    def busy(self):
        return bool(self._in_flight)

    def submit(self, claim, message, provider):
        future = self._pool.submit(self._send, claim, message, provider)
        self._in_flight.add(future)

    def answers(self, *, block=True, linger=LINGER_SECONDS):
        """The answers that are in (waits for at least one when ``block``).

        After the first, it waits up to ``linger`` for a batch worth recording in one
        transaction (a quarter of ``depth``, or all in flight): answers coming in one by
        one would otherwise be recorded one transaction each.

        A sender that died of a BaseException (the process is going down) is re-raised
        after the other senders' answers came in, so they can be recorded first."""
        if not self._in_flight:
            return []
        done, _ = wait(self._in_flight, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        if block and linger > 0:
            want = min(len(self._in_flight), max(1, self.depth // 4))
            deadline = time.monotonic() + linger
            while len(done) < want and not any(f.exception() for f in done):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(0.005, left))
                done = {f for f in self._in_flight if f.done()}
        self._in_flight -= done
        self._answered.extend([time.monotonic()] * len(done))
        dying = [f for f in done if f.exception() is not None]
        if dying:
            rest, _ = wait(self._in_flight)
            self._in_flight.clear()
            done |= rest
            dying = [f for f in done if f.exception() is not None]
            self.pending_crash = dying[0].exception()
        return [f.result() for f in done if f.exception() is None]

    pending_crash = None

    def _send(self, claim, message, provider):
        channel = message.channel
        if getattr(provider, "rate_limited", True):
            self.limits[channel].wait()
        with self.app.app_context():
            try:
                return Answer(claim, channel, provider.name, message_id=provider.send(message))
            except ProviderError as exc:
                return Answer(claim, channel, provider.name, error=exc)
            except Exception as exc:  # a provider bug must not kill the tick or vanish
                log.exception("provider %s raised unexpectedly", provider.name)
                # It may have raised after handing the message over: never re-sent on its own.
                error = ProviderError(f"unexpected provider error: {exc!r}", retryable=False, outcome_unknown=True)
                return Answer(claim, channel, provider.name, error=error)
