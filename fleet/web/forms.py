"""The web forms of accounts, administration, vehicles and exemptions (Flask-WTF, CSRF on each)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    SelectChoice,
    DateField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional

from fleet.exemptions import MIN_REASON_LENGTH
from fleet.users import MIN_PASSWORD_LENGTH
from fleet.vocab import CATEGORIES, COUNTIES, EXEMPTION_REASONS, POWER_TYPES
from fleet.web.labels import term_label


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


def _choices(values: list[str], everything: str) -> list[tuple[str, str]]:
    return [SelectChoice("", everything)] + [SelectChoice(v, term_label(v)) for v in values]


class VehicleFilterForm(FlaskForm):
    """The vehicle list's filters, read from the query string (a GET form needs no CSRF token)."""

    class Meta:
        csrf = False

    q = StringField(_l("搜索"), validators=[Optional(), Length(max=100)], description=_l("VIN、号牌或品牌型号的一部分"))
    agency = SelectField(_l("单位"), choices=[], validators=[Optional()], validate_choice=False)
    category = SelectField(_l("车辆类别"), validators=[Optional()])
    power = SelectField(_l("动力类型"), validators=[Optional()])
    nev = SelectField(_l("新能源"), choices=[SelectChoice("", _l("全部")), SelectChoice("yes", _l("新能源")), SelectChoice("no", _l("非新能源"))], validators=[Optional()])
    county = SelectField(_l("所属县区"), validators=[Optional()])
    year = IntegerField(_l("购置年份"), validators=[Optional(), NumberRange(min=2000, max=2100)])
    acquired_from = DateField(_l("购置日期从"), validators=[Optional()])
    acquired_to = DateField(_l("购置日期至"), validators=[Optional()])
    batch = IntegerField(_l("导入批次"), validators=[Optional(), NumberRange(min=1)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        everything = _l("全部")
        self.category.choices = _choices(CATEGORIES.values, everything)
        self.power.choices = _choices(POWER_TYPES.values, everything)
        self.county.choices = _choices(COUNTIES.values, everything)


class ExemptionRequestForm(FlaskForm):
    reason_category = SelectField(_l("原因类别"), validators=[DataRequired()])
    reason = TextAreaField(
        _l("说明"),
        validators=[DataRequired(), Length(min=MIN_REASON_LENGTH, max=2000, message=_l("说明至少需要 %(min)d 个字。"))],
        description=_l("说明为什么新能源车辆无法满足使用需求，例如线路里程、载重、作业方式或充电条件。"),
    )
    submit = SubmitField(_l("提交申请"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reason_category.choices = [SelectChoice(v, term_label(v)) for v in EXEMPTION_REASONS.values]


class DecisionForm(FlaskForm):
    comment = TextAreaField(_l("审核意见"), validators=[Optional(), Length(max=2000)], description=_l("驳回时必填。"))
    approve = SubmitField(_l("批准"))
    reject = SubmitField(_l("驳回"))


class CatalogueEntryForm(FlaskForm):
    category = SelectField(_l("车辆类别"), validators=[DataRequired()])
    model_pattern = StringField(
        _l("车型"),
        validators=[DataRequired(), Length(max=200)],
        description=_l("品牌型号中的一段文字（不区分大小写），或用 * 代表任意文字、? 代表一个字符匹配整个品牌型号，例如 ZBH5250*。"),
    )
    description = StringField(_l("配置说明"), validators=[DataRequired(), Length(max=500)])
    reason = TextAreaField(_l("无新能源车型的原因"), validators=[DataRequired(), Length(min=MIN_REASON_LENGTH, max=2000)])
    active = BooleanField(_l("生效"), default=True)
    submit = SubmitField(_l("保存"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.category.choices = [SelectChoice(v, term_label(v)) for v in CATEGORIES.values]
