"""The widget in headless Chromium: the demo article, a real worker, embeds on other origins."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from moderation.config import load_settings
from moderation.db import unit_of_work
from moderation.demo import ARTICLE_ID, prepare_demo_site
from moderation.models import Article, Comment, Status
from moderation.services.integration import set_allowed_origins
from moderation.services.sites import site_by_name
from tests.support import LiveServer, serving, wait_until
from tests.test_pipeline import CLEAN

pytestmark = pytest.mark.e2e

WAIT_MS = 15_000
# The session's app keeps the default public limits, tight enough to trip over the other
# tests' posts from 127.0.0.1; this server counts the same way but allows more.
GENEROUS = {
    "ratelimit_public_ip": "1000/minute",
    "ratelimit_public_author": "1000/minute",
    "ratelimit_public_read": "1000/minute",
}


@pytest.fixture
def widget_server(settings, sessions) -> Iterator[LiveServer]:
    """The app over HTTP on the worker's queue, the demo site set up for its origin."""
    with serving(load_settings(**(settings.model_dump() | GENEROUS))) as server:
        with unit_of_work(sessions) as session:
            prepare_demo_site(session, [server.url])
        yield server


class EmbeddingPage:
    """Another site's article page, on its own loopback origin, embedding the widget."""

    def __init__(self, widget_url: str, key: str, article_id: str):
        html = (
            "<!doctype html><html lang='en'><head><title>Elsewhere</title></head><body>"
            "<h1>An article on another site</h1>"
            f"<div data-article-id='{article_id}'></div>"
            f"<script src='{widget_url}/widget/v1/comments.js' data-key='{key}' defer></script>"
            "</body></html>"
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(html)))
                self.end_headers()
                self.wfile.write(html)

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> EmbeddingPage:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def demo_key(sessions) -> str:
    with sessions() as session:
        return site_by_name(session, "demo").publishable_key


def status_of(sessions, text: str) -> str | None:
    with sessions() as session:
        return session.scalars(select(Comment.status).where(Comment.text == text)).first()


def post_through_the_form(page, name: str, text: str, button: str) -> None:
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Your comment").fill(text)
    page.get_by_role("button", name=button).click()


def test_a_reader_comments_on_the_demo_article_and_it_is_published(
    page, worker, widget_server, sessions
):
    page.goto(f"{widget_server.url}/demo")
    expect(page.get_by_role("heading", name="What is your opinion on this topic?")).to_be_visible(
        timeout=WAIT_MS
    )
    first = page.get_by_role("button", name="Leave the first comment")
    expect(first).to_be_visible(timeout=WAIT_MS)

    post_through_the_form(page, "Ann", CLEAN[0], "Leave the first comment")
    mine = page.locator(".mc-comment", has_text=CLEAN[0])
    expect(mine).to_contain_text("Awaiting moderation", timeout=WAIT_MS)
    expect(page.get_by_role("status")).to_have_text(
        "Thank you! Your comment is awaiting moderation."
    )
    expect(mine).to_be_focused()

    assert wait_until(lambda: status_of(sessions, CLEAN[0]) == Status.APPROVED, timeout=120)
    page.reload()
    published = page.locator(".mc-list .mc-comment", has_text=CLEAN[0])
    expect(published).to_be_visible(timeout=WAIT_MS)
    expect(published).not_to_contain_text("Awaiting moderation")
    expect(published.locator(".mc-author")).to_have_text("Ann")
    expect(page.get_by_role("button", name="Post comment")).to_be_visible()
    expect(page.get_by_label("Your name")).to_have_value("Ann")  # remembered


def test_the_form_works_from_the_keyboard_and_shows_markup_as_text(page, widget_server):
    page.goto(f"{widget_server.url}/demo")
    name = page.get_by_label("Your name")
    expect(name).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("button", name="Leave the first comment").press("Enter")  # empty form
    expect(name).to_be_focused()
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("Please enter your name.")).to_be_visible()

    page.keyboard.type("Bob")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Your comment")).to_be_focused()
    payload = '<img src=x onerror="window.injected = 1"> <b>bold?</b>'
    page.keyboard.type(payload)
    page.keyboard.press("Control+Enter")
    mine = page.locator(".mc-comment", has_text="bold?")
    expect(mine.locator(".mc-text")).to_have_text(payload, timeout=WAIT_MS)
    assert mine.locator("img, b").count() == 0
    assert page.evaluate("window.injected") is None


def test_a_site_page_on_an_allowed_origin_embeds_the_widget(page, widget_server, sessions):
    key = demo_key(sessions)
    with EmbeddingPage(widget_server.url, key, "elsewhere/article") as site_page:
        with unit_of_work(sessions) as session:
            prepare_demo_site(session, [site_page.url])
        page.goto(site_page.url)
        post_through_the_form(page, "Cleo", "Posted across origins.", "Leave the first comment")
        mine = page.locator(".mc-comment", has_text="Posted across origins.")
        expect(mine).to_contain_text("Awaiting moderation", timeout=WAIT_MS)
    assert status_of(sessions, "Posted across origins.") is not None


def test_a_page_on_a_disallowed_origin_cannot_use_the_widget(page, widget_server, sessions):
    key = demo_key(sessions)
    blocked = []
    page.on("requestfailed", lambda request: blocked.append(request.url))
    with EmbeddingPage(widget_server.url, key, ARTICLE_ID) as site_page:
        page.goto(site_page.url)
        expect(page.get_by_text("Comments could not be loaded.")).to_be_visible(timeout=WAIT_MS)
        post_through_the_form(page, "Eve", "Sneaking in.", "Leave the first comment")
        expect(page.get_by_role("status")).to_contain_text("could not be reached", timeout=WAIT_MS)
    # The browser itself refused: the service named no origin in its CORS answer.
    assert any("/api/v1/public/" in url for url in blocked), blocked
    assert status_of(sessions, "Sneaking in.") is None


def test_a_closed_article_shows_that_it_is_closed(page, widget_server, sessions):
    with unit_of_work(sessions) as session:
        site = site_by_name(session, "demo")
        set_allowed_origins(session, site, [widget_server.url])
    page.goto(f"{widget_server.url}/demo")
    expect(page.get_by_role("button", name="Leave the first comment")).to_be_visible(
        timeout=WAIT_MS
    )
    with unit_of_work(sessions) as session:
        session.add(Article(site_id=site.id, external_id=ARTICLE_ID, closed=True))
    page.reload()
    expect(page.get_by_text("Comments are closed for this article.")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_label("Your comment")).to_have_count(0)
