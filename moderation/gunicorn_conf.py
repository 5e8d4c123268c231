"""gunicorn settings for the API: ``gunicorn -c python:moderation.gunicorn_conf ...``.

The access log leaves out query strings: Perspective's clients send the site key as
``?key=``, and a key must never reach a log file.
"""

# gunicorn's default format with %(U)s (the path alone) instead of %(r)s (the request line).
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'
