"""The layers hold: the domain and the workers never load Flask (only the web faces do)."""

import subprocess
import sys

from tests.support import ROOT

DOMAIN = [
    "moderation.policy",
    "moderation.rules",
    "moderation.services.comments",
    "moderation.services.decisions",
    "moderation.services.moderation",
    "moderation.services.webhooks",
    "moderation.services.what_if",
    "moderation.scoring.ensemble",
    "moderation.scoring.detoxify_scorer",
    "moderation.ops.metrics",
    "moderation.ops.status",
    "moderation.ops.checks",
    "moderation.ops.heartbeat",
    "workers.tasks",
]

PROBE = """
import sys

class NoFlask:
    def find_spec(self, name, path, target=None):
        if name == "flask" or name.startswith("flask."):
            raise ImportError("flask imported by the domain")

sys.meta_path.insert(0, NoFlask())
for module in sys.argv[1:]:
    __import__(module)
print("imported", len(sys.argv) - 1)
"""


def test_domain_code_and_workers_import_without_flask():
    finished = subprocess.run(
        [sys.executable, "-c", PROBE, *DOMAIN],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"MODERATION_ENV": "test", "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip() == f"imported {len(DOMAIN)}"
