"""One row (id 1) holding the values saved on the Settings screen; NULL = not saved there,
the environment's value applies. ``version`` goes up on every save: each process compares
it with the version it has cached (one indexed read per request or tick)."""

from sqlalchemy import Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.dbtypes import UTCDateTime
from app.extensions import db

SETTINGS_ROW_ID = 1


class ShopSettings(db.Model):
    __tablename__ = "shop_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    shop_name: Mapped[str | None] = mapped_column(String(80))
    brand_color: Mapped[str | None] = mapped_column(String(7))
    email_from_name: Mapped[str | None] = mapped_column(String(80))
    email_from: Mapped[str | None] = mapped_column(String(254))
    reply_to: Mapped[str | None] = mapped_column(String(254))
    timezone: Mapped[str | None] = mapped_column(String(64))
    public_base_url: Mapped[str | None] = mapped_column(String(255))
    quiet_hours: Mapped[str | None] = mapped_column(String(11))
    consent_text: Mapped[str | None] = mapped_column(Text)
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    logo_type: Mapped[str | None] = mapped_column(String(16))  # image/png | image/jpeg | image/webp
    logo_width: Mapped[int | None] = mapped_column(Integer)
    logo_height: Mapped[int | None] = mapped_column(Integer)
    updated_at = mapped_column(UTCDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(254))
