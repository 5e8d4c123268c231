"""Who may do what in the workspace and the moderation API: sign-in, CSRF, site isolation."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from moderation import create_app
from moderation.cli import main
from moderation.models import AuditEvent, Moderator, Status
from moderation.web.auth import admin_required, login_required
from tests.moderation_support import (
    ABUSIVE,
    csrf_token,
    moderator_accounts,
    seed_comment,
    sign_in,
    status_of,
    version_of,
)

SITE, OTHER = "example-news", "other-news"
HTMX = {"HX-Request": "true", "HX-Current-URL": "http://localhost/moderate"}


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


def audit_count(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


# ------------------------------------------------------------------------------ sign-in


def test_the_workspace_needs_a_sign_in(client, accounts):
    for path in ("/moderate", "/audit", "/moderate/comments/cmt_x"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")
    response = client.get("/moderate", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


def test_sign_in_sets_a_hardened_cookie_and_sign_out_ends_the_session(client, accounts):
    account = accounts.moderator(SITE)
    page = client.get("/login")
    answer = client.post(
        "/login?next=/audit",
        data={
            "email": account.email,
            "password": account.password,
            "csrf_token": csrf_token(page.text),
        },
    )
    assert (answer.status_code, answer.headers["Location"]) == (302, "/audit")
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if "moderation_session" in c)
    assert {"HttpOnly", "SameSite=Lax", "Secure"} <= {part.strip() for part in cookie.split(";")}
    token = csrf_token(client.get("/moderate").text)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/moderate").status_code == 200
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/moderate").status_code == 302


def test_a_wrong_password_does_not_say_which_part_was_wrong(client, accounts):
    account = accounts.moderator(SITE)
    token = csrf_token(client.get("/login").text)
    for email, password in ((account.email, "not the password"), ("nobody@example.test", "x" * 12)):
        answer = client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )
        assert answer.status_code == 401
        assert "do not match an active moderator" in answer.text
    assert client.get("/moderate").status_code == 302


def test_after_sign_in_only_local_paths_are_followed(client, accounts):
    account = accounts.moderator(SITE)
    token = csrf_token(client.get("/login").text)
    data = {"email": account.email, "password": account.password, "csrf_token": token}
    answer = client.post("/login?next=//evil.example/x", data=data)
    assert answer.headers["Location"] == "/moderate"


def test_login_attempts_are_rate_limited(client, accounts):
    account = accounts.moderator(SITE)
    token = csrf_token(client.get("/login").text)
    data = {"email": account.email, "password": "wrong password", "csrf_token": token}
    statuses = [client.post("/login", data=data).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    right = data | {"password": account.password}
    assert client.post("/login", data=right).status_code == 429


# --------------------------------------------------------------------------------- CSRF


def test_an_action_without_a_valid_csrf_token_is_refused_and_changes_nothing(
    client, sessions, accounts
):
    sign_in(client, accounts.moderator(SITE))
    held = seed_comment(sessions, SITE, ABUSIVE)
    version = version_of(client.get("/moderate").text, held)
    before = audit_count(sessions)
    url = f"/moderate/comments/{held}/approve"
    for headers, data in (
        (HTMX, {"version": version}),
        (HTMX | {"X-CSRFToken": "forged"}, {"version": version}),
        ({}, {"version": version, "csrf_token": "forged"}),
    ):
        assert client.post(url, data=data, headers=headers).status_code == 400
    bulk = client.post("/moderate/bulk/approve", data={"ids": f"{held}:{version}"}, headers=HTMX)
    assert bulk.status_code == 400
    assert status_of(sessions, held) == Status.HELD
    assert audit_count(sessions) == before


def test_login_itself_needs_the_csrf_token(client, accounts):
    account = accounts.moderator(SITE)
    answer = client.post("/login", data={"email": account.email, "password": account.password})
    assert answer.status_code == 400
    assert client.get("/moderate").status_code == 302


def test_the_guards_for_other_pages_check_sign_in_role_and_csrf(settings, sessions, accounts):
    app = create_app(settings)
    app.add_url_rule(
        "/ops-check", "ops_check", admin_required(lambda: "admin ok"), methods=["GET", "POST"]
    )
    app.add_url_rule("/mod-check", "mod_check", login_required(lambda: "moderator ok"))
    try:
        client = app.test_client()
        assert client.get("/ops-check").status_code == 302
        sign_in(client, accounts.moderator(SITE))
        assert client.get("/mod-check").text == "moderator ok"
        assert client.get("/ops-check").status_code == 403
        admin = app.test_client()
        token = sign_in(admin, accounts.moderator(admin=True))
        assert admin.get("/ops-check").text == "admin ok"
        assert admin.post("/ops-check").status_code == 400
        assert admin.post("/ops-check", headers={"X-CSRFToken": token}).text == "admin ok"
    finally:
        app.extensions["moderation"].engine.dispose()


# ---------------------------------------------------------------------- site isolation


def test_another_sites_comment_is_not_found_anywhere(client, sessions, accounts):
    token = sign_in(client, accounts.moderator(SITE))
    ours = seed_comment(sessions, SITE, ABUSIVE)
    theirs = seed_comment(sessions, OTHER, "Their idiot comment, secret words")
    page = client.get("/moderate?queue=all").text
    assert ours in page and theirs not in page and "secret words" not in page
    assert client.get(f"/moderate/comments/{theirs}").status_code == 404
    headers = HTMX | {"X-CSRFToken": token}
    for action in ("approve", "reject"):
        answer = client.post(
            f"/moderate/comments/{theirs}/{action}", data={"reason": "spam"}, headers=headers
        )
        assert answer.status_code == 404
    bulk = client.post("/moderate/bulk/approve", data={"ids": [f"{theirs}:1"]}, headers=headers)
    assert bulk.status_code == 422
    assert status_of(sessions, theirs) == Status.HELD
    assert "secret words" not in client.get("/audit").text


def test_an_admin_sees_every_site(client, sessions, accounts):
    sign_in(client, accounts.moderator(admin=True))
    ours = seed_comment(sessions, SITE, ABUSIVE)
    theirs = seed_comment(sessions, OTHER, ABUSIVE)
    page = client.get("/moderate").text
    assert ours in page and theirs in page
    assert client.get(f"/moderate/comments/{theirs}").status_code == 200


# ------------------------------------------------------------------------ web actions


def test_an_htmx_approval_removes_the_card_and_updates_the_counts(client, sessions, accounts):
    token = sign_in(client, accounts.moderator(SITE))
    held = seed_comment(sessions, SITE, ABUSIVE)
    seed_comment(sessions, SITE, f"{ABUSIVE} again")
    version = version_of(client.get("/moderate").text, held)
    answer = client.post(
        f"/moderate/comments/{held}/approve",
        data={"version": version},
        headers=HTMX | {"X-CSRFToken": token},
    )
    assert answer.status_code == 200
    assert f'id="card-{held}"' not in answer.text
    assert 'id="queue-tabs" class="tabs" aria-label="Queues" hx-swap-oob="true"' in answer.text
    assert 'data-queue="held">1<' in answer.text and 'data-queue="approved">1<' in answer.text
    assert "Approved: " in answer.text
    again = client.post(
        f"/moderate/comments/{held}/approve",
        data={"version": version},
        headers=HTMX
        | {"HX-Current-URL": "http://localhost/moderate?queue=all", "X-CSRFToken": token},
    )
    assert again.status_code == 200
    assert "already approved" in again.text
    assert f'id="card-{held}"' in again.text and 'class="badge approved"' in again.text


def test_a_second_moderator_with_a_stale_card_is_told(client, app, sessions, accounts):
    first, second = accounts.moderator(SITE), accounts.moderator(SITE)
    held = seed_comment(sessions, SITE, ABUSIVE)
    other = app.test_client()
    first_token, second_token = sign_in(client, first), sign_in(other, second)
    version = version_of(other.get("/moderate").text, held)
    url = f"/moderate/comments/{held}"
    won = client.post(
        f"{url}/approve", data={"version": version}, headers=HTMX | {"X-CSRFToken": first_token}
    )
    lost = other.post(
        f"{url}/reject",
        data={"version": version, "reason": "spam"},
        headers=HTMX | {"X-CSRFToken": second_token},
    )
    assert (won.status_code, lost.status_code) == (200, 409)
    assert f"{first.email} changed this comment to approved first" in lost.text
    assert 'class="notice"' in lost.text
    assert status_of(sessions, held) == Status.APPROVED
    history = client.get(f"/moderate/comments/{held}").text
    assert first.email in history and second.email in history and "not applied" in history


def test_without_javascript_the_forms_still_work(client, sessions, accounts):
    token = sign_in(client, accounts.moderator(SITE))
    held = seed_comment(sessions, SITE, ABUSIVE)
    answer = client.post(
        f"/moderate/comments/{held}/reject",
        data={"csrf_token": token, "reason": "abusive", "note": "threatening"},
        headers={"Referer": "http://localhost/moderate"},
    )
    assert (answer.status_code, answer.headers["Location"]) == (303, "http://localhost/moderate")
    assert "Rejected (Abusive)" in client.get("/moderate").text
    assert status_of(sessions, held) == Status.REJECTED


# ---------------------------------------------------------------------------- JSON API


def test_the_moderation_api_needs_a_moderator_token(client, sessions, accounts, site_key):
    for headers in (
        {},
        {"Authorization": "Bearer mmt_unknown"},
        {"Authorization": f"Bearer {site_key}"},
    ):
        answer = client.get("/api/v1/moderation/queue", headers=headers)
        assert answer.status_code == 401
        assert answer.get_json()["error"]["code"] == "unauthorized"


def test_the_moderation_api_acts_on_own_sites_only(client, sessions, accounts):
    account = accounts.moderator(SITE)
    auth = {"Authorization": f"Bearer {accounts.token(account)}"}
    ours = seed_comment(sessions, SITE, ABUSIVE)
    theirs = seed_comment(sessions, OTHER, ABUSIVE)
    queue = client.get("/api/v1/moderation/queue", headers=auth).get_json()
    assert [c["id"] for c in queue["comments"]] == [ours]
    assert queue["counts"]["held"] == 1
    card = queue["comments"][0]
    assert card["site"] == SITE and card["author_record"] == {"approved": 0, "rejected": 0}
    assert card["history"][0]["reason"] == "scored"
    for path in (f"comments/{theirs}", f"comments/{theirs}/approve"):
        method = client.post if path.endswith("approve") else client.get
        answer = method(f"/api/v1/moderation/{path}", headers=auth)
        assert answer.status_code == 404
        assert answer.get_json()["error"]["code"] == "not_found"
    assert status_of(sessions, theirs) == Status.HELD


def test_the_moderation_api_approves_rejects_and_reports_conflicts(client, sessions, accounts):
    auth = {"Authorization": f"Bearer {accounts.token(accounts.moderator(SITE))}"}
    held = seed_comment(sessions, SITE, ABUSIVE)
    base = f"/api/v1/moderation/comments/{held}"
    version = client.get(base, headers=auth).get_json()["version"]
    refused = client.post(f"{base}/reject", json={"version": version}, headers=auth)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["field"] == "reason"
    done = client.post(f"{base}/approve", json={"version": version}, headers=auth)
    assert done.status_code == 200
    assert done.get_json()["result"] == "applied"
    assert done.get_json()["comment"]["status"] == "approved"
    again = client.post(f"{base}/approve", headers=auth).get_json()
    assert again["result"] == "unchanged" and "already approved" in again["message"]
    other = {"Authorization": f"Bearer {accounts.token(accounts.moderator(SITE))}"}
    stale = client.post(
        f"{base}/reject", json={"version": version, "reason": "spam"}, headers=other
    )
    assert stale.status_code == 409
    assert stale.get_json()["error"]["code"] == "conflict"
    reversed_ = client.post(
        f"{base}/reject", json={"reason": "spam", "note": "advert"}, headers=other
    )
    assert reversed_.get_json()["comment"]["status"] == "rejected"
    audit = client.get(f"/api/v1/moderation/audit?comment={held}", headers=auth).get_json()
    assert [e["reason"] for e in audit["events"]] == ["spam", "conflict", "approved", "scored"]
    assert audit["events"][0]["note"] == "advert"


def test_the_moderation_api_bulk_reports_each_comment(client, sessions, accounts):
    auth = {"Authorization": f"Bearer {accounts.token(accounts.moderator(SITE))}"}
    held = [seed_comment(sessions, SITE, f"{ABUSIVE} {n}") for n in range(3)]
    theirs = seed_comment(sessions, OTHER, ABUSIVE)
    answer = client.post(
        "/api/v1/moderation/bulk",
        json={"action": "reject", "reason": "abusive", "comments": [*held, {"id": theirs}]},
        headers=auth,
    )
    assert answer.status_code == 200
    results = answer.get_json()["results"]
    assert [r["result"] for r in results] == ["applied"] * 3 + ["not_found"]
    assert {status_of(sessions, public_id) for public_id in held} == {Status.REJECTED}
    assert status_of(sessions, theirs) == Status.HELD
    bad = client.post("/api/v1/moderation/bulk", json={"action": "delete"}, headers=auth)
    assert bad.status_code == 422


def test_the_openapi_document_describes_the_moderation_api(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/moderation/comments/{public_id}/reject" in document["paths"]
    assert "moderatorToken" in document["components"]["securitySchemes"]


# --------------------------------------------------------------------------------- CLI


def test_the_cli_creates_moderators_and_tokens(client, sessions, settings, site_key):
    runner = CliRunner()
    env = {"MODERATION_DATABASE_URL": settings.database_url}
    email = "cli-moderator@example.test"
    try:
        missing = runner.invoke(
            main,
            ["create-moderator", email, "--site", "nope"],
            env=env,
            input="a good password\na good password\n",
        )
        assert missing.exit_code != 0 and "no site named 'nope'" in missing.output
        created = runner.invoke(
            main,
            ["create-moderator", email, "--site", "example-news"],
            env=env,
            input="a good password\na good password\n",
        )
        assert created.exit_code == 0, created.output
        issued = runner.invoke(main, ["create-moderator-token", email, "--name", "tools"], env=env)
        assert issued.exit_code == 0, issued.output
        token = issued.output.strip().splitlines()[-1]
        answer = client.get(
            "/api/v1/moderation/queue", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200
    finally:
        with sessions() as session:
            for moderator in session.scalars(select(Moderator)):
                session.delete(moderator)
            session.commit()
