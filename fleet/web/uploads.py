"""The upload flow: template, upload, preview with row-level findings, annotated workbook, commit, history.

Agency users upload for their own agency; reviewers upload on behalf of an agency they choose. Small
files are validated and committed within the request; larger ones (IMPORT_BACKGROUND_BYTES) by a
background job (fleet.jobs) while the page polls the batch's status, so it never blocks.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy.orm import Session, joinedload
from wtforms import SubmitField
from wtforms.validators import InputRequired

from fleet import jobs
from fleet.base.db import get_session
from fleet.base.labels import batch_status_label
from fleet.base.models import Agency, ImportBatch, UploadFile
from fleet.base.pagination import Page, paginate
from fleet.base.periods import Period
from fleet.domain import reporting
from fleet.web.auth import agency_scope, can_see_agency, role_required
from fleet.web.forms import SelectField
from fleet.web.params import id_arg, page_arg
from imports.annotate import annotate_workbook
from imports.headers import KEYS
from imports.normalise import VOCABULARY_KEYS
from imports.package import UnusableFile, check_package
from imports.report import ValidationReport
from imports.stage import committed_batch, stage_batch
from imports.validate import PREVIEW_FIRST_ROWS, PREVIEW_MAX_ROWS
from imports.template import Prefill, write_template

bp = Blueprint("uploads", __name__, url_prefix="/uploads")

# An admin has everything a reviewer has, uploads on behalf of an agency included.
UPLOADERS = ("agency", "reviewer", "admin")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HISTORY_PAGE_SIZE = 20
# The preview lists this many findings; the annotated workbook and its first sheet hold them all.
PREVIEW_LIMIT = 500

# The pipeline's steps as the progress bar names them.
STEP_LABELS = {
    "check": _l("正在检查文件…"),
    "read": _l("正在读取工作表…"),
    "normalise": _l("正在整理数据…"),
    "validate": _l("正在逐行核查…"),
    "validated": _l("核查完成"),
    "stage": _l("正在保存…"),
    "commit": _l("正在写入数据库…"),
    "annotate": _l("正在标注工作簿…"),
    "done": _l("即将完成…"),
}


_MEDIA_TYPES = {".xlsx": XLSX, ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12", ".xls": "application/vnd.ms-excel",
                ".csv": "text/csv", ".ods": "application/vnd.oasis.opendocument.spreadsheet"}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\"]")


def download_name(file_name: str | None) -> str:
    """The upload's name as a download's: its last path segment (a name as given by the browser may be
    "../../etc/passwd" or "C:\\x\\y.xls"), without control characters or leading dots."""
    name = re.split(r"[\\/]", file_name or "")[-1]
    name = _UNSAFE_NAME.sub("", name).strip().lstrip(".").strip()
    return name or "upload.xlsx"


class UploadForm(FlaskForm):
    file = FileField(_l("表格文件（xlsx、xls、xlsb、ods、CSV 或网页表格）"), validators=[FileRequired(_l("请选择要上传的文件。"))])
    agency = SelectField(
        _l("代哪个单位上传"),
        coerce=lambda value: int(value) if value not in (None, "") else None,
        choices=[],
        validators=[InputRequired(_l("请选择代哪个单位上传。"))],
    )
    submit = SubmitField(_l("上传并核查"))


class CommitForm(FlaskForm):
    submit = SubmitField(_l("确认导入"))


def upload_history(session: Session, *, agency_id: int | None, page: int, per_page: int = HISTORY_PAGE_SIZE) -> Page:
    """Upload batches, newest first: one agency's, or every agency's when agency_id is None."""
    # The agency's name is on every row: loaded with the batches, not one query per row.
    query = (
        sa.select(ImportBatch).options(joinedload(ImportBatch.agency))
        .order_by(ImportBatch.uploaded_at.desc(), ImportBatch.id.desc())
    )
    count = sa.select(sa.func.count()).select_from(ImportBatch)
    if agency_id is not None:
        query = query.where(ImportBatch.agency_id == agency_id)
        count = count.where(ImportBatch.agency_id == agency_id)
    return paginate(session, query, count, page, per_page)


def _agency_choices(session: Session) -> list[tuple[int, str]]:
    return [(a.id, a.name) for a in session.execute(sa.select(Agency.id, Agency.name).order_by(Agency.name))]


def _upload_form(session: Session) -> UploadForm:
    form = UploadForm()
    if current_user.role == "agency":
        del form.agency
    else:
        # No agency preselected: a reviewer picks the one the file is for, never the first by chance.
        form.agency.choices = [("", _("请选择单位"))] + _agency_choices(session)
    return form


def _visible_batch(batch_id: int) -> ImportBatch:
    """The batch when the user may see it; 404 otherwise, so other agencies' uploads are not revealed."""
    batch = get_session().get(ImportBatch, batch_id)
    if batch is None or not can_see_agency(batch.agency_id):
        abort(404)
    return batch


