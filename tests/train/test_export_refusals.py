"""export.py refusals that need no trained run: an output named for the other format."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from salt.errors import ConfigError
from salt.export import job
from tests.train.conftest import run_script


def _cfg(**values: object) -> OmegaConf:
    return OmegaConf.create({"format": "onnx", "base_checkpoint": None, "threshold": None, **values})


@pytest.mark.parametrize(
    ("fmt", "name", "expected"),
    [
        ("torchscript", "model.onnx", "model.pt"),
        ("torchscript", "MODEL.ONNX", "MODEL.pt"),
        ("onnx", "model.pt", "model.onnx"),
        ("onnx", "model.torchscript", "model.onnx"),
    ],
)
def test_output_named_for_the_other_format_is_refused(
    tmp_path: Path, fmt: str, name: str, expected: str
) -> None:
    existing = tmp_path / name
    existing.write_bytes(b"an earlier export")
    # The checkpoint does not exist: the name is refused before anything is read.
    with pytest.raises(
        ConfigError, match=rf"^output=.*{name}: .* format={fmt}; name it {expected}"
    ) as refused:
        job.export(_cfg(ckpt=str(tmp_path / "no_run"), format=fmt, output=str(existing)))
    assert "\n" not in str(refused.value)
    assert existing.read_bytes() == b"an earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_other_suffixes_are_taken_as_given(tmp_path: Path) -> None:
    # Not refused for its name: the export goes on to the (missing) checkpoint.
    for fmt, name in [("torchscript", "model.pt"), ("torchscript", "model.bin"), ("onnx", "model")]:
        with pytest.raises(ConfigError, match=r"^ckpt="):
            job.export(_cfg(ckpt=str(tmp_path / "no_run"), format=fmt, output=str(tmp_path / name)))


def test_output_for_the_other_format_from_the_command_line(tmp_path: Path) -> None:
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"an earlier export")
    proc = run_script(
        "export.py",
        f"ckpt={tmp_path / 'no_run'}",
        "format=torchscript",
        f"output={onnx_file}",
        f"hydra.run.dir={tmp_path / 'h'}",
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output, output[-2000:]
    (line,) = [line for line in output.splitlines() if "error:" in line]
    assert f"output={onnx_file}: a .onnx file is onnx, but format=torchscript" in line
    assert onnx_file.read_bytes() == b"an earlier export" and not (tmp_path / "h").exists()
