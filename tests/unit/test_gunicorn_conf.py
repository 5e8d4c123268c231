"""The API's gunicorn settings keep site keys (Perspective's ``?key=``) out of access logs."""

from __future__ import annotations

from types import SimpleNamespace

from gunicorn.config import Config
from gunicorn.glogging import Logger

from moderation import gunicorn_conf
from moderation.devserver import _service_commands


def test_access_log_lines_carry_the_path_but_not_the_query_string():
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", gunicorn_conf.access_log_format)
    request = SimpleNamespace(
        headers=[("USER-AGENT", "test")],
        method="POST",
        path="/v1alpha1/comments:analyze",
        query="key=msk_secret",
        uri="/v1alpha1/comments:analyze?key=msk_secret",
        version=(1, 1),
    )
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "POST",
        "RAW_URI": request.uri,
        "PATH_INFO": request.path,
        "QUERY_STRING": request.query,
        "SERVER_PROTOCOL": "HTTP/1.1",
    }

    atoms = Logger(config).atoms(
        response, request, environ, SimpleNamespace(seconds=0, microseconds=1)
    )
    line = gunicorn_conf.access_log_format % atoms

    assert "/v1alpha1/comments:analyze" in line
    assert "msk_secret" not in line


def test_the_development_server_uses_these_settings():
    web = _service_commands(port=8000, worker_processes=1)["web"]
    assert web[web.index("--config") + 1] == "python:moderation.gunicorn_conf"
