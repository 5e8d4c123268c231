"""The admins' ops page: who may see it, and what an admin sees after real decisions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import select

from moderation.models import Comment, Status
from tests.moderation_support import moderator_accounts, sign_in
from tests.support import wait_until

TEXTS = [
    "Thank you for this thoughtful and well researched article.",
    "I think the council made the right call on the new bike lanes.",
    "Great reporting, I learned a lot about the housing market here.",
    "You are a complete idiot and nobody wants to hear from you.",
]


@pytest.fixture
def accounts(sessions):
    """Moderator accounts, removed after the test."""
    yield from moderator_accounts(sessions)


def test_the_ops_page_is_for_admins_only(app, client, accounts):
    response = client.get("/ops")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    sign_in(client, accounts.moderator("example-news"))
    assert client.get("/ops").status_code == 403
    admin = app.test_client()
    sign_in(admin, accounts.moderator(admin=True))
    page = admin.get("/ops")
    assert page.status_code == 200
    assert "Content-Security-Policy" in page.headers
    assert 'id="decision-chart"' in page.text


@pytest.mark.e2e
def test_an_admin_sees_workers_backlog_decisions_and_the_chart(
    worker, live_server, site_key, sessions, accounts, page, tmp_path
):
    for text in TEXTS:
        response = requests.post(
            f"{live_server.url}/api/v1/comments",
            json={"article_id": "ops/page", "author_id": "r", "author_name": "R", "text": text},
            headers={"Authorization": f"Bearer {site_key}"},
            timeout=30,
        )
        assert response.status_code == 202

    def pending() -> int:
        with sessions() as session:
            query = select(Comment.id).where(Comment.status == Status.PENDING)
            return len(session.scalars(query).all())

    assert wait_until(lambda: pending() == 0, timeout=180)
    admin = accounts.moderator(admin=True)
    page.goto(f"{live_server.url}/login?next=/ops")
    page.get_by_label("Email").fill(admin.email)
    page.get_by_label("Password").fill(admin.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/ops")

    expect(page.locator("#overall")).to_have_text("Healthy")
    for check in ("database", "broker", "workers", "backlog"):
        expect(page.locator(f'#checks tr[data-check="{check}"] .state-cell')).to_have_text("ok")
    worker_row = page.locator("#workers tbody tr", has_text=worker.name)
    expect(worker_row).to_have_class("ok")
    expect(worker_row).not_to_contain_text("not loaded yet")
    recent = page.locator("#recent dd").first
    assert int(recent.inner_text()) >= len(TEXTS)
    expect(page.locator("#queue dd").nth(1)).to_have_text("0")
    area = page.locator("#decision-chart path.decisions").get_attribute("d")
    assert area and area.startswith("M") and area.endswith("Z")
    assert page.locator("#decision-chart path.hold-rate").get_attribute("d").startswith("M")
    box = page.locator("#decision-chart").bounding_box()
    assert box and box["width"] > 600 and box["height"] > 150
    shots = Path(os.environ.get("MODERATION_TEST_SCREENSHOTS", tmp_path))
    page.screenshot(path=str(shots / "ops-page.png"), full_page=True)
