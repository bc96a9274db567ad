"""The web forms of accounts, administration, vehicles and exemptions (Flask-WTF, CSRF on each)."""

from __future__ import annotations

import wtforms
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from markupsafe import Markup, escape
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    PasswordField,
    SelectChoice,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, NumberRange, Optional, Regexp

from fleet.base.vocab import AGENCY_KINDS, CATEGORIES, COUNTIES, EXEMPTION_REASONS, POWER_TYPES, SECTORS
from fleet.domain.exemptions import MIN_REASON_LENGTH
from fleet.domain.identity import MIN_PASSWORD_LENGTH
from fleet.web.labels import term_label
from fleet.web.params import MAX_ID


class Select(wtforms.widgets.Select):
    """WTForms' select, its plain options written directly: building each option's attributes
    through html_params was a fifth of the vehicle list's time (its filters have some sixty)."""

    @classmethod
    def render_option(cls, choice: SelectChoice, **kwargs: object) -> Markup:
        if kwargs or choice.render_kw or isinstance(choice.value, bool):
            return super().render_option(choice, **kwargs)
        chosen = " selected" if choice.selected else ""
        return Markup(f'<option{chosen} value="{escape(choice.value)}">{escape(choice.label or choice.value)}</option>')


class SelectField(wtforms.SelectField):
    widget = Select()


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
    batch = IntegerField(_l("导入批次"), validators=[Optional(), NumberRange(min=1, max=MAX_ID)])

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


class AgencyForm(FlaskForm):
    # InputRequired: a field missing from the post is an error, not the stored value kept silently.
    name = StringField(_l("单位名称"), validators=[InputRequired(), Length(max=200)])
    aliases = StringField(
        _l("别名"),
        validators=[Optional(), Length(max=1000)],
        description=_l("简称、曾用名等，多个用分号或逗号分隔，例如：市公安局；公安局。一个别名只能指一个单位。"),
    )
    credit_code = StringField(_l("统一社会信用代码"), validators=[Optional(), Length(max=30)])
    kind = SelectField(_l("单位类型"), validators=[InputRequired()])
    sector = SelectField(_l("行业"), validators=[InputRequired()])
    county = SelectField(_l("所属县区"), validators=[InputRequired()])
    contact_emails = StringField(
        _l("联系邮箱"), validators=[Optional(), Length(max=1000)], description=_l("多个邮箱用逗号或分号分隔。")
    )
    submit = SubmitField(_l("保存"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = [SelectChoice(v, term_label(v)) for v in AGENCY_KINDS.values]
        self.sector.choices = [SelectChoice(v, term_label(v)) for v in SECTORS.values]
        self.county.choices = [SelectChoice(v, term_label(v)) for v in COUNTIES.values]


class RegistryUploadForm(FlaskForm):
    file = FileField(
        _l("单位名录文件"),
        validators=[FileRequired(), FileAllowed(["xlsx", "xlsm", "xls", "xlsb", "ods", "csv", "tsv", "txt", "htm", "html"],
                                                   _l("请上传 Excel、OpenDocument、CSV 或网页表格文件。"))],
        description=_l("第一行为表头：单位名称、单位类型、行业、所属县区、联系邮箱、统一社会信用代码、别名（简称、曾用名，用分号或逗号分隔）。任何一行有错则全部不导入。"),
    )
    submit = SubmitField(_l("导入"))


class UserForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[DataRequired(), Length(max=80)])
    role = SelectField(
        _l("角色"),
        choices=[SelectChoice("agency", _l("单位车辆管理员")), SelectChoice("reviewer", _l("审核员")), SelectChoice("admin", _l("管理员"))],
        validators=[DataRequired()],
    )
    agency = SelectField(_l("所属单位"), choices=[], validators=[Optional()], description=_l("单位车辆管理员必填。"))
    email = StringField(_l("电子邮箱"), validators=[Optional(), Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", message=_l("电子邮箱格式不正确。")), Length(max=254)])
    locale = SelectField(_l("界面语言"), choices=[SelectChoice("zh", "中文"), SelectChoice("en", "English")])
    password = PasswordField(
        _l("初始密码"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, message=_l("密码至少需要 %(min)d 个字符。"))],
    )
    submit = SubmitField(_l("创建用户"))


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        _l("新密码"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, message=_l("密码至少需要 %(min)d 个字符。"))],
    )
    submit = SubmitField(_l("重置密码"))


class RulePackForm(FlaskForm):
    pack = SelectField(_l("生效的规则包"), choices=[], validators=[DataRequired()])
    confirm = BooleanField(
        _l("确认更换"),
        description=_l("更换后，所有页面、报告和月度邮件都按所选规则包重新计算达标情况。"),
    )
    submit = SubmitField(_l("保存"))