def _index(form: UploadForm, error: str | None = None, status: int = 200):
    session = get_session()
    # Reviewers see every agency's uploads and may narrow them to one; agency users see their own.
    shown_agency = agency_scope() if current_user.role == "agency" else id_arg("agency")
    history = upload_history(session, agency_id=shown_agency, page=page_arg())
    return render_template("uploads/index.html", form=form, history=history, error=error,
                           shown_agency=shown_agency), status


@bp.get("/")
@role_required(*UPLOADERS)
def index():
    return _index(_upload_form(get_session()))


@bp.post("/")
@role_required(*UPLOADERS)
def upload():
    session = get_session()
    form = _upload_form(session)
    if not form.validate_on_submit():
        return _index(form, status=400)
    content = form.file.data.read()
    file_name = download_name(form.file.data.filename)
    # A file that cannot be used at all (not an xlsx, encrypted, a decompression bomb) is refused
    # at once and nothing is stored; checking the package reads only its directory.
    with jobs.temporary_copy(content, file_name) as path:
        try:
            check_package(path, max_bytes=current_app.config["MAX_CONTENT_LENGTH"])
        except UnusableFile as exc:
            return _index(form, error=exc.message, status=422)
    agency_id = current_user.agency_id if current_user.role == "agency" else form.agency.data
    batch = stage_batch(session, content, None, file_name=file_name, user=current_user, agency_id=agency_id)
    session.commit()
    _start(batch, commit=False, size=len(content))
    return redirect(url_for(".show", batch_id=batch.id))


def _start(batch: ImportBatch, *, commit: bool, size: int) -> None:
    """Run the batch's validation or import: in this request for a small file, else in the background."""
    if size > current_app.config["IMPORT_BACKGROUND_BYTES"]:
        jobs.launch_import(batch.id, commit=commit)
    else:
        jobs.run_import_job(batch.id, commit)


def _message(batch: ImportBatch) -> str | None:
    """What the batch's message tells the user once it is finished."""
    if batch.message == jobs.INTERRUPTED:
        return _("后台处理意外中断（处理进程已退出）。")
    return batch.message


@bp.get("/<int:batch_id>")
@role_required(*UPLOADERS)
def show(batch_id: int):
    batch = _visible_batch(batch_id)
    report = ValidationReport.from_record(batch.report) if batch.report else None
    return render_template(
        "uploads/show.html",
        batch=batch,
        message=_message(batch),
        report=report,
        running=batch.status in jobs.UNFINISHED,
        commit_form=CommitForm(),
        step_label=STEP_LABELS.get(batch.message or ""),
        preview_limit=PREVIEW_LIMIT,
        preview_keys=_preview_keys(report),
        preview_first=PREVIEW_FIRST_ROWS,
        preview_max=PREVIEW_MAX_ROWS,
        vocabulary_keys=VOCABULARY_KEYS,
        only_locked=_only_locked(batch, report),
        duplicate_of=_imported_before(batch),
    )


def _preview_keys(report: ValidationReport | None) -> list[str]:
    """The columns the preview shows: those with a value in some row shown, in the template's order."""
    if report is None:
        return []
    return [key for key in KEYS if any(row.values.get(key) is not None for row in report.preview)]


def _only_locked(batch: ImportBatch, report: ValidationReport | None) -> bool:
    """Whether every error of an invalid batch is a row in a locked month: the user may then choose
    to import the other rows (never done without that choice)."""
    return (
        batch.status == "invalid" and not batch.skip_locked and report is not None and bool(report.errors)
        and all(f.code == "month_locked" for f in report.errors)
    )  # fmt: skip


@bp.post("/<int:batch_id>/skip-locked")
@role_required(*UPLOADERS)
def skip_locked(batch_id: int):
    """The user's explicit choice: validate the batch again leaving out its rows in locked months;
    the preview then shows what will be imported, and 确认导入 imports it."""
    batch = _visible_batch(batch_id)
    if not CommitForm().validate_on_submit():
        abort(400)
    report = ValidationReport.from_record(batch.report) if batch.report else None
    if not _only_locked(batch, report):
        flash(_("只有错误全部是锁定月份的批次才能跳过这些行。"), "error")
        return redirect(url_for(".show", batch_id=batch.id))
    session = get_session()
    batch.skip_locked = True
    batch.status = "received"
    session.commit()
    size = session.scalar(sa.select(UploadFile.size).where(UploadFile.sha256 == batch.sha256))
    _start(batch, commit=False, size=size)
    return redirect(url_for(".show", batch_id=batch.id))


