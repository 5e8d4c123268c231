"""Fetch Detoxify's published models ahead of time, into the caches Detoxify itself reads.

On first use, ``Detoxify(name)`` downloads the checkpoint with torch.hub from the URL in
``detoxify.detoxify.MODEL_URLS`` into ``$TORCH_HOME/hub/checkpoints`` (under the URL's file
name), and the config and tokenizer of the checkpoint's ``model_type`` from the Hugging Face
Hub. ``fetch_model`` does both beforehand, checks the checkpoint before it takes its place,
and reports where everything went, so that the caches can be copied to a host without
internet. torch, detoxify and huggingface_hub are imported inside the functions.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

# What transformers reads to build a config and a tokenizer (BERT, RoBERTa, ALBERT and
# XLM-R vocabularies), and no weights: Detoxify's checkpoint carries those.
HF_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "*.model",
)
USER_AGENT = "comment-moderation (moderation model fetch)"
TIMEOUT = 60  # seconds without a byte before a download is abandoned
CHUNK_BYTES = 1 << 20
# torch.hub's convention: the file name carries the start of the file's SHA-256.
_NAME_HASH = re.compile(r"-([a-f0-9]+)\.")


class FetchError(RuntimeError):
    """A model could not be fetched; the message says what and from where."""


@dataclass(frozen=True)
class FetchedModel:
    """Where a fetched model's files are, and what was done to put them there."""

    name: str
    url: str
    checkpoint: Path
    downloaded: bool
    sha256: str
    model_type: str
    hf_snapshot: Path | None  # None when model_type is a local directory

    @property
    def hash_in_name(self) -> str | None:
        """The SHA-256 prefix in the checkpoint's file name, if it has one."""
        match = _NAME_HASH.search(self.checkpoint.name)
        return match.group(1) if match else None


def known_models() -> dict[str, str]:
    """Detoxify's model names and the URLs of their checkpoints."""
    from detoxify import detoxify

    return dict(detoxify.MODEL_URLS)


def checkpoint_url(name: str) -> str:
    """The URL Detoxify downloads ``name``'s checkpoint from; FetchError for an unknown name."""
    urls = known_models()
    if name not in urls:
        raise FetchError(f"unknown Detoxify model {name!r}; known: {', '.join(sorted(urls))}")
    return urls[name]


def cached_checkpoint(url: str) -> Path:
    """Where torch.hub, and so Detoxify, keeps the checkpoint downloaded from ``url``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlsplit(url).path)


def fetch_model(
    name: str, *, progress: bool = True, log: Callable[[str], Any] = print
) -> FetchedModel:
    """Put ``name``'s checkpoint and Hugging Face files in the caches Detoxify loads from."""
    url = checkpoint_url(name)
    target = cached_checkpoint(url)
    config = _cached_config(target, log)
    downloaded = config is None
    if config is None:
        log(f"downloading {url}")
        config = download_checkpoint(url, target, progress=progress)
    model_type = config["arch"]["args"]["model_type"]
    return FetchedModel(
        name=name,
        url=url,
        checkpoint=target,
        downloaded=downloaded,
        sha256=file_sha256(target),
        model_type=model_type,
        hf_snapshot=fetch_hf_files(model_type, log=log),
    )


def _cached_config(target: Path, log: Callable[[str], Any]) -> dict[str, Any] | None:
    """The cached checkpoint's config, or None when it must be downloaded (again)."""
    if not target.is_file():
        return None
    try:
        return read_checkpoint_config(target)
    except FetchError as exc:
        log(f"the cached checkpoint is unusable ({exc}); downloading it again")
        return None


def download_checkpoint(url: str, target: Path, *, progress: bool = True) -> dict[str, Any]:
    """Download ``url`` beside ``target``, check it, then rename it into place; its config.

    Detoxify loads whatever file has the target's name, so nothing reaches that name before
    it is complete and readable; a failed download leaves no file behind.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".download", dir=target.parent)
    os.close(fd)
    staging = Path(name)
    try:
        _download(url, staging, progress=progress)
        config = read_checkpoint_config(staging, source=url)
        staging.chmod(0o644)  # mkstemp's 0600 would hide it from workers run as other users
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)
    return config


def _download(url: str, dest: Path, *, progress: bool) -> None:
    """Copy ``url`` to ``dest`` with a progress bar; FetchError unless every byte arrived."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"not an http(s) URL: {url}")
    request = Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310 (scheme checked)
    try:
        response = urlopen(request, timeout=TIMEOUT)  # noqa: S310
        with response, dest.open("wb") as out:
            expected = _content_length(response)
            _copy(response, out, expected, progress=progress)
    except HTTPError as exc:
        exc.close()  # it holds the response, and with it the connection
        raise FetchError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
    except URLError as exc:
        raise FetchError(
            f"could not download {url}: {exc.reason} (no internet? fetch on a host that has "
            "it and copy the caches, see `moderation model fetch --help`)"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"could not download {url}: {type(exc).__name__}: {exc}") from None
    received = dest.stat().st_size
    # Python's HTTP client ends a body that stops short without an error: count the bytes.
    if expected is not None and received != expected:
        raise FetchError(f"the download of {url} stopped at {received} of {expected} bytes")


