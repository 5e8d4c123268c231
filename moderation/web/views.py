"""The workspace pages: the queues, a comment's card and its actions, bulk actions, the audit log.

Actions answer htmx with the card's new HTML (or nothing, when the comment leaves the
queue on screen) plus out-of-band updates of the queue counts and the status line.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from flask import (
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.datastructures import MultiDict

from moderation.api.calibration import csv_download
from moderation.app_state import app_state, db_session, live_model_card, live_model_thresholds
from moderation.db import utcnow
from moderation.models import Comment, Site, Status
from moderation.policy import LABELS, SitePolicy, thresholds_in_force
from moderation.scoring.language import LANGUAGE_NAMES, language_name
from moderation.security_headers import private_pages
from moderation.services.labelled_export import export_rows, plan_export
from moderation.services.live import Watermark, changes_since, watermark_now
from moderation.services.moderation import (
    QUICK_REJECT_REASONS,
    REJECT_REASONS,
    UNDETERMINED,
    AuditFilter,
    Card,
    CursorError,
    ModerationError,
    Order,
    Outcome,
    Queue,
    QueueFilter,
    Result,
    article_in_scope,
    audit_page,
    cards_for,
    comment_for_moderator,
    comments_for_moderator,
    describe_actor,
    describe_event,
    dismiss_reports,
    language_filter,
    moderate,
    moderate_many,
    queue_counts,
    queue_page,
)
from moderation.services.moderators import visible_sites
from moderation.services.reports import REASON_LABELS
from moderation.services.what_if import (
    CalibrationError,
    Period,
    parse_period,
    parse_thresholds,
    what_if,
)
from moderation.web import web
from moderation.web.auth import (
    current_moderator,
    login_required,
    moderator_scope,
    signed_in_moderator,
)

PAGE_SIZE = 20
QUEUE_LABELS = {
    Queue.HELD: "Held",
    Queue.REPORTED: "Reported",
    Queue.APPROVED: "Approved",
    Queue.REJECTED: "Rejected",
    Queue.ALL: "All",
}
ORDER_LABELS = {
    Order.OLDEST: "Oldest first",
    Order.NEWEST: "Newest first",
    Order.SCORE: "Highest score first",
}


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 12 else None


def _choice(enum_type: Any, raw: str | None, default: Any) -> Any:
    try:
        return enum_type(raw) if raw else default
    except ValueError:
        return default


def queue_filter(args: MultiDict[str, str]) -> QueueFilter:
    """The queue, filters and order asked for in a query string; bad values fall back."""
    search = (args.get("q") or "").strip()[:200] or None
    return QueueFilter(
        queue=_choice(Queue, args.get("queue"), Queue.HELD),
        site_id=_int(args.get("site")),
        article_id=_int(args.get("article")),
        search=search,
        language=language_filter(args.get("language")),
        order=_choice(Order, args.get("order"), Order.OLDEST),
    )


def _language_choices(current: str | None) -> list[tuple[str, str]]:
    """The language filter's options: the languages the detector names, and undetermined."""
    choices = sorted(LANGUAGE_NAMES.items(), key=lambda choice: choice[1])
    choices.append((UNDETERMINED, "Undetermined"))
    if current and current not in dict(choices):
        choices.append((current, current))
    return choices


def _filter_args(filters: QueueFilter, **changes: Any) -> dict[str, Any]:
    args = {
        "queue": filters.queue.value,
        "site": filters.site_id,
        "article": filters.article_id,
        "q": filters.search,
        "language": filters.language,
        "order": filters.order.value,
    } | changes
    return {key: value for key, value in args.items() if value not in (None, "")}


def _page_filters() -> QueueFilter | None:
    """The filters of the queue page an action was sent from; None from any other page."""
    parts = urlsplit(request.headers.get("HX-Current-URL") or request.referrer or "")
    if parts.path != url_for("moderation_web.queue"):
        return None
    return queue_filter(MultiDict(parse_qsl(parts.query)))


