"""The web forms of accounts, administration, vehicles and exemptions (Flask-WTF, CSRF on each)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length

from fleet.users import MIN_PASSWORD_LENGTH


class LoginForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[DataRequired(), Length(max=80)])
    password = PasswordField(_l("密码"), validators=[DataRequired()])
    submit = SubmitField(_l("登录"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("当前密码"), validators=[DataRequired()])
    new_password = PasswordField(
        _l("新密码"),
        validators=[
            DataRequired(),
            Length(min=MIN_PASSWORD_LENGTH, message=_l("密码至少需要 %(min)d 个字符。")),
        ],
    )
    confirm = PasswordField(
        _l("确认新密码"), validators=[DataRequired(), EqualTo("new_password", message=_l("两次输入的密码不一致。"))]
    )
    submit = SubmitField(_l("修改密码"))