def _content_length(response: Any) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _copy(source: Any, out: BinaryIO, total: int | None, *, progress: bool) -> None:
    from tqdm import tqdm

    bar = tqdm(total=total, disable=not progress, unit="B", unit_scale=True, unit_divisor=1024)
    with bar:
        while chunk := source.read(CHUNK_BYTES):
            out.write(chunk)
            bar.update(len(chunk))


def read_checkpoint_config(path: Path, *, source: str | None = None) -> dict[str, Any]:
    """The ``config`` of a complete, readable Detoxify checkpoint; FetchError otherwise."""
    label = source or str(path)
    if path.stat().st_size == 0:
        raise FetchError(f"the checkpoint from {label} is empty")
    loaded = _load_checkpoint(path, label)
    try:
        config = loaded["config"]
        args = config["arch"]["args"]
        if not isinstance(args["model_type"], str) or "state_dict" not in loaded:
            raise TypeError("model_type is not a string or there is no state_dict")
    except (KeyError, TypeError) as exc:
        raise FetchError(
            f"the file from {label} is not a Detoxify checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    return config


def _load_checkpoint(path: Path, label: str) -> Any:
    import torch

    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        _check_zip(path, label)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as exc:
        if not is_zip:
            raise FetchError(
                f"the checkpoint from {label} is damaged or incomplete: {exc}"
            ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise FetchError(f"the checkpoint from {label} is damaged or incomplete: {exc}") from None
    # weights_only refused an object in an archive whose every member passed its CRC check,
    # so the file is whole; Detoxify loads these files with weights_only=False anyway.
    return torch.load(path, map_location="cpu", weights_only=False, mmap=True)


def _check_zip(path: Path, label: str) -> None:
    """Read every member of the archive and check its CRC: a cut or damaged file fails."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FetchError(f"the checkpoint from {label} is damaged or incomplete: {exc}") from None
    if bad is not None:
        raise FetchError(f"the checkpoint from {label} is damaged: {bad} fails its CRC check")


def fetch_hf_files(model_type: str, *, log: Callable[[str], Any] = print) -> Path | None:
    """Cache ``model_type``'s config and tokenizer from the Hugging Face Hub; its snapshot.

    None when ``model_type`` is a local directory: transformers reads it there, offline.
    """
    if Path(model_type).expanduser().is_dir():
        return None
    from huggingface_hub import constants, snapshot_download

    log(f"fetching the config and tokenizer of {model_type} from the Hugging Face Hub")
    try:
        return Path(snapshot_download(repo_id=model_type, allow_patterns=list(HF_FILES)))
    except (OSError, ValueError) as exc:
        raise FetchError(
            f"could not fetch {constants.ENDPOINT}/{model_type} "
            f"(config and tokenizer): {type(exc).__name__}: {exc}"
        ) from None


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def cache_homes() -> tuple[Path, str]:
    """TORCH_HOME, and the variable and value that place the Hugging Face hub cache."""
    import torch
    from huggingface_hub import constants

    hf_cache = Path(constants.HF_HUB_CACHE)
    if hf_cache == Path(constants.HF_HOME) / "hub":
        return Path(torch.hub.get_dir()).parent, f"HF_HOME={constants.HF_HOME}"
    return Path(torch.hub.get_dir()).parent, f"HF_HUB_CACHE={hf_cache}"


def describe(fetched: FetchedModel) -> list[str]:
    """Where the files are, and how to copy them to a host without internet."""
    size = fetched.checkpoint.stat().st_size
    how = f"downloaded from {fetched.url}" if fetched.downloaded else "already in the cache"
    lines = [
        f"checkpoint for {fetched.name!r}: {fetched.checkpoint} ({size / 1e6:.1f} MB, {how})",
        f"sha256 {fetched.sha256}",
    ]
    expected = fetched.hash_in_name
    if expected and not fetched.sha256.startswith(expected):
        lines.append(
            f"note: the sha256 does not begin with {expected}, the hash in its file name "
            "(Detoxify does not check it)"
        )
    if fetched.hf_snapshot is None:
        lines.append(
            f"model_type {fetched.model_type} is a local directory: nothing to fetch from the "
            "Hugging Face Hub, but the offline host needs it at the same path"
        )
    else:
        lines.append(f"config and tokenizer of {fetched.model_type}: {fetched.hf_snapshot}")
    return lines + _offline_copy(fetched)


def _offline_copy(fetched: FetchedModel) -> list[str]:
    torch_home, hf_variable = cache_homes()
    lines = [
        "To load it on a host without internet, copy these directories there and set each "
        "variable to where its copy lands:",
        f"  TORCH_HOME={torch_home}    # holds hub/checkpoints/{fetched.checkpoint.name}",
    ]
    if fetched.hf_snapshot is not None:
        # <cache>/models--org--name/snapshots/<revision>
        repo_folder = fetched.hf_snapshot.parent.parent.name
        lines.append(f"  {hf_variable}    # holds {repo_folder}")
        lines.append("  HF_HUB_OFFLINE=1    # read the Hugging Face cache without asking the Hub")
    lines.append(f"then run the workers with MODERATION_MODEL={fetched.name}.")
    return lines
