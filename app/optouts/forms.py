from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length


class AddOptOutForm(FlaskForm):
    channel = SelectField("Channel", choices={"email": "Email", "sms": "SMS"})
    contact = StringField(
        "Email address or phone",
        validators=[DataRequired(message="Enter the email address or phone number."), Length(max=254)],
        description="Phone numbers in international format, e.g. +15551234567.",
    )
    detail = StringField("Note", validators=[Length(max=200)], description="Optional, e.g. “asked by phone”.")
    submit = SubmitField("Add to the opt-out list")
