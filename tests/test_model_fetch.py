"""`moderation model fetch`: a published Detoxify checkpoint, served from 127.0.0.1 at the
release URL's path, goes into torch.hub's cache and then loads and scores through Detoxify's
own code without a second download."""

from __future__ import annotations

import argparse
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import torch
from click.testing import CliRunner
from detoxify import Detoxify
from detoxify import detoxify as detoxify_module

from moderation.cli import main
from moderation.scoring import fetch
from moderation.scoring.model_build import CHECKPOINT_FILE, HF_DIR, _load_base_model, _save_model

NAME = "original"
RELEASE_URL = detoxify_module.MODEL_URLS[NAME]
# A head bias far from 0 gives each label a score of its own, so the scores show that the
# served head was loaded and not a freshly initialised one (every score about 0.5).
HEAD_BIAS = (-4.0, -2.0, -1.0, 1.0, 2.0, 4.0)
TEXTS = ["Clear and fair, thank you.", "You are an idiot and everyone knows it."]


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A Detoxify-format checkpoint of the MiniLM encoder; its model_type is a local dir."""
    root = tmp_path_factory.mktemp("release")
    model, tokenizer = _load_base_model(seed=0)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor(HEAD_BIAS))
    _save_model(model, tokenizer, root, final_dir=root)
    return root


class ReleaseServer(http.server.ThreadingHTTPServer):
    """Answers GET at the release URL's path: whole, missing (404), cut off, or truncated."""

    def __init__(self, body: bytes, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), ReleaseHandler)
        self.body = body
        self.mode = mode
        self.requests: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{urlsplit(RELEASE_URL).path}"


