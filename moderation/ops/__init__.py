"""The ops face: health probes, worker heartbeats, Prometheus metrics, `moderation status`
and the admins' ops page. Only ``web`` and ``views`` use Flask; the rest serves workers too.
"""
