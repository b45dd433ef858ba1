"""Loading a trained run for inference: the network eval.py, predict.py and export.py get is the one the
training module restores from the same checkpoint, and a checkpoint that does not fit is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from salt.errors import ConfigError
from salt.inference.loading import STATE_PREFIX, build_run_network, load_trained, trainable_names
from salt.peft import base_fingerprint, save_adapter
from salt.train.module import SegmentationModule

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def run_cfg(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny SAM with SALT adapters, as train.py records its configuration."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=["model=sam_tiny", "dataset.img_size=64"], return_hydra_config=True)
        OmegaConf.set_readonly(cfg, False)
        cfg.hydra.runtime.output_dir = str(tmp_path_factory.mktemp("run"))
        OmegaConf.set_struct(cfg, False)
        HydraConfig.instance().set_config(cfg)
        del cfg["hydra"]
        return OmegaConf.to_container(cfg, resolve=True)


def _checkpoint(run_cfg: dict, path: Path, **changes: object) -> Path:
    """A training checkpoint as Lightning writes it (trainable tensors only), its adapters moved off zero."""
    model, _ = build_run_network(run_cfg)
    names = trainable_names(model)
    generator = torch.Generator().manual_seed(1)
    tensors = {
        STATE_PREFIX + n: torch.randn(p.shape, generator=generator) * 0.1
        for n, p in model.named_parameters()
        if n in names
    }
    extra = {"base_fingerprint": base_fingerprint(model, exclude=names), "history": []}
    state = {"hyper_parameters": {"cfg": run_cfg}, "state_dict": tensors, "salt": extra}
    for key, value in changes.items():
        state[key] = value(state[key]) if callable(value) else value
    torch.save(state, path)
    return path


def _outputs(model: torch.nn.Module) -> torch.Tensor:
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255  # (B, 3, S, S)
    with torch.no_grad():
        return model.eval()(images)  # (B, C, S, S)


def test_inference_loads_the_network_training_restores(run_cfg: dict, tmp_path: Path) -> None:
    path = _checkpoint(run_cfg, tmp_path / "best.ckpt")
    module = SegmentationModule(run_cfg)
    state = torch.load(path, map_location="cpu", weights_only=False)
    module.on_load_checkpoint(state)
    module.load_state_dict(state["state_dict"], strict=False)
    run = load_trained(path)
    assert run.source == path and run.config["peft"]["_target_"] == "salt.peft.salt.Salt"
    loaded = {STATE_PREFIX + n: p for n, p in run.model.named_parameters() if p.requires_grad}
    assert set(loaded) == set(state["state_dict"])
    for name, tensor in state["state_dict"].items():
        torch.testing.assert_close(loaded[name], tensor, rtol=0, atol=0)
    torch.testing.assert_close(_outputs(run.model), _outputs(module.model), rtol=0, atol=0)
    # The adapter file train.py writes beside the checkpoint loads to the same network.
    save_adapter(module.model, tmp_path / "adapter.safetensors", metadata={"config": run_cfg})
    adapter = load_trained(tmp_path / "adapter.safetensors")
    torch.testing.assert_close(_outputs(adapter.model), _outputs(run.model), rtol=0, atol=0)


def test_a_checkpoint_of_another_network_is_refused(run_cfg: dict, tmp_path: Path) -> None:
    path = _checkpoint(
        run_cfg, tmp_path / "other.ckpt", state_dict=lambda tensors: dict(list(tensors.items())[1:])
    )
    with pytest.raises(
        ConfigError, match=r"checkpoint does not fit this model and PEFT configuration \(missing"
    ):
        load_trained(path)


def test_a_checkpoint_of_other_base_weights_is_refused(run_cfg: dict, tmp_path: Path) -> None:
    path = _checkpoint(run_cfg, tmp_path / "base.ckpt", salt={"base_fingerprint": "0" * 16})
    with pytest.raises(ConfigError, match="trained on other base weights than the ones loaded now"):
        load_trained(path)
