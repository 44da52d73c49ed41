"""A row per dispatch tick: the scheduler's heartbeat, shown on the dashboard."""

import json
from datetime import timedelta

from sqlalchemy import Text, delete, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from app.dbtypes import UTCDateTime
from app.extensions import db

KEEP_DAYS = 7


class DispatchTick(db.Model):
    __tablename__ = "dispatch_ticks"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at = mapped_column(UTCDateTime, nullable=False, index=True)
    finished_at = mapped_column(UTCDateTime, nullable=False)
    source: Mapped[str] = mapped_column(default="scheduler")  # scheduler | cli
    report: Mapped[str] = mapped_column(Text)


def record_tick(started_at, finished_at, report, source="scheduler"):
    db.session.add(
        DispatchTick(started_at=started_at, finished_at=finished_at, source=source, report=json.dumps(report.to_dict()))
    )
    db.session.execute(delete(DispatchTick).where(DispatchTick.started_at < started_at - timedelta(days=KEEP_DAYS)))
    db.session.commit()


def record_ticks(ticks, source="scheduler"):
    """Heartbeats of many ticks at once, ``[(started_at, report), ...]`` (the demo's
    history): one INSERT."""
    if ticks:
        db.session.execute(
            insert(DispatchTick.__table__),
            [
                {"started_at": at, "finished_at": at, "source": source, "report": json.dumps(report.to_dict())}
                for at, report in ticks
            ],
        )
        db.session.commit()


def last_tick():
    return db.session.scalar(select(DispatchTick).order_by(DispatchTick.started_at.desc()).limit(1))
