"""What a backbone cannot take is refused from the command line in one line, exit 1, with no run folder left."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from salt.model.backbones import medsam_lite
from tests.train.conftest import run_script

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lite") / "synthetic"


def lite_run(data_root: Path, run_dir: Path, *extra: str, env: dict | None = None):
    """``python train.py`` (the default LiteMedSAM job) on a 6-image synthetic set, one batch."""
    return run_script(
        "train.py",
        f"dataset.root={data_root}",
        "dataset.synthetic.n=6",
        "dataset.synthetic.size=64",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=1",
        f"hydra.run.dir={run_dir}",
        *extra,
        env=env,
    )


def assert_refused(proc, run_dir: Path, *fragments: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "error: " in line]
    assert len(errors) == 1, errors
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert not run_dir.exists()


def test_an_input_size_the_backbone_cannot_take(data_root: Path, tmp_path: Path) -> None:
    proc = lite_run(data_root, tmp_path / "run", "dataset.img_size=512")
    assert_refused(proc, tmp_path / "run", "model.img_size=512", "LiteMedSAM takes 256 x 256 inputs only")


def test_a_trainable_group_the_backbone_lacks(data_root: Path, tmp_path: Path) -> None:
    proc = lite_run(data_root, tmp_path / "run", "model.trainable=[norm,pos_embed]")
    assert_refused(proc, tmp_path / "run", "model.trainable", "'pos_embed'", "medsam_lite", "valid groups")


def test_a_target_the_backbone_lacks(data_root: Path, tmp_path: Path) -> None:
    proc = lite_run(data_root, tmp_path / "run", "peft.target_modules=[patch_embed.proj]")
    assert_refused(proc, tmp_path / "run", "target_modules=['patch_embed.proj'] matched no module")


def test_an_explicit_rank_that_does_not_fit_is_refused_not_replaced(data_root: Path, tmp_path: Path) -> None:
    proc = lite_run(data_root, tmp_path / "run", "model=sam_tiny", "dataset.img_size=64", "peft.rank=100")
    assert_refused(proc, tmp_path / "run", "rank=100", "does not fit", "[1, 32]")


def test_a_corrupted_bundled_file(data_root: Path, tmp_path: Path) -> None:
    # A copy of the installed package whose asset has one byte changed, first on the path of the run.
    package = medsam_lite.bundled_path().parents[1]
    shadow = tmp_path / "site" / package.name
    (shadow / "asset").mkdir(parents=True)
    for entry in package.iterdir():
        if entry.name not in ("asset", "__pycache__"):
            (shadow / entry.name).symlink_to(entry)
    (shadow / "asset" / "__init__.py").symlink_to(package / "asset" / "__init__.py")
    corrupted = shadow / "asset" / medsam_lite.ASSET_FILE
    shutil.copyfile(medsam_lite.bundled_path(), corrupted)
    with corrupted.open("r+b") as handle:
        handle.seek(123_456)
        byte = handle.read(1)
        handle.seek(123_456)
        handle.write(bytes([byte[0] ^ 0x01]))
    proc = lite_run(data_root, tmp_path / "run", env={"PYTHONPATH": str(tmp_path / "site")})
    assert_refused(proc, tmp_path / "run", str(corrupted), "corrupted", "sha256", "reinstall")
