"""The Celery app the workers and beat run: ``celery -A workers.app worker``."""

from __future__ import annotations

from celery import Celery
from celery.signals import celeryd_after_setup, worker_process_init

from moderation.config import load_settings
from moderation.services.webhooks import SWEEP_WEBHOOKS
from moderation.tasks_client import SWEEP_PENDING, celery_config
from workers import monitoring

settings = load_settings()

app = Celery("moderation", include=["workers.tasks", "workers.webhooks", "workers.coral"])
app.conf.update(celery_config(settings))
app.conf.beat_schedule = {
    "resend-stale-pending": {"task": SWEEP_PENDING, "schedule": settings.sweep_interval},
    "send-overdue-webhooks": {"task": SWEEP_WEBHOOKS, "schedule": settings.sweep_interval},
}

# Heartbeats, task metrics and structured logs; connected before the worker boots.
monitor = monitoring.install(settings)


@worker_process_init.connect
def _fresh_connections_after_fork(**_kwargs: object) -> None:
    # Pooled connections inherited from the parent would be shared with it across fork.
    from workers.runtime import runtime

    runtime.after_fork()
    runtime.warm_up_in_background(on_ready=_ready_for_sync_scoring)


def _ready_for_sync_scoring(scorer: object) -> None:
    # The worker's name was learnt before the fork, so each pool process knows it.
    monitor.warmed.value = 1
    if monitor.nodename:
        name, version = getattr(scorer, "model_name", "?"), getattr(scorer, "model_version", "?")
        monitor.heartbeats.mark_ready(monitor.nodename, name=str(name), version=str(version))


@celeryd_after_setup.connect
def _remember_pool_size(sender: str, instance: object, **_kwargs: object) -> None:
    # Children inherit this across fork and split the cores between them.
    from workers.runtime import runtime

    runtime.pool_size = int(getattr(instance, "concurrency", 1) or 1)
    # A broken model stops the worker here, before the pool forks; else ops can see it.
    monitor.heartbeats.describe_model(sender, runtime.check_model())
    # A worker restarted under the same name is loading again until a pool process warms up.
    monitor.warmed.value = 0
    monitor.heartbeats.mark_loading(sender)
