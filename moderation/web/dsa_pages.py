"""The DSA's public pages, served by this service under ``/dsa`` (no sign-in, no cookies).

The notice form the widget links to from each comment ("Report illegal content"), the
status of a notice by its reference, and a statement of reasons with its appeal form. The
statement's page is reached by its unguessable link (the site sends it to the author, from
the ``dsa.statement_issued`` webhook or the public API); holding the link is what lets its
author appeal there, so these forms carry no session and no CSRF token.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from moderation.app_state import db_session
from moderation.dsa.appeals import AppealRefused, appeal_deadline, appeal_of, file_appeal
from moderation.dsa.notices import (
    CATEGORIES,
    NoticeForm,
    NoticeRefused,
    file_notice,
    notice_by_reference,
    notice_status,
)
from moderation.dsa.statements import restriction_words, statement_by_public_id
from moderation.limits import limiter
from moderation.services.integration import site_for_publishable_key

dsa_pages = Blueprint("dsa_pages", __name__, url_prefix="/dsa", template_folder="templates")


def _site(key: str | None):
    site = site_for_publishable_key(db_session(), (key or "")[:100]) if key else None
    if site is None:
        abort(404)
    return site


@dsa_pages.route("/notice", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"])
def notice_form():
    """The notice of illegal content form; a stored notice shows its reference."""
    source = request.form if request.method == "POST" else request.args
    site = _site(source.get("key"))
    values = {name: source.get(name, "") for name in _FIELDS}
    if request.method == "GET":
        return _form(values)
    form = NoticeForm(
        category=values["category"] or None,
        explanation=values["explanation"],
        comment_ids=values["comment"].replace(",", " ").split(),
        good_faith=values["good_faith"] == "yes",
        law=values["law"],
        reporter_name=values["reporter_name"],
        reporter_email=values["reporter_email"],
    )
    session = db_session()
    try:
        notice = file_notice(session, site, form)
    except NoticeRefused as exc:
        return _form(values, exc), exc.status
    session.commit()
    return redirect(url_for("dsa_pages.notice_page", reference=notice.reference, new=1), 303)


_FIELDS = (
    "key",
    "comment",
    "category",
    "law",
    "explanation",
    "reporter_name",
    "reporter_email",
    "good_faith",
)


def _form(values: dict[str, str], error: NoticeRefused | None = None):
    return render_template(
        "dsa/notice_form.html", values=values, categories=CATEGORIES, error=error
    )


@dsa_pages.get("/notices/<reference>")
def notice_page(reference: str):
    """A notice's state and outcome, for the reporter who holds its reference."""
    session = db_session()
    notice = notice_by_reference(session, None, reference[:40])
    if notice is None:
        abort(404)
    status = notice_status(session, notice)
    category = CATEGORIES.get(notice.category)
    return render_template(
        "dsa/notice_status.html",
        status=status,
        category=category.label if category else notice.category,
        new=request.args.get("new") == "1",
    )


@dsa_pages.get("/statements/<public_id>")
def statement_page(public_id: str):
    """A statement of reasons, and the appeal form while an appeal is open to its author."""
    return _statement(public_id)


@dsa_pages.post("/statements/<public_id>/appeal")
@limiter.limit("10/minute")
def appeal(public_id: str):
    """The author's appeal against the decision."""
    session = db_session()
    statement = statement_by_public_id(session, public_id[:60])
    if statement is None:
        abort(404)
    try:
        file_appeal(session, statement, request.form.get("text"))
    except AppealRefused as exc:
        return _statement(public_id, exc), exc.status
    session.commit()
    return redirect(url_for("dsa_pages.statement_page", public_id=public_id), 303)


def _statement(public_id: str, error: AppealRefused | None = None):
    session = db_session()
    statement = statement_by_public_id(session, public_id[:60])
    if statement is None:
        abort(404)
    return render_template(
        "dsa/statement.html",
        statement=statement,
        summary=restriction_words(statement),
        appeal=appeal_of(session, statement),
        deadline=appeal_deadline(statement),
        error=error,
        text=request.form.get("text", ""),
    )