def _imported_before(batch: ImportBatch) -> ImportBatch | None:
    """The batch that already imported these exact bytes (as the command line's duplicate_of), when
    this one is not it: importing the same file again would change nothing."""
    if batch.status == "committed":
        return None
    earlier = committed_batch(get_session(), batch.sha256)
    return earlier if earlier is not None and earlier.id != batch.id else None


@bp.get("/<int:batch_id>/status")
@role_required(*UPLOADERS)
def status(batch_id: int):
    """The batch's status for the progress page's script (and for scripts generally)."""
    batch = _visible_batch(batch_id)
    running = batch.status in jobs.UNFINISHED
    return jsonify(
        id=batch.id,
        status=batch.status,
        status_label=batch_status_label(batch.status),
        running=running,
        progress=batch.progress,
        step=batch.message if running else None,
        step_label=str(STEP_LABELS.get(batch.message or "", "")) if running else None,
        message=None if running else _message(batch),
        rows=batch.rows,
        errors=batch.error_count,
        warnings=batch.warning_count,
        url=url_for(".show", batch_id=batch.id),
    )


@bp.post("/<int:batch_id>/commit")
@role_required(*UPLOADERS)
def commit(batch_id: int):
    batch = _visible_batch(batch_id)
    if not CommitForm().validate_on_submit():
        abort(400)
    session = get_session()
    earlier = _imported_before(batch)
    if earlier is not None:
        flash(_("该文件已于批次 %(batch)s 导入，未重复导入。", batch=earlier.id), "info")
        return redirect(url_for(".show", batch_id=batch.id))
    # Only one click wins, whichever web process receives it: the status moves from valid exactly once.
    claimed = session.execute(
        sa.update(ImportBatch).where(ImportBatch.id == batch.id, ImportBatch.status == "valid").values(status="importing")
    ).rowcount
    session.commit()
    if not claimed:
        flash(_("该批次不能导入：只有核查通过的批次才能导入，且只能导入一次。"), "error")
        return redirect(url_for(".show", batch_id=batch.id))
    size = session.scalar(sa.select(UploadFile.size).where(UploadFile.sha256 == batch.sha256))
    _start(batch, commit=True, size=size)
    return redirect(url_for(".show", batch_id=batch.id))


@bp.get("/<int:batch_id>/annotated")
@role_required(*UPLOADERS)
def annotated(batch_id: int):
    """The uploaded workbook with every flagged cell coloured and commented, and a list of findings."""
    batch = _visible_batch(batch_id)
    if not batch.report:
        abort(404)
    data = batch.annotated_workbook
    if data is None:
        content = get_session().scalar(sa.select(UploadFile.content).where(UploadFile.sha256 == batch.sha256))
        data = annotate_workbook(content, ValidationReport.from_record(batch.report), file_name=batch.file_name)
    name = f"{Path(download_name(batch.file_name)).stem}-{_('核查结果')}.xlsx"
    return send_file(io.BytesIO(data), mimetype=XLSX, as_attachment=True, download_name=name)


@bp.get("/<int:batch_id>/original")
@role_required(*UPLOADERS)
def original(batch_id: int):
    """The file exactly as it was uploaded."""
    batch = _visible_batch(batch_id)
    content = get_session().scalar(sa.select(UploadFile.content).where(UploadFile.sha256 == batch.sha256))
    name = download_name(batch.file_name)
    return send_file(io.BytesIO(content), mimetype=_MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream"),
                     as_attachment=True, download_name=name)


@bp.get("/template")
@role_required(*UPLOADERS)
def template():
    """The upload template; an agency user's names its agency and the month it is for (?month=YYYY-MM,
    by default the last month, whose report is due now) and has the agency's own values filled in."""
    prefill = None
    name = _("车辆购置情况填报模板")
    if current_user.role == "agency" and current_user.agency is not None:
        agency = current_user.agency
        month = reporting.recent_months(dt.date.today(), 1)[0]
        if request.args.get("month"):
            try:
                month = Period.parse_month(request.args["month"])
            except ValueError:
                abort(404)
        prefill = Prefill(agency.name, agency.credit_code, agency.county, month)
        name = f"{name}-{agency.name}-{month.label}"
    out = io.BytesIO()
    write_template(out, prefill=prefill)
    out.seek(0)
    return send_file(out, mimetype=XLSX, as_attachment=True, download_name=name + ".xlsx")
