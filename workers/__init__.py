"""Celery workers: they score comments and store decisions through moderation's services."""
