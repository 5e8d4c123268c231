"""Entry point for gunicorn: ``gunicorn moderation.wsgi:app``."""

from moderation import create_app

app = create_app()