@web.app_template_filter("ago")
def _ago(moment: datetime) -> str:
    seconds = int((utcnow() - moment).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


@web.app_template_filter("safe_url")
def _safe_url(url: str | None) -> str | None:
    """Only http(s) links from sites reach an href; a javascript: URL would run on click."""
    return url if url and urlsplit(url).scheme in ("http", "https") else None


@web.context_processor
def _template_globals() -> dict[str, Any]:
    return {
        "moderator": current_moderator(),
        "reject_reasons": QUICK_REJECT_REASONS,
        "describe_actor": describe_actor,
        "describe_event": describe_event,
        "language_name": language_name,
        "report_reasons": REASON_LABELS,
    }


private_pages(web)


# --------------------------------------------------------------------------------- queues


@web.get("/moderate")
@login_required
def queue():
    """A queue of comments as cards, with counts, filters and keyboard actions."""
    session, scope = db_session(), moderator_scope()
    filters = queue_filter(request.args)
    try:
        page = queue_page(session, scope, filters, request.args.get("cursor"), PAGE_SIZE)
    except CursorError:
        page = queue_page(session, scope, filters, None, PAGE_SIZE)
    context = {
        "filters": filters,
        "cards": cards_for(session, page.comments, live_model_thresholds()),
        "more_url": _more_url(filters, page.next_cursor),
    }
    if request.args.get("fragment") == "more":
        return render_template("moderation/_cards.html", **context)
    article = article_in_scope(session, scope, filters.article_id) if filters.article_id else None
    return render_template(
        "moderation/queue.html",
        **context,
        counts=queue_counts(session, scope, filters),
        sites=visible_sites(session, signed_in_moderator()),
        article=article,
        tabs=_tabs(filters),
        orders=[(order.value, label) for order, label in ORDER_LABELS.items()],
        languages=_language_choices(filters.language),
        all_articles_url=url_for("moderation_web.queue", **_filter_args(filters, article=None)),
        live_url=_live_url(filters, watermark_now(session)),
    )


def _more_url(filters: QueueFilter, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return url_for("moderation_web.queue", **_filter_args(filters, cursor=cursor, fragment="more"))


def _tabs(filters: QueueFilter) -> list[dict[str, Any]]:
    return [
        {
            "queue": queue.value,
            "label": label,
            "url": url_for("moderation_web.queue", **_filter_args(filters, queue=queue.value)),
            "active": queue is filters.queue,
        }
        for queue, label in QUEUE_LABELS.items()
    ]


def _live_url(filters: QueueFilter, mark: Watermark) -> str:
    return url_for("moderation_web.updates", **_filter_args(filters, after=mark.encode()))


@web.get("/moderate/updates")
@login_required
def updates():
    """An open queue's poll: the tab counts, and the cards of comments changed since ``after``.

    Cards still in the queue come back as they are now, the others marked as gone; the page
    adds the new ones in place and replaces the ones it shows that someone else changed.
    """
    session, scope = db_session(), moderator_scope()
    filters = queue_filter(request.args)
    mark = Watermark.decode(request.args.get("after"))
    if mark is None:  # a page this service did not render: start from now
        changes, mark = None, watermark_now(session)
    else:
        changes = changes_since(session, scope, filters, mark)
        mark = changes.watermark
        if changes.overflow:
            # htmx reloads the page: too much changed for cards to be patched in.
            return "", 200, {"HX-Refresh": "true"}
    comments = changes.comments if changes else []
    cards = cards_for(session, comments, live_model_thresholds())
    in_queue = changes.in_queue if changes else frozenset()
    return render_template(
        "moderation/_updates.html",
        entries=[_live_entry(card, card.comment.id in in_queue) for card in cards],
        counts=queue_counts(session, scope, filters),
        tabs=_tabs(filters),
        live_url=_live_url(filters, mark),
    )


def _live_entry(card: Card, in_queue: bool) -> dict[str, Any]:
    """A changed card, and the line it shows where it replaces the card a page had."""
    last = card.history[-1] if card.history else None
    report = card.reports[-1] if card.reports else None
    if report and (last is None or report.created_at > last.created_at):
        note = f"Reported again: {card.reports_summary}."
    else:
        what = f"{describe_actor(last)}: {describe_event(last)}" if last else "changed"
        note = f"Changed by {what}" + ("." if in_queue else "; it has left this queue.")
    return {"card": card, "in_queue": in_queue, "note": note}


@web.get("/moderate/comments/<public_id>")
@login_required
def comment_page(public_id: str):
    """One comment's card with its whole history (404 for another site's comment)."""
    session = db_session()
    comment = comment_for_moderator(session, moderator_scope(), public_id)
    if comment is None:
        abort(404)
    card = cards_for(session, [comment], live_model_thresholds())[0]
    if request.headers.get("HX-Request"):
        return render_template("moderation/_card.html", card=card, open_history=True)
    return render_template("moderation/comment.html", card=card)


# -------------------------------------------------------------------------------- actions


@web.post("/moderate/comments/<public_id>/<any(approve, reject, dismiss):action>")
@login_required
def act(public_id: str, action: str):
    """Approve, reject or dismiss the reports of one comment as seen at ``version``.

    Answers with its new card; a stale version is a 409 with the card as it is now.
    """
    session = db_session()
    comment = comment_for_moderator(session, moderator_scope(), public_id)
    if comment is None:
        abort(404)
    version = request.form.get("version") or None
    try:
        if action == "dismiss":
            outcome = dismiss_reports(
                session, comment, signed_in_moderator(), expected_version=version, source="web"
            )
        else:
            outcome = moderate(
                session,
                comment,
                signed_in_moderator(),
                Status.APPROVED if action == "approve" else Status.REJECTED,
                request.form.get("reason"),
                request.form.get("note"),
                expected_version=version,
                source="web",
            )
    except ModerationError as exc:
        session.rollback()
        return _respond([(comment, None)], exc.message, "error", 422)
    session.commit()
    kind, status = _kind_and_status(outcome.result)
    return _respond([(comment, outcome)], _sentence(outcome), kind, status)


@web.post("/moderate/bulk/<any(approve, reject):action>")
@login_required
def bulk(action: str):
    """The same action on every selected comment; each as seen at its version."""
    session = db_session()
    wanted = [_id_and_version(raw) for raw in request.form.getlist("ids")]
    found = comments_for_moderator(
        session, moderator_scope(), [public_id for public_id, _ in wanted]
    )
    targets = [(found[pid], version) for pid, version in wanted if pid in found]
    if not targets:
        return _respond([], "Select comments first (x selects the current one).", "error", 422)
    target = Status.APPROVED if action == "approve" else Status.REJECTED
    try:
        outcomes = moderate_many(
            session,
            signed_in_moderator(),
            targets,
            target,
            request.form.get("reason"),
            request.form.get("note"),
            source="web-bulk",
        )
    except ModerationError as exc:
        session.rollback()
        return _respond([], exc.message, "error", 422)
    session.commit()
    missing = len(wanted) - len(targets)
    message = _bulk_sentence(outcomes, target, missing)
    kind = "warning" if missing or any(o.result is Result.CONFLICT for o in outcomes) else "ok"
    return _respond([(o.comment, o) for o in outcomes], message, kind, 200)


def _id_and_version(raw: str) -> tuple[str, str | None]:
    public_id, _, version = raw.partition(":")
    return public_id, (version or None)


def _kind_and_status(result: Result) -> tuple[str, int]:
    return {
        Result.APPLIED: ("ok", 200),
        Result.UNCHANGED: ("info", 200),
        Result.CONFLICT: ("warning", 409),
    }[result]


def _excerpt(comment: Comment, length: int = 60) -> str:
    text = " ".join(comment.text.split())
    return text if len(text) <= length else text[: length - 1] + "…"


def _sentence(outcome: Outcome) -> str:
    what = f"“{_excerpt(outcome.comment)}”"
    if outcome.result is Result.APPLIED:
        return f"{outcome.message[:1].upper()}{outcome.message[1:]}: {what}"
    if outcome.result is Result.UNCHANGED:
        return f"{what} is {outcome.message}."
    return f"Not applied: {outcome.message}. {what}"


def _bulk_sentence(outcomes: list[Outcome], target: Status, missing: int) -> str:
    applied = sum(o.result is Result.APPLIED for o in outcomes)
    unchanged = sum(o.result is Result.UNCHANGED for o in outcomes)
    conflicts = sum(o.result is Result.CONFLICT for o in outcomes)
    parts = [f"{target.value.capitalize()} {applied} comment{'s' if applied != 1 else ''}"]
    if unchanged:
        parts.append(f"{unchanged} already {target.value}")
    if conflicts:
        parts.append(f"{conflicts} changed by someone else first (not applied)")
    if missing:
        parts.append(f"{missing} not found")
    return "; ".join(parts) + "."


def _respond(acted: list[tuple[Comment, Outcome | None]], message: str, kind: str, status: int):
    """htmx: the card(s) and out-of-band counts and status line; without JS: back to the page."""
    if not request.headers.get("HX-Request"):
        flash(message, kind)
        return redirect(request.referrer or url_for("moderation_web.queue"), 303)
    session, filters = db_session(), _page_filters()
    cards = {
        card.comment.id: card
        for card in cards_for(session, [c for c, _ in acted], live_model_thresholds())
    }
    entries = [_entry(cards[comment.id], outcome, filters) for comment, outcome in acted]
    body = render_template(
        "moderation/_acted.html",
        entries=entries,
        single=request.endpoint == "moderation_web.act",
        message=message,
        kind=kind,
        # Only a queue page has counts to update.
        counts=queue_counts(session, moderator_scope(), filters) if filters else None,
        tabs=_tabs(filters) if filters else None,
    )
    return body, status


def _entry(card: Card, outcome: Outcome | None, filters: QueueFilter | None) -> dict[str, Any]:
    """Whether the card stays on the page (re-rendered) or leaves it."""
    wanted = filters.queue.status if filters else None
    stays = wanted is None or card.comment.status == wanted
    if filters and filters.queue is Queue.REPORTED:
        stays = bool(card.reports)
    if outcome is not None and outcome.result is Result.CONFLICT:
        stays = True  # the moderator must see what changed under them
    notice = outcome.message if outcome and outcome.result is not Result.APPLIED else None
    return {"card": card, "stays": stays, "notice": notice}


# ---------------------------------------------------------------------------------- audit


@web.get("/audit")
@login_required
def audit():
    """Every transition on the moderator's sites, newest first, filterable."""
    session = db_session()
    args = request.args
    filters = AuditFilter(
        site_id=_int(args.get("site")),
        actor=(args.get("actor") or "").strip()[:254] or None,
        to_status=args.get("to") if args.get("to") in set(Status) else None,
        reason=(args.get("reason") or "").strip()[:200] or None,
        comment_public_id=(args.get("comment") or "").strip()[:40] or None,
    )
    rows, next_before = audit_page(session, moderator_scope(), filters, _int(args.get("before")))
    older = None
    if next_before is not None:
        older = url_for("moderation_web.audit", **{**args.to_dict(), "before": next_before})
    return render_template(
        "moderation/audit.html",
        rows=rows,
        filters=filters,
        sites=visible_sites(session, signed_in_moderator()),
        statuses=[(status.value, status.value) for status in Status],
        reasons=[
            (reason, reason.replace("_", " "))
            for reason in [
                "approved",
                *REJECT_REASONS,
                "conflict",
                "scored",
                "scoring_failed",
                "reported",
                "reports_dismissed",
            ]
        ],
        older_url=older,
    )


# ------------------------------------------------------------------------------- what-if

PERIODS = {"7": "Last 7 days", "30": "Last 30 days", "90": "Last 90 days", "custom": "Custom dates"}


@web.get("/moderation/what-if")
@login_required
def what_if_page():
    """Moderators' decisions replayed against thresholds the moderator proposes."""
    session, args = db_session(), request.args
    sites = visible_sites(session, signed_in_moderator())
    chosen = _chosen_sites(sites, args.get("site"))
    preset = args.get("period") if args.get("period") in PERIODS else "30"
    card = live_model_card()
    model_hold_at = (card or {}).get("thresholds")
    in_force = None
    if len(chosen) == 1:
        in_force = thresholds_in_force(
            SitePolicy.from_stored(chosen[0].policy),
            model_hold_at,
            model=f"{card['name']} {card['version']}" if card else None,
            model_source=(card or {}).get("thresholds_source"),
        )
    current = (
        {label: entry["hold_at"] for label, entry in in_force["labels"].items()} if in_force else {}
    )
    context = {
        "in_force": in_force,
        "sites": sites,
        "site_id": chosen[0].id if len(chosen) == 1 else None,
        "periods": PERIODS,
        "preset": preset,
        "since": (args.get("since") or "")[:40],
        "until": (args.get("until") or "")[:40],
        "labels": LABELS,
        "current": current,
        "values": {label: args.get(label, _threshold_text(current.get(label))) for label in LABELS},
    }
    try:
        period = _what_if_period(preset, args)
        proposed = parse_thresholds((label, args.get(label, "")) for label in LABELS)
    except CalibrationError as exc:
        return render_template("moderation/what_if.html", **context, error=exc.message), 400
    export_url = url_for(
        "moderation_web.export_csv",
        site=context["site_id"],
        since=period.since.isoformat(),
        until=period.until.isoformat(),
    )
    result = what_if(session, chosen, period, proposed, model_hold_at)
    return render_template(
        "moderation/what_if.html", **context, result=result, export_url=export_url
    )


@web.get("/moderation/export.csv")
@login_required
def export_csv():
    """The moderator-labelled comments of the period as a training CSV download."""
    session, args = db_session(), request.args
    sites = _chosen_sites(visible_sites(session, signed_in_moderator()), args.get("site"))
    try:
        period = parse_period(args.get("since"), args.get("until"), now=utcnow())
    except CalibrationError as exc:
        return render_template("moderation/error.html", message=exc.message), 400
    rows = export_rows(app_state().sessions, plan_export(session, sites, period))
    return csv_download(rows, sites, period)


def _chosen_sites(sites: list[Site], raw: str | None) -> list[Site]:
    """The site asked for (404 when it is not the moderator's), else all of theirs."""
    if not raw:
        return sites
    chosen = [site for site in sites if str(site.id) == raw]
    if not chosen:
        abort(404)
    return chosen


def _what_if_period(preset: str, args: MultiDict[str, str]) -> Period:
    now = utcnow()
    if preset == "custom":
        return parse_period(args.get("since"), args.get("until"), now=now)
    return Period(now - timedelta(days=int(preset)), now)


def _threshold_text(value: float | None) -> str:
    return "" if value is None else f"{value:g}"
