"""Imports every model so that Alembic and the app see the whole schema."""

from app.auth.models import Admin  # noqa: F401
from app.campaigns.models import Campaign, MessageTemplate  # noqa: F401
from app.intake.models import OrderCancellation, OrderEvent, OrderEventItem  # noqa: F401
from app.lifecycle.heartbeat import DispatchTick  # noqa: F401
from app.lifecycle.models import SlotSend, TestimonialRequest, TestimonialRequestEvent  # noqa: F401
from app.monitoring.models import Alert, DailyStat  # noqa: F401
from app.optouts.models import ContactErasure, ContactEvent, OptOut  # noqa: F401
from app.outbox.models import OutboxMessage  # noqa: F401
from app.settings.models import ShopSettings  # noqa: F401
from app.testimonials.models import Testimonial, VideoUpload  # noqa: F401
