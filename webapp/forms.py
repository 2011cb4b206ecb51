"""Flask-WTF forms: every form carries a CSRF token; validation messages are shown by the field."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from models import LOGIN_ROLES

ROLE_CHOICES = [SelectChoice(role.value, role.label) for role in LOGIN_ROLES]


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    next = HiddenField()
    #: The browser's time zone (filled in by static/timezone.js): proposed to a user with none.
    browser_tz = HiddenField()


class ChooseAccountForm(FlaskForm):
    user_id = RadioField("Organisation", validators=[DataRequired()])


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(max=256)])
    browser_tz = HiddenField()


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired(), Length(max=256)]
    )
    new_password = PasswordField("New password", validators=[DataRequired(), Length(max=256)])


class InviteForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    role = SelectField("Role", choices=ROLE_CHOICES, validators=[DataRequired()])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES, validators=[DataRequired()])


class AssignmentForm(FlaskForm):
    coordinator_id = SelectField("Coordinator", coerce=int, validate_choice=False)
    manager_id = SelectField("Hiring manager", coerce=int, validate_choice=False)
