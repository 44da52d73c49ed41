"""Alert state: one row per SLO breach, from the moment it opens until it resolves.

The row is what makes "one alert email per breach" hold: the email is sent for a row
whose ``notified_at`` is empty, and at most one open row exists per kind (a partial unique
index), even with several processes evaluating at once.
"""

from sqlalchemy import Date, Index, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import isoformat
from app.dbtypes import UTCDateTime
from app.extensions import db
from app.lifecycle.models import SlotSend, TestimonialRequest


class Alert(db.Model):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # one of app.monitoring.slo.KINDS
    message: Mapped[str] = mapped_column(Text)  # as first seen
    opened_at = mapped_column(UTCDateTime, nullable=False)
    resolved_at = mapped_column(UTCDateTime)
    # Set when the alert email was handed to the provider (claimed just before the send).
    notified_at = mapped_column(UTCDateTime)
    notify_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "uq_alerts_open_kind",
            "kind",
            unique=True,
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
        Index("ix_alerts_opened", "opened_at"),
    )

    def to_dict(self):
        return {
            "id": self.id,
            "kind": self.kind,
            "message": self.message,
            "opened_at": isoformat(self.opened_at),
            "resolved_at": isoformat(self.resolved_at),
            "notified_at": isoformat(self.notified_at),
            "notify_error": self.notify_error,
        }


class DailyStat(db.Model):
    """One count of the home page's figures per UTC day, campaign and measure.

    Kept by database triggers on ``testimonial_requests`` and ``slot_sends`` (migration
    0005), so every write path, ORM or Core, keeps it exact and the home page sums a few
    hundred rows instead of grouping the period's requests and sends. Measures:

    - ``created``: requests created that day, by their current ``status``;
    - ``first_sent`` / ``first_sent_clicked`` / ``first_sent_submitted``: requests whose
      first message went out that day, and of those the ones clicked / submitted;
    - ``send`` / ``reminder``: finished slot sends (slot 0 / slot > 0) by ``status``
      (sent or failed), ``provider`` and ``channel``.

    ``rollup.rebuild_daily_stats`` recomputes the table from the rows it summarises.

    ``shard`` (migrations 0014, 0015): on PostgreSQL a count is the sum of up to 64 rows,
    each written by the connections of one shard (``pg_backend_pid() % 64``), so that concurrent
    writers do not queue for one row's lock. Read it summed, as every reader here does.
    SQLite has one writer at a time: its triggers write shard 0 only.
    """

    __tablename__ = "daily_stats"

    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=0, server_default="0")
    day = mapped_column(Date, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    measure: Mapped[str] = mapped_column(String(24), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), primary_key=True, default="")
    provider: Mapped[str] = mapped_column(String(20), primary_key=True, default="")
    channel: Mapped[str] = mapped_column(String(5), primary_key=True, default="")
    n: Mapped[int] = mapped_column(default=0)


# Covering indexes for the home page's aggregates (created in migration 0003): each
# period query reads only the index, never the table, so 200,000 rows stay fast.
Index(
    "ix_requests_created_campaign_status",
    TestimonialRequest.created_at,
    TestimonialRequest.campaign_id,
    TestimonialRequest.status,
)
Index(
    "ix_requests_sent_engagement",
    TestimonialRequest.sent_at,
    TestimonialRequest.campaign_id,
    TestimonialRequest.clicked_at,
    TestimonialRequest.submitted_at,
)
Index(
    "ix_slot_sends_finished_outcome",
    SlotSend.finished_at,
    SlotSend.status,
    SlotSend.provider,
    SlotSend.channel,
    SlotSend.slot,
)
# The SLO panel's due-send p95 over the last day reads this index only (migration 0005).
Index("ix_slot_sends_due_latency", SlotSend.finished_at, SlotSend.status, SlotSend.attempts, SlotSend.due_at)
