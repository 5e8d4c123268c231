"""The DSA's public pages, served by this service under ``/dsa`` (no sign-in, no cookies).

The notice form the widget links to from each comment ("Report illegal content"), the
status of a notice by its reference, and a statement of reasons with its appeal form. The
statement's page opens only at its signed link (``?sig=``, an HMAC of the statement's id
with the app's secret key), which the author gets from the public API with their reader
token; the id alone (in a webhook, a log) opens nothing. Holding the signed link is what lets
its author appeal there, so these forms carry no session and no CSRF token.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from itsdangerous import Signer

from moderation.app_state import db_session
from moderation.dsa.appeals import AppealRefused, appeal_deadline, appeal_of, file_appeal
from moderation.dsa.notices import (
    CATEGORIES,
    NoticeForm,
    NoticeRefused,
    file_notice,
    notice_by_reference,
    notice_status,
    storable,
)
from moderation.dsa.statements import restriction_words, statement_by_public_id
from moderation.limits import limiter
from moderation.services.integration import site_for_publishable_key

dsa_pages = Blueprint("dsa_pages", __name__, url_prefix="/dsa", template_folder="templates")
_LINK_SALT = "dsa-statement-link"


def _signer() -> Signer:
    return Signer(current_app.secret_key, salt=_LINK_SALT, digest_method=hashlib.sha256)


def statement_url(public_id: str, *, external: bool = True) -> str:
    """The statement's page, signed: the link its author is given."""
    signature = _signer().get_signature(public_id).decode()
    return url_for(
        "dsa_pages.statement_page", public_id=public_id, sig=signature, _external=external
    )


def _signed_statement_id(public_id: str) -> str:
    """The statement id of a link signed for it; any other link is a 404 (as if no statement
    had the id, so the id alone tells nothing)."""
    public_id = public_id[:60]
    signature = request.args.get("sig", "")
    readable = storable(public_id) and storable(signature)
    if not (readable and _signer().verify_signature(public_id, signature)):
        abort(404)
    return public_id


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
    values = {name: source.get(name, "") for name in _FIELDS}
    for name, value in values.items():
        # PostgreSQL can neither store nor compare a NUL; nothing is looked up with one.
        if not storable(value):
            message = f"{name} must not contain NUL or lone surrogates"
            field = "comments" if name == "comment" else name
            error = NoticeRefused(422, "invalid", message, field)
            return _form({**values, name: ""}, error), 422
    site = _site(values["key"])
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
    return _statement(_signed_statement_id(public_id))


@dsa_pages.post("/statements/<public_id>/appeal")
@limiter.limit("10/minute")
def appeal(public_id: str):
    """The author's appeal against the decision (at the signed link only)."""
    public_id = _signed_statement_id(public_id)
    session = db_session()
    statement = statement_by_public_id(session, public_id)
    if statement is None:
        abort(404)
    try:
        file_appeal(session, statement, request.form.get("text"))
    except AppealRefused as exc:
        return _statement(public_id, exc), exc.status
    session.commit()
    return redirect(statement_url(public_id, external=False), 303)


def _statement(public_id: str, error: AppealRefused | None = None):
    session = db_session()
    statement = statement_by_public_id(session, public_id[:60])
    if statement is None:
        abort(404)
    return render_template(
        "dsa/statement.html",
        statement=statement,
        signature=request.args.get("sig", ""),
        summary=restriction_words(statement),
        appeal=appeal_of(session, statement),
        deadline=appeal_deadline(statement),
        error=error,
        text=request.form.get("text", ""),
    )
