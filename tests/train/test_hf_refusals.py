"""peft=hf mistakes are refused from the command line in one line naming the key, exit 1, no run folder left."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.train.conftest import run_script, tiny_overrides
from tests.train.test_backbone_errors import assert_refused

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hf") / "synthetic"


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (
            ["peft=hf", "peft.config._target_=peft.LoraConfg"],
            ["option config._target_='peft.LoraConfg' cannot be imported"],
        ),
        (
            ["peft=dora", "peft.target_modules=[attn.qkvv]"],
            ["target_modules=['attn.qkvv'] matched no module"],
        ),
        (
            ["peft=dora", "peft.config.r=0"],
            ["option config.r=0 (peft.LoraConfig) was rejected by peft", "`r` should be a positive integer"],
        ),
    ],
    ids=["unknown-target", "matches-nothing", "rejected-option"],
)
def test_hf_mistakes_are_one_line(data_root: Path, tmp_path: Path, overrides: list, fragments: list) -> None:
    run_dir = tmp_path / "run"
    proc = run_script("train.py", *tiny_overrides(data_root, run_dir, *overrides))
    assert_refused(proc, run_dir, *fragments)
