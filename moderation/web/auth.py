"""Moderator sign-in: login and logout, the session, and the decorators that guard views.

Other pages for moderators import :func:`login_required` and :func:`admin_required`; both
also check the CSRF token of every state-changing request (POST, PUT, PATCH, DELETE).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, g, redirect, render_template, request, session, url_for
from flask_limiter.util import get_remote_address
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from moderation.app_state import db_session
from moderation.limits import limiter
from moderation.models import Moderator
from moderation.services.moderation import Scope
from moderation.services.moderators import (
    active_moderator,
    authenticate,
    normalise_email,
    visible_site_ids,
)
from moderation.web import csrf, web

View = TypeVar("View", bound=Callable[..., Any])


class LoginForm(FlaskForm):
    """Email and password; the CSRF token comes with FlaskForm."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


def current_moderator() -> Moderator | None:
    """The signed-in, active moderator of this request, or None."""
    if "moderator" not in g:
        g.moderator = _moderator_from_session()
    return g.moderator


def signed_in_moderator() -> Moderator:
    """The moderator of a view that ``login_required`` guards."""
    moderator = current_moderator()
    assert moderator is not None  # guaranteed by login_required
    return moderator


def moderator_scope() -> Scope:
    """The sites the signed-in moderator may see (None: all, for an admin); once a request."""
    if "scope" not in g:
        g.scope = visible_site_ids(db_session(), signed_in_moderator())
    return g.scope


def _moderator_from_session() -> Moderator | None:
    moderator_id, stamp = session.get("moderator_id"), session.get("stamp")
    if not isinstance(moderator_id, int) or not isinstance(stamp, str):
        return None
    moderator = active_moderator(db_session(), moderator_id)
    if moderator is None or not hmac.compare_digest(stamp, _stamp(moderator)):
        return None
    return moderator


def _stamp(moderator: Moderator) -> str:
    # Changes with the password hash, so a new password signs out every other session.
    return hashlib.sha256(moderator.password_hash.encode()).hexdigest()[:24]


def login_required(view: View) -> View:
    """Only for a signed-in moderator; others go to the login page (htmx: HX-Redirect)."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if current_moderator() is None:
            return _to_login()
        csrf.protect()
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def admin_required(view: View) -> View:
    """Only for a signed-in admin; a signed-in moderator who is not one gets 403."""

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        moderator = current_moderator()
        if moderator is None:
            return _to_login()
        if not moderator.is_admin:
            abort(403)
        csrf.protect()
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


def _to_login() -> Response:
    target = url_for("moderation_web.login", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request"):
        return Response(status=401, headers={"HX-Redirect": target})
    return redirect(target)


def _login_key() -> str:
    # Per address and account: one office behind one address does not lock out everyone.
    return f"{get_remote_address()}|{normalise_email(request.form.get('email', ''))[:254]}"


@web.before_request
def _check_csrf() -> None:
    """Every state-changing request to the workspace carries the session's CSRF token."""
    csrf.protect()


@web.errorhandler(CSRFError)
def _csrf_failed(exc: CSRFError):
    message = "The form expired or did not come from this site; reload the page and retry."
    if request.headers.get("HX-Request"):
        return render_template("moderation/_flash.html", message=message, kind="error"), 400
    return render_template("moderation/error.html", message=message), 400


@web.route("/login", methods=["GET", "POST"])
@limiter.limit("5/minute", methods=["POST"], key_func=_login_key)
@limiter.limit("60/minute", methods=["POST"])
def login():
    """Sign in with email and password."""
    form = LoginForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("moderation/login.html", form=form), status
    moderator = authenticate(db_session(), form.email.data or "", form.password.data or "")
    if moderator is None:
        db_session().rollback()
        error = "That email and password do not match an active moderator."
        return render_template("moderation/login.html", form=form, error=error), 401
    db_session().commit()
    session.clear()
    session.permanent = True
    session["moderator_id"], session["stamp"] = moderator.id, _stamp(moderator)
    return redirect(_safe_next(request.args.get("next")))


@web.post("/logout")
def logout():
    """Sign out (POST only, with the CSRF token, so no link can sign a moderator out)."""
    session.clear()
    return redirect(url_for("moderation_web.login"))


def _safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else goes to the queue."""
    default = url_for("moderation_web.queue")
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target
