"""Messages: simple mode (heading, body, button in the shop's email layout), reminder-aware
default wording, and optional templates for one reminder number

The built-in templates move to the email layout and to wording that reads right for any
reminder (``reminder_number`` / ``reminders_left``) — but only where the merchant has not
edited them: a template whose text differs from the one 0001 created is left alone.

Revision ID: 0012
Revises: 0011
"""

from alembic import op
import sqlalchemy as sa

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# As 0001 created them (what an unedited default still says).
OLD_SMS_INITIAL = (
    "{{ shop_name }}: Hi {{ first_name }}, how do you like your {{ product_title }}? Share a quick "
    "video: {{ link }} Reply STOP to opt out."
)
OLD_SMS_REMINDER = (
    "{{ shop_name }}: Hi {{ first_name }}, a last nudge - we'd love your video about "
    "{{ product_title }}: {{ link }} Reply STOP to opt out."
)
OLD_EMAIL_INITIAL_SUBJECT = "How is your {{ product_title }}? A quick video?"
OLD_EMAIL_REMINDER_SUBJECT = "Reminder: your thoughts on {{ product_title }}"

NEW = {
    ("email", "initial"): dict(
        mode="simple",
        subject="How is your {{ product_title }}? A quick video?",
        heading="How do you like your {{ product_title }}?",
        body=(
            "Hi {{ first_name }},\n\n"
            "Thank you for your order from {{ shop_name }}! We would love a short video about it: "
            "30 seconds on your phone is plenty, and it helps other customers choose."
        ),
        button_text="Record my video",
        html=None,
        text="",
    ),
    ("email", "reminder"): dict(
        mode="simple",
        subject=(
            "{% if reminders_left == 0 %}Last reminder{% else %}Reminder{% endif %}: "
            "your thoughts on {{ product_title }}"
        ),
        heading=(
            "{% if reminders_left == 0 %}One last ask about your {{ product_title }}"
            "{% else %}Still enjoying your {{ product_title }}?{% endif %}"
        ),
        body=(
            "Hi {{ first_name }},\n\n"
            "We'd still love to hear what you think of your {{ product_title }}. A short video from "
            "your phone is all it takes.\n\n"
            "{% if reminders_left == 0 %}This is the last time we ask: thank you either way!"
            "{% else %}Thank you, {{ shop_name }}{% endif %}"
        ),
        button_text="Record my video",
        html=None,
        text="",
    ),
    ("sms", "initial"): dict(
        text=(
            "{{ shop_name }}: Hi {{ first_name }}! A short video about your {{ product_title }}? "
            "{{ link }} STOP to opt out"
        )
    ),
    ("sms", "reminder"): dict(
        text=(
            "{{ shop_name }}: Hi {{ first_name }}, {% if reminders_left == 0 %}last reminder{% else %}"
            "a quick reminder{% endif %}: a short video about your {{ product_title }}? {{ link }} "
            "STOP to opt out"
        )
    ),
}


def upgrade():
    with op.batch_alter_table("message_templates") as batch:
        batch.add_column(sa.Column("mode", sa.String(6), nullable=False, server_default="html"))
        batch.add_column(sa.Column("heading", sa.Text()))
        batch.add_column(sa.Column("body", sa.Text()))
        batch.add_column(sa.Column("button_text", sa.String(80)))
    with op.batch_alter_table("campaigns") as batch:
        # {"email": {"2": template id}, "sms": {...}}: a different template for one reminder.
        batch.add_column(sa.Column("reminder_template_ids", sa.Text()))

    templates = sa.table(
        "message_templates",
        sa.column("id", sa.Integer),
        sa.column("channel", sa.String),
        sa.column("kind", sa.String),
        sa.column("subject", sa.String),
        sa.column("text", sa.Text),
        sa.column("is_default", sa.Boolean),
        sa.column("mode", sa.String),
        sa.column("heading", sa.Text),
        sa.column("body", sa.Text),
        sa.column("button_text", sa.String),
        sa.column("html", sa.Text),
    )
    unedited = {
        ("email", "initial"): templates.c.subject == OLD_EMAIL_INITIAL_SUBJECT,
        ("email", "reminder"): templates.c.subject == OLD_EMAIL_REMINDER_SUBJECT,
        ("sms", "initial"): templates.c.text == OLD_SMS_INITIAL,
        ("sms", "reminder"): templates.c.text == OLD_SMS_REMINDER,
    }
    for (channel, kind), values in NEW.items():
        condition = sa.and_(templates.c.channel == channel, templates.c.kind == kind, unedited[(channel, kind)])
        if channel == "email":
            # An edited HTML or text body is an edit too.
            condition = sa.and_(condition, templates.c.html.like("%Record my video</a></p>%"))
        op.execute(templates.update().where(condition).values(**values))


def downgrade():
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("reminder_template_ids")
    with op.batch_alter_table("message_templates") as batch:
        batch.drop_column("button_text")
        batch.drop_column("body")
        batch.drop_column("heading")
        batch.drop_column("mode")
