"""Flask-WTF forms (CSRF included) for the admin UI."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask_wtf import FlaskForm
from wtforms import (
    DateTimeLocalField,
    EmailField,
    IntegerField,
    PasswordField,
    RadioField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    Length,
    NumberRange,
    Optional,
    Regexp,
    StopValidation,
    ValidationError,
)

from .versions import GRACE_MAX_DAYS, GRACE_MODE_MESSAGE, GRACE_RANGE_MESSAGE

SLUG_HELP = "lower-case letters, digits and hyphens, e.g. privacy"


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class PolicyForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    slug = StringField(
        "Slug (used in public URLs)",
        validators=[
            DataRequired(),
            Regexp(r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$", message=f"Use {SLUG_HELP}."),
        ],
    )


class VersionForm(FlaskForm):
    body_md = TextAreaField("Text (Markdown)", validators=[DataRequired()])


def _check_zone(form, field) -> None:
    try:
        ZoneInfo(field.data)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("Not an IANA time zone (e.g. Europe/Paris, UTC).") from exc


class DaysField(IntegerField):
    """Whole days; empty means the default, and text that is no number gets the range sentence.

    IntegerField would say "Not a valid integer value." and then NumberRange would add its own
    message: one sentence saying what to enter is clearer.
    """

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist or not valuelist[0].strip():
            return  # keeps the default
        try:
            self.data = int(valuelist[0])
        except ValueError as exc:
            self.data = None
            raise ValueError(GRACE_RANGE_MESSAGE) from exc

    def pre_validate(self, form) -> None:
        if self.process_errors:
            raise StopValidation()  # the parse error above is the whole story


class PublishForm(FlaskForm):
    effective_at = DateTimeLocalField(
        "Effective from", format="%Y-%m-%dT%H:%M", validators=[DataRequired()]
    )
    timezone = StringField("Time zone", validators=[DataRequired(), _check_zone])
    summary = TextAreaField("Summary of changes", validators=[DataRequired(), Length(max=2000)])
    verdict = RadioField(
        "Type of change",
        choices=[
            SelectChoice("cosmetic", "Cosmetic — no change in meaning"),
            SelectChoice("minor", "Minor — same obligations, different wording"),
            SelectChoice("material", "Material — changes rights or obligations"),
        ],
        validators=[DataRequired()],
    )
    override_reason = TextAreaField(
        "Why you disagree with the suggestion", validators=[Optional(), Length(max=2000)]
    )
    acceptance_mode = RadioField(
        "Acceptance",
        choices=[
            SelectChoice("explicit", "Users must click “I accept”"),
            SelectChoice("notice", "Notice only (acceptance implied by continued use)"),
            SelectChoice("none", "No acceptance needed"),
        ],
        default="explicit",
        validators=[DataRequired()],
    )
    grace_days = DaysField(
        "Grace period (days)",
        default=0,
        validators=[NumberRange(min=0, max=GRACE_MAX_DAYS, message=GRACE_RANGE_MESSAGE)],
        render_kw={"min": 0, "max": GRACE_MAX_DAYS, "step": 1, "inputmode": "numeric"},
    )

    # The notice (docs/notifications.md): email by default for material changes only.
    send_email = RadioField(
        "Email the users",
        choices=[
            SelectChoice("default", "As the type of change suggests (material: yes)"),
            SelectChoice("yes", "Yes, email everyone with a deliverable address"),
            SelectChoice("no", "No, in-app notice only"),
        ],
        default="default",
        validators=[Optional()],
    )
    notice_at = DateTimeLocalField(
        "Send the notice at", format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )
    window_override_reason = TextAreaField(
        "Why less notice than the minimum", validators=[Optional(), Length(max=2000)]
    )

    def validate_grace_days(self, field: DaysField) -> None:
        if field.data and self.acceptance_mode.data in ("notice", "none"):
            raise ValidationError(GRACE_MODE_MESSAGE)

    def effective_datetime(self) -> datetime:
        return self.effective_at.data.replace(tzinfo=ZoneInfo(self.timezone.data))

    def notice_datetime(self) -> datetime | None:
        if self.notice_at.data is None:
            return None
        return self.notice_at.data.replace(tzinfo=ZoneInfo(self.timezone.data))

    def email_choice(self) -> bool | None:
        return {"yes": True, "no": False}.get(self.send_email.data or "default")


class ApiKeyForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)])


class EmptyForm(FlaskForm):
    """CSRF token only, for buttons that POST."""


def common_zones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc"))
