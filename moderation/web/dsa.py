"""The workspace's DSA pages: the Notices and Appeals queues and the transparency report.

Signed-in moderators only, scoped to their sites, every POST with the session's CSRF token
(``login_required`` checks it). The views parse the form and call moderation.dsa.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from moderation.app_state import db_session
from moderation.db import utcnow
from moderation.dsa.appeals import (
    AppealRefused,
    appeal_for_moderator,
    appeals_page,
    decide_appeal,
    open_appeal_counts,
)
from moderation.dsa.notices import (
    CATEGORIES,
    NoticeRefused,
    add_note,
    decide_notice,
    notice_counts,
    notice_for_moderator,
    notices_page,
    start_review,
    void_notice,
)
from moderation.dsa.report import transparency_report
from moderation.dsa.transparency import ExportError
from moderation.models import AppealState, NoticeState
from moderation.security_headers import private_pages
from moderation.web import add_nav_link
from moderation.web.auth import (
    current_moderator,
    login_required,
    moderator_scope,
    signed_in_moderator,
)

dsa_web = Blueprint("dsa_web", __name__, url_prefix="/moderate/dsa", template_folder="templates")
private_pages(dsa_web)
add_nav_link("dsa_web.notices", "Notices")
add_nav_link("dsa_web.appeals", "Appeals")
add_nav_link("dsa_web.report", "Transparency")
OPEN_STATES = (NoticeState.AWAITING_REVIEW, NoticeState.UNDER_REVIEW)


@dsa_web.context_processor
def _globals() -> dict[str, Any]:
    return {"moderator": current_moderator(), "categories": CATEGORIES}


# --- Notices ----------------------------------------------------------------------------------


@dsa_web.get("/notices")
@login_required
def notices():
    """Notices waiting for review (or decided, or void), oldest first."""
    state = request.args.get("state", "open")
    states = {
        "open": OPEN_STATES,
        "completed": (NoticeState.COMPLETED,),
        "void": (NoticeState.VOID,),
    }
    session = db_session()
    return render_template(
        "dsa/notices.html",
        notices=notices_page(session, moderator_scope(), states.get(state, OPEN_STATES)),
        counts=notice_counts(session, moderator_scope()),
        state=state if state in states else "open",
    )


@dsa_web.get("/notices/<reference>")
@login_required
def notice(reference: str):
    """One notice: the comments it names, its history, and the actions."""
    found = notice_for_moderator(db_session(), moderator_scope(), reference[:40])
    if found is None:
        abort(404)
    return render_template("dsa/notice.html", notice=found)


@dsa_web.post("/notices/<reference>/<any(review, note, decide, void):action>")
@login_required
def notice_action(reference: str, action: str):
    """Start the review, add a note, decide, or void; then back to the notice."""
    session = db_session()
    found = notice_for_moderator(session, moderator_scope(), reference[:40])
    if found is None:
        abort(404)
    form = request.form
    try:
        if action == "review":
            start_review(session, found, signed_in_moderator())
        elif action == "note":
            add_note(session, found, signed_in_moderator(), form.get("note"))
        elif action == "decide":
            decide_notice(
                session,
                found,
                signed_in_moderator(),
                form.get("decision", ""),
                form.get("legal_ground"),
                form.get("explanation"),
            )
        else:
            void_notice(session, found, signed_in_moderator(), form.get("explanation"))
    except NoticeRefused as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("dsa_web.notice", reference=reference), 303)
    session.commit()
    flash(
        {
            "review": "Review started",
            "note": "Note added",
            "decide": "Decided",
            "void": "Closed as void",
        }[action],
        "ok",
    )
    return redirect(url_for("dsa_web.notice", reference=reference), 303)


# --- Appeals ----------------------------------------------------------------------------------


@dsa_web.get("/appeals")
@login_required
def appeals():
    """Open (or decided) appeals, oldest first."""
    state = AppealState.DECIDED if request.args.get("state") == "decided" else AppealState.OPEN
    session = db_session()
    return render_template(
        "dsa/appeals.html",
        appeals=appeals_page(session, moderator_scope(), state),
        open_count=open_appeal_counts(session, moderator_scope()),
        state=state,
    )


@dsa_web.post("/appeals/<public_id>/decide")
@login_required
def appeal_decision(public_id: str):
    """Uphold or reverse the decision an appeal contests."""
    session = db_session()
    appeal = appeal_for_moderator(session, moderator_scope(), public_id[:40])
    if appeal is None:
        abort(404)
    try:
        decide_appeal(
            session,
            appeal,
            signed_in_moderator(),
            request.form.get("outcome", ""),
            request.form.get("reasons"),
        )
    except AppealRefused as exc:
        session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("dsa_web.appeals"), 303)
    session.commit()
    flash(f"Appeal {appeal.public_id}: decision {appeal.outcome.lower()}", "ok")
    return redirect(url_for("dsa_web.appeals"), 303)


# --- Transparency report ----------------------------------------------------------------------


@dsa_web.get("/report")
@login_required
def report():
    """The transparency report's figures for a period; ``format=csv`` downloads them."""
    since, until = _period()
    try:
        figures = transparency_report(db_session(), moderator_scope(), since, until)
    except ExportError as exc:
        flash(str(exc), "error")
        since, until = _default_period()
        figures = transparency_report(db_session(), moderator_scope(), since, until)
    if request.args.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(("section", "item", "value"))
        writer.writerows(figures.rows())
        name = f"transparency-{since:%Y-%m-%d}-{until:%Y-%m-%d}.csv"
        return Response(
            out.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return render_template("dsa/report.html", figures=figures, since=since, until=until)


def _default_period() -> tuple[datetime, datetime]:
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=30), today + timedelta(days=1)


def _period() -> tuple[datetime, datetime]:
    default_since, default_until = _default_period()
    return _day(request.args.get("since"), default_since), _day(
        request.args.get("until"), default_until
    )


def _day(raw: str | None, default: datetime) -> datetime:
    try:
        return datetime.strptime((raw or "").strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return default
