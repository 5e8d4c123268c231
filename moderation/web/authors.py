"""The author view: an author's record and sanctions on one site, and the forms to act on them.

A page of its own, and the drawer the queue opens from a card (htmx loads the same fragment).
Forms answer htmx with the view redrawn and the outcome in it, at the service's status: 201
for a new sanction, 422 for bad input (a past end), 409 for a sanction lifted already.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for

from moderation.app_state import db_session
from moderation.models import SanctionKind, Site
from moderation.services.authors import (
    SanctionRefused,
    Standing,
    author_standing,
    lift_sanction,
    sanction_author,
    sanction_for_site_ids,
)
from moderation.services.moderation import ModerationError
from moderation.services.moderators import visible_sites
from moderation.web import web
from moderation.web.auth import login_required, moderator_scope, signed_in_moderator

KIND_WORDS = {
    SanctionKind.WARN: "warning",
    SanctionKind.SUSPEND: "suspension",
    SanctionKind.BAN: "ban",
    SanctionKind.PREMODERATE: "always pre-moderate",
}


def _site(name: str) -> Site:
    """One of the moderator's sites by name; 404 for any other."""
    found = [
        site for site in visible_sites(db_session(), signed_in_moderator()) if site.name == name
    ]
    if not found:
        abort(404)
    return found[0]


def _standing(site: Site, author_id: str) -> Standing:
    standing = author_standing(db_session(), site, author_id)
    if standing is None:
        abort(404)
    return standing


@web.get("/moderate/authors/<site_name>/<path:author_id>")
@login_required
def author_page(site_name: str, author_id: str):
    """An author's counts, recent comments and sanctions on a site (404 outside the scope)."""
    standing = _standing(_site(site_name), author_id)
    template = "_author.html" if request.headers.get("HX-Request") else "author.html"
    return render_template(f"moderation/{template}", standing=standing, kinds=KIND_WORDS)


@web.post("/moderate/authors/<site_name>/<path:author_id>/sanctions")
@login_required
def sanction(site_name: str, author_id: str):
    """Warn, suspend until a time, ban (and reject their comments), or always pre-moderate."""
    session, site, form = db_session(), _site(site_name), request.form
    try:
        done = sanction_author(
            session,
            site,
            author_id,
            signed_in_moderator(),
            form.get("kind", ""),
            form.get("reason", ""),
            ends_at=_moment(form.get("ends_at"), form.get("tz")),
            reject_published=form.get("reject_published") == "1",
            source="web",
        )
    except (SanctionRefused, ModerationError) as exc:
        session.rollback()
        return _answer(site, author_id, exc.message, "error", getattr(exc, "status", 422))
    session.commit()
    message = f"{KIND_WORDS[SanctionKind(done.sanction.kind)].capitalize()} set"
    if done.rejected:
        message += f"; {sum(o.changed for o in done.rejected)} of their comments rejected"
    return _answer(site, author_id, message + ".", "ok", 201)


@web.post("/moderate/sanctions/<public_id>/lift")
@login_required
def lift(public_id: str):
    """Lift a sanction in force, with a reason; it stays in the history."""
    session = db_session()
    found = sanction_for_site_ids(session, moderator_scope(), public_id)
    if found is None:
        abort(404)
    site = session.get(Site, found.site_id)
    assert site is not None  # the sanction's foreign key
    try:
        lift_sanction(session, found, signed_in_moderator(), request.form.get("reason", ""))
    except SanctionRefused as exc:
        session.rollback()
        return _answer(site, found.author_id, exc.message, "error", exc.status)
    session.commit()
    kind = KIND_WORDS[SanctionKind(found.kind)]
    return _answer(site, found.author_id, f"The {kind} is lifted.", "ok", 200)


def _answer(site: Site, author_id: str, message: str, kind: str, status: int):
    """htmx: the view redrawn with the outcome in it; without JS: the page, or back to it."""
    if not request.headers.get("HX-Request") and status < 400:
        flash(message, kind)
        return redirect(_author_url(site, author_id), 303)
    standing = _standing(site, author_id)
    template = "_author.html" if request.headers.get("HX-Request") else "author.html"
    body = render_template(
        f"moderation/{template}", standing=standing, kinds=KIND_WORDS, message=message, kind=kind
    )
    # An open queue polls at once: a ban may have rejected cards it shows.
    return body, status, {"HX-Trigger": "live-refresh"} if status < 400 else {}


def _author_url(site: Site, author_id: str) -> str:
    return url_for("moderation_web.author_page", site_name=site.name, author_id=author_id)


def _moment(raw: str | None, zone: str | None) -> datetime | None:
    """A datetime-local value in the moderator's time zone (UTC when unknown), as UTC."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise SanctionRefused(422, "invalid", "the end is not a date and time", "ends_at") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(zone))
    return moment.astimezone(UTC)


def _zone(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name) if name and len(name) < 64 else UTC
    except (ValueError, KeyError, OSError):
        return UTC