class ReleaseHandler(http.server.BaseHTTPRequestHandler):
    server: ReleaseServer

    def do_GET(self) -> None:
        server = self.server
        server.requests.append(("GET", self.path))
        if self.path != urlsplit(server.url).path or server.mode == "missing":
            self.send_error(404)
            return
        body = server.body
        half = body[: len(body) // 2]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        # "cut-off" promises the whole file and closes the connection half way through;
        # "truncated" serves half a file that says it is half a file.
        self.send_header("Content-Length", str(len(half if server.mode == "truncated" else body)))
        self.end_headers()
        self.wfile.write(body if server.mode == "whole" else half)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve(release, monkeypatch) -> Iterator:
    """Start a release server in a thread and point Detoxify's URL table at it."""
    servers: list[tuple[ReleaseServer, threading.Thread]] = []

    def start(mode: str = "whole") -> ReleaseServer:
        server = ReleaseServer((release / CHECKPOINT_FILE).read_bytes(), mode)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        monkeypatch.setitem(detoxify_module.MODEL_URLS, NAME, server.url)
        return server

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


def fetch_command(*args: str):
    return CliRunner().invoke(main, ["model", "fetch", *args])


def cached_files(torch_home: Path) -> list[str]:
    return sorted(p.name for p in torch_home.rglob("*") if p.is_file())


def test_fetch_fills_the_cache_that_detoxify_then_loads_and_scores_from(release, serve, torch_home):
    server = serve()
    result = fetch_command(NAME)
    assert result.exit_code == 0, result.output
    cached = torch_home / "hub" / "checkpoints" / Path(urlsplit(RELEASE_URL).path).name
    assert cached.read_bytes() == (release / CHECKPOINT_FILE).read_bytes()
    assert cached_files(torch_home) == [cached.name]
    assert f"downloaded from {server.url}" in result.output
    assert f"TORCH_HOME={torch_home}" in result.output
    assert "is a local directory" in result.output  # model_type: no Hugging Face download

    detoxify = Detoxify(NAME)  # Detoxify's own path: torch.hub's cache, then transformers
    scores = detoxify.predict(TEXTS)
    assert server.requests == [("GET", urlsplit(server.url).path)]

    direct = Detoxify(
        checkpoint=str(release / CHECKPOINT_FILE), huggingface_config_path=str(release / HF_DIR)
    ).predict(TEXTS)
    assert scores.keys() == direct.keys()
    for label, values in scores.items():
        assert values == pytest.approx(direct[label], abs=1e-6)
    for row in range(len(TEXTS)):
        by_score = sorted(scores, key=lambda label, row=row: scores[label][row])
        assert by_score == list(scores)  # the served head's bias order

    again = fetch_command(NAME)
    assert again.exit_code == 0, again.output
    assert "already in the cache" in again.output
    assert len(server.requests) == 1


def test_an_unusable_cached_checkpoint_is_downloaded_again(serve, torch_home):
    server = serve()
    cached = fetch.cached_checkpoint(server.url)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a checkpoint")
    result = fetch_command(NAME)
    assert result.exit_code == 0, result.output
    assert "unusable" in result.output and len(server.requests) == 1
    assert fetch.read_checkpoint_config(cached)["arch"]["args"]["model_type"]


def test_an_unknown_name_is_refused_with_the_known_names(torch_home):
    result = fetch_command("gpt-toxic")
    assert result.exit_code != 0
    assert "unknown Detoxify model 'gpt-toxic'" in result.output
    for name in ("original", "unbiased", "multilingual", "original-small", "unbiased-small"):
        assert name in result.output
    assert cached_files(torch_home) == []


@pytest.mark.parametrize(
    ("mode", "says"),
    [("missing", "HTTP 404"), ("cut-off", "stopped at"), ("truncated", "damaged or incomplete")],
)
def test_a_failed_download_names_the_url_and_leaves_nothing_in_the_cache(
    serve, torch_home, mode, says
):
    server = serve(mode)
    result = fetch_command(NAME)
    assert result.exit_code != 0
    assert server.url in result.output and says in result.output, result.output
    assert len(server.requests) == 1
    assert cached_files(torch_home) == []


def test_without_a_network_the_error_names_the_url(torch_home, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}{urlsplit(RELEASE_URL).path}"
    monkeypatch.setitem(detoxify_module.MODEL_URLS, NAME, url)
    result = fetch_command(NAME)
    assert result.exit_code != 0
    assert f"could not download {url}" in result.output and "no internet?" in result.output
    assert cached_files(torch_home) == []


def test_hugging_face_files_are_config_and_tokenizer_only(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def snapshot_download(**kwargs):
        calls.append(kwargs)
        return str(tmp_path / "models--bert-base-uncased" / "snapshots" / "abc")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    snapshot = fetch.fetch_hf_files("bert-base-uncased", log=lambda _: None)
    assert snapshot == tmp_path / "models--bert-base-uncased" / "snapshots" / "abc"
    assert [call["repo_id"] for call in calls] == ["bert-base-uncased"]
    patterns = calls[0]["allow_patterns"]
    assert {"config.json", "tokenizer.json", "vocab.txt"} <= set(patterns)
    assert not any("safetensors" in p or ".bin" in p for p in patterns)

    assert fetch.fetch_hf_files(str(tmp_path), log=lambda _: None) is None  # a local dir
    assert len(calls) == 1


def test_a_hugging_face_failure_names_the_repository(monkeypatch):
    import huggingface_hub

    def snapshot_download(**kwargs):
        raise huggingface_hub.errors.LocalEntryNotFoundError("connection refused")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    with pytest.raises(fetch.FetchError, match="/bert-base-uncased"):
        fetch.fetch_hf_files("bert-base-uncased", log=lambda _: None)


def test_a_whole_archive_that_weights_only_refuses_still_passes(tmp_path):
    config = {"arch": {"args": {"model_type": "bert-base-uncased"}}, "extra": argparse.Namespace()}
    path = tmp_path / "ckpt"
    torch.save({"config": config, "state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path, weights_only=True)
    assert fetch.read_checkpoint_config(path)["arch"]["args"]["model_type"] == "bert-base-uncased"

    cut = tmp_path / "cut"
    cut.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(fetch.FetchError, match="damaged or incomplete"):
        fetch.read_checkpoint_config(cut)


def test_a_file_without_config_and_state_dict_is_not_a_detoxify_checkpoint(tmp_path):
    path = tmp_path / "ckpt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(fetch.FetchError, match="not a Detoxify checkpoint"):
        fetch.read_checkpoint_config(path)


def test_help_names_the_models_and_the_offline_copy():
    result = fetch_command("--help")
    assert result.exit_code == 0
    assert "unbiased-small" in result.output and "HF_HUB_OFFLINE" in result.output
