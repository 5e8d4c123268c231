"""docker-compose.yml for real: the project's image built and the whole stack run with podman.

Opt-in (``make compose-test``): it builds images and takes about a quarter of an hour the
first time. The project's image is built by ``podman build`` from the file's own build
section; compose itself is ``docker-compose`` (or the ``docker compose`` plugin) talking to
podman's Docker-compatible API on a socket this test starts, so ``depends_on`` conditions
(healthy, completed) are honoured as Docker would. Registries cannot be reached here, so
``compose.override.yml`` swaps the images they would give for ones built from a local Debian
root (``localhost/debian:bookworm``, made with debootstrap when missing): PostgreSQL, Redis,
and a Python 3.11 base for the project's Dockerfile. Nothing else of the production file
changes: the same commands, secrets, volumes, healthchecks and ``MODERATION_ENV=production``.

Podman runs healthchecks from systemd timers; where systemd does not run (containers, CI),
this test runs each container's healthcheck itself at its configured interval, as the timer
would. Host set-up on Debian, as root (see shared/CONTAINERS.md): ``apt-get install podman
runc debootstrap docker-compose``, and in /etc/containers/containers.conf::

    [containers]
    default_ulimits = []
    [engine]
    runtime = "runc"
    cgroup_manager = "cgroupfs"
    events_logger = "file"

Where no engine runs, every test here skips and says why.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from tests.compose_file import COMPOSE_FILE, ROOT, generated_secrets
from tests.support import MODEL_PATH, free_port, post_readme_comment, wait_until

pytestmark = [pytest.mark.compose, pytest.mark.timeout(3600)]

HERE = Path(__file__).resolve().parent
OVERRIDE = HERE / "compose.override.yml"
DEBIAN_IMAGE = "localhost/debian:bookworm"
DEBIAN_MIRROR = os.environ.get("MODERATION_COMPOSE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# Local stand-ins for the registry images; names as compose.override.yml has them.
BASE_IMAGES = {
    "localhost/moderation-compose-postgres:16": "Containerfile.postgres",
    "localhost/moderation-compose-redis:7": "Containerfile.redis",
    "localhost/moderation-compose-python:3.11": "Containerfile.python",
}
# A directory with a CPU torch wheel to put in the Python base (the Dockerfile's torch index
# may be out of reach); by default pip's find-links, where the host keeps one.
TORCH_WHEELS = os.environ.get("MODERATION_COMPOSE_TORCH_WHEELS") or os.environ.get(
    "PIP_FIND_LINKS", ""
)
# Certificate authorities the host adds (a TLS proxy's), trusted by the Python base's pip.
EXTRA_CA = Path(os.environ.get("MODERATION_COMPOSE_EXTRA_CA", "/usr/local/share/ca-certificates"))
# The one-shot model service skips a volume that has a model, as on any restart of the stack.
# By default the test puts the suite's model there first: in a container on two cores shared
# with other runs, training took about nine minutes an epoch (of ten).
# MODERATION_COMPOSE_BUILD_MODEL=1 has the service build it.
BUILD_MODEL = os.environ.get("MODERATION_COMPOSE_BUILD_MODEL") == "1"
UP_DEADLINE = 1800
DECISION_DEADLINE = 300


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


def _compose_program() -> list[str] | None:
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    docker = shutil.which("docker")
    if docker and _run([docker, "compose", "version"], timeout=30).returncode == 0:
        return [docker, "compose"]
    return None


def _engine_problem() -> str | None:
    """Why no stack can run here, or None."""
    if shutil.which("podman") is None:
        return "no container engine: podman is not installed (see this module's docstring)"
    info = _run(["podman", "info", "--format", "json"], timeout=60)
    if info.returncode != 0:
        return f"podman does not run here: {info.stderr.strip()[-300:]}"
    if _compose_program() is None:
        return "no compose program: install docker-compose (Debian) or the docker compose plugin"
    return None


def _image_exists(name: str) -> bool:
    return _run(["podman", "image", "exists", name], timeout=60).returncode == 0


def _debian_base(tmp: Path) -> None:
    """``localhost/debian:bookworm`` from debootstrap, when podman does not have it yet."""
    if _image_exists(DEBIAN_IMAGE):
        return
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        pytest.skip(f"{DEBIAN_IMAGE} is missing and debootstrap (as root) cannot build it")
    rootfs = tmp / "rootfs"
    built = _run(
        ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), DEBIAN_MIRROR], timeout=1200
    )
    assert built.returncode == 0, built.stderr[-2000:]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = _run(["podman", "import", "-", DEBIAN_IMAGE], stdin=tar.stdout, timeout=600)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    assert imported.returncode == 0, imported.stderr


def _base_images(tmp: Path) -> None:
    wheels = next(
        (
            Path(folder)
            for folder in TORCH_WHEELS.split()
            if glob.glob(str(Path(folder) / "torch-*.whl"))
        ),
        None,
    )
    empty = tmp / "no-wheels"
    empty.mkdir(exist_ok=True)
    # Built each time: unchanged, every step comes from podman's layer cache in seconds.
    for image, containerfile in BASE_IMAGES.items():
        built = _run(
            [
                "podman",
                "build",
                "--tag",
                image,
                "--file",
                str(HERE / containerfile),
                "--volume",
                f"{wheels or empty}:/wheels:ro",
                "--volume",
                f"{EXTRA_CA if EXTRA_CA.is_dir() else empty}:/host-ca:ro",
                str(HERE),
            ],
            timeout=1800,
        )
        assert built.returncode == 0, f"{image}:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"


class Healthchecks:
    """Runs the project's containers' healthchecks at their intervals, as systemd timers would."""

    def __init__(self, project: str):
        self.project = project
        self._stop = threading.Event()
        self._due: dict[str, float] = {}
        self._interval: dict[str, float | None] = {}
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Healthchecks:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _interval_of(self, container: str) -> float | None:
        if container not in self._interval:
            found = _run(["podman", "inspect", container, "--format", "json"], timeout=60)
            config = json.loads(found.stdout)[0]["Config"] if found.returncode == 0 else {}
            check = config.get("Healthcheck") or {}
            if not check.get("Test") or check["Test"][0] == "NONE":
                self._interval[container] = None
            else:
                self._interval[container] = (check.get("Interval") or 30e9) / 1e9
        return self._interval[container]

    def _loop(self) -> None:
        while not self._stop.is_set():
            listed = _run(
                [
                    "podman",
                    "ps",
                    "--quiet",
                    "--no-trunc",
                    "--filter",
                    f"label=com.docker.compose.project={self.project}",
                ],
                timeout=60,
            )
            now = time.monotonic()
            for container in listed.stdout.split():
                interval = self._interval_of(container)
                if interval is None or self._due.get(container, 0) > now:
                    continue
                self._due[container] = now + interval
                _run(["podman", "healthcheck", "run", container], timeout=interval + 60)
            self._stop.wait(1)


@dataclass
class ComposeStack:
    project: str
    environment: dict[str, str]
    secrets: dict[str, str]
    api_url: str
    flower_url: str
    logs: Path

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        program = _compose_program()
        assert program is not None
        return _run(
            [
                *program,
                "--project-name",
                self.project,
                "--project-directory",
                str(ROOT),
                "-f",
                str(COMPOSE_FILE),
                "-f",
                str(OVERRIDE),
                *args,
            ],
            env=self.environment,
            cwd=ROOT,
            timeout=timeout,
        )

    def container(self, service: str) -> str:
        listed = _run(
            [
                "podman",
                "ps",
                "--all",
                "--quiet",
                "--filter",
                f"label=com.docker.compose.project={self.project}",
                "--filter",
                f"label=com.docker.compose.service={service}",
            ],
            timeout=60,
        )
        ids = listed.stdout.split()
        assert ids, f"no container for {service}"
        return ids[0]

    def state(self, service: str) -> dict:
        found = _run(["podman", "inspect", self.container(service), "--format", "json"], timeout=60)
        return json.loads(found.stdout)[0]["State"]

    def exec(self, service: str, *command: str) -> subprocess.CompletedProcess[str]:
        return _run(["podman", "exec", self.container(service), *command], timeout=300)

    def build_image(self) -> None:
        """The project's image, as the resolved file's build section says, built by podman.

        Through podman's Docker-compatible API (``compose build``) a long build was seen to
        stall with no process left; the podman command line builds the same thing reliably.
        """
        resolved = self.compose("config")
        assert resolved.returncode == 0, resolved.stderr
        services = yaml.safe_load(resolved.stdout)["services"]
        specs = {
            (service["image"], json.dumps(service["build"], sort_keys=True))
            for service in services.values()
            if "build" in service
        }
        assert len(specs) == 1, f"the services build different images: {specs}"
        image, spec = specs.pop()
        build = json.loads(spec)
        context = Path(build["context"])
        arguments = [
            f"--build-arg={key}={value}" for key, value in (build.get("args") or {}).items()
        ]
        built = _run(
            [
                "podman",
                "build",
                "--tag",
                image,
                "--file",
                str(context / build.get("dockerfile", "Dockerfile")),
                *arguments,
                str(context),
            ],
            timeout=UP_DEADLINE,
        )
        (self.logs / "build.log").write_text(built.stdout + built.stderr)
        assert built.returncode == 0, (built.stdout + built.stderr)[-6000:]

    def seed_model(self, model: Path) -> None:
        """The models volume, made as compose would name it, holding this model."""
        volume = f"{self.project}_models"
        created = _run(
            [
                "podman",
                "volume",
                "create",
                "--label",
                f"com.docker.compose.project={self.project}",
                "--label",
                "com.docker.compose.volume=models",
                volume,
            ],
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        copied = _run(
            [
                "podman",
                "run",
                "--rm",
                "--user",
                "0",
                "--volume",
                f"{volume}:/models",
                "--volume",
                f"{model}:/seed:ro",
                "comment-moderation:latest",
                "sh",
                "-c",
                "cp -r /seed /models/default && chown -R 10001:10001 /models",
            ],
            timeout=300,
        )
        assert copied.returncode == 0, copied.stderr

    def service_logs(self) -> str:
        result = self.compose("logs", "--no-color", "--tail", "60", timeout=120)
        (self.logs / "compose.log").write_text(result.stdout + result.stderr)
        return result.stdout[-12000:]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[ComposeStack]:
    problem = _engine_problem()
    if problem:
        pytest.skip(problem)
    tmp = tmp_path_factory.mktemp("compose")
    _debian_base(tmp)
    _base_images(tmp)
    secrets = generated_secrets()
    api_port, flower_port = free_port(), free_port()
    socket_path = tmp / "podman.sock"
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp),
        "DOCKER_HOST": f"unix://{socket_path}",
        "MODERATION_API_PORT": str(api_port),
        "FLOWER_PORT": str(flower_port),
        **secrets,
    }
    stack = ComposeStack(
        project=f"moderationtest{uuid.uuid4().hex[:8]}",
        environment=environment,
        secrets=secrets,
        api_url=f"http://127.0.0.1:{api_port}",
        flower_url=f"http://127.0.0.1:{flower_port}",
        logs=tmp,
    )
    with (tmp / "podman-service.log").open("wb") as log:
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_until(socket_path.exists, timeout=30), "podman's API socket did not appear"
        stack.build_image()
        if not BUILD_MODEL and (MODEL_PATH / "meta.json").exists():
            stack.seed_model(MODEL_PATH)
        with Healthchecks(stack.project):
            up = stack.compose("up", "--detach", "--no-build", timeout=UP_DEADLINE)
            assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{stack.service_logs()}"
            yield stack
    finally:
        stack.service_logs()
        stack.compose("down", "--volumes", "--remove-orphans", timeout=300)
        service.terminate()
        service.wait(timeout=60)


def test_the_one_shot_services_finished(stack):
    for service in ("migrate", "model"):
        state = stack.state(service)
        assert state["Status"] == "exited" and state["ExitCode"] == 0, (service, state)
    model = stack.compose("logs", "--no-color", "model").stdout
    assert "model written to /models/default" in model or "model exists at" in model, model


def test_a_comment_posted_to_the_api_is_decided_by_the_worker(stack):
    created = stack.exec("api", "moderation", "create-site", "compose-news")
    assert created.returncode == 0, created.stderr
    auth = {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}

    def api_up() -> bool:
        try:
            return requests.get(f"{stack.api_url}/healthz", timeout=5).ok
        except requests.RequestException:
            return False

    assert wait_until(api_up, timeout=120, interval=1), stack.service_logs()
    comment_id = post_readme_comment(stack.api_url, auth, timeout=30)
    seen: dict = {}

    def decided() -> bool:
        url = f"{stack.api_url}/api/v1/comments/{comment_id}"
        seen.update(requests.get(url, headers=auth, timeout=10).json())
        return seen.get("status") != "pending"

    assert wait_until(decided, timeout=DECISION_DEADLINE, interval=1), (
        f"{seen}\n{stack.service_logs()}"
    )
    assert seen["status"] in {"approved", "held", "rejected"} and seen["scores"], seen


def test_the_probes_and_healthchecks_pass(stack):
    assert requests.get(f"{stack.api_url}/healthz", timeout=10).json() == {"status": "ok"}
    assert requests.get(f"{stack.api_url}/readyz", timeout=10).status_code == 200

    def healthy(service: str) -> bool:
        return stack.state(service).get("Health", {}).get("Status") == "healthy"

    for service in ("postgres", "redis", "api", "worker"):
        assert wait_until(lambda s=service: healthy(s), timeout=120, interval=2), (
            service,
            stack.state(service),
        )
    assert wait_until(
        lambda: requests.get(f"{stack.api_url}/healthz/workers", timeout=10).ok, timeout=60
    )
    status = stack.exec("api", "moderation", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert stack.state("beat")["Status"] == "running"


def test_metrics_and_flower_want_their_secrets(stack):
    metrics = f"{stack.api_url}/metrics"
    assert requests.get(metrics, timeout=10).status_code == 401
    token = stack.secrets["MODERATION_METRICS_TOKEN"]
    assert requests.get(metrics, headers={"Authorization": f"Bearer {token}"}, timeout=30).ok

    def flower_up() -> bool:
        try:
            requests.get(stack.flower_url, timeout=5)
            return True
        except requests.RequestException:
            return False

    assert wait_until(flower_up, timeout=120, interval=1), stack.service_logs()
    assert requests.get(stack.flower_url, timeout=10).status_code == 401
    user, password = stack.secrets["FLOWER_BASIC_AUTH"].split(":", 1)
    assert requests.get(stack.flower_url, auth=(user, password), timeout=10).status_code == 200
