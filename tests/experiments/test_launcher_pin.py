"""The skip-done launcher builds its submitit executor as ``hydra-submitit-launcher``'s ``launch`` does and submits
its own ``__call__``: both copy the plugin's code, so the plugin is pinned exactly and its code checked here."""

from __future__ import annotations

import hashlib
import inspect
import re
from importlib.metadata import version
from pathlib import Path

import pytest
from hydra_plugins.hydra_submitit_launcher import config, submitit_launcher

ROOT = Path(__file__).resolve().parents[2]
# sha256 of the source of each piece of the plugin (1.2.0) that hydra_plugins/salt_launchers/skip_done.py relies on.
RELIED_ON = {
    # `_executor` repeats its executor construction; `_launch` replaces the rest
    "BaseSubmititLauncher.launch": (
        submitit_launcher.BaseSubmititLauncher.launch,
        "546875669010f80d6ceede740e8bf2d18088cf5bcce2eb4794c735fa3dc2fc0e",
    ),
    # what `_launch` passes to `map_array`, per job
    "BaseSubmititLauncher.__call__": (
        submitit_launcher.BaseSubmititLauncher.__call__,
        "22ce7b022ecb59e565c3dfd6949584f358b41275c911b27d8c85e7e6f5ae5bf8",
    ),
    # `self.params`, which `_executor` reads
    "BaseSubmititLauncher.__init__": (
        submitit_launcher.BaseSubmititLauncher.__init__,
        "2beef81726d0a6c9158372897c23dc31b029c43ae2c4930c5d3158c393beec81",
    ),
    # the keys passed to submitit without the executor's prefix
    "BaseQueueConf": (
        config.BaseQueueConf,
        "ac382365e701a64f00b0df47402962910379ac0a3749c42d1ec06ce87954b676",
    ),
}


def test_the_plugin_is_pinned_exactly_to_the_installed_release() -> None:
    pins = re.findall(r'"hydra-submitit-launcher==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pins == [version("hydra-submitit-launcher")]


@pytest.mark.parametrize("name", sorted(RELIED_ON))
def test_the_plugin_code_the_launcher_copies_is_unchanged(name: str) -> None:
    obj, digest = RELIED_ON[name]
    assert hashlib.sha256(inspect.getsource(obj).encode()).hexdigest() == digest, (
        f"hydra-submitit-launcher's {name} changed: compare _SkipDoneLauncher (_executor, _launch) with it, "
        "then record the new hash and pin"
    )
