"""salt, svd, lora, full and none on SAM2 Hiera-T, composed from configs/model/sam2_hiera_t.yaml as train.py does:
identity at init, only the trainable tensors change, every adapter tensor gets a gradient, save -> reload, and
SALT's companion LoRA on the FPN convs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch import nn

from salt.model import build_sam, set_trainable
from salt.peft import count_adapter_parameters, inject_from_config, load_adapter, save_adapter
from salt.peft.checkpoint import adapter_parameter_names
from salt.peft.registry import injections

pytestmark = pytest.mark.slow

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
SIZE = 64
FPN = [f"image_encoder.neck.convs.{i}.conv" for i in range(4)]


def composed(peft: str, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train", overrides=["model=sam2_hiera_t", f"peft={peft}", f"dataset.img_size={SIZE}", *overrides]
        )
        return {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("model", "peft")}


def base_model() -> nn.Module:
    torch.manual_seed(0)
    return build_sam("hiera_t", img_size=SIZE)


def adapted(peft: str, *overrides: str) -> tuple[nn.Module, list[str]]:
    cfg = composed(peft, *overrides)
    model = base_model()
    set_trainable(model, cfg["model"]["trainable"])
    return model, inject_from_config(model, cfg["peft"])


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 255


@pytest.fixture(scope="module")
def reference(images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return base_model().eval()(images)


@pytest.mark.parametrize("peft", ["salt", "svd", "lora", "full", "none"])
def test_method_on_hiera_t(peft: str, images: torch.Tensor, reference: torch.Tensor, tmp_path: Path) -> None:
    # SALT at l = 8 instead of the model's 256: the same code path, a fraction of the time
    model, names = adapted(peft, *(["peft.lora_rank=8"] if peft == "salt" else []))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(images), reference, atol=1e-4, rtol=1e-4)
    adapters = adapter_parameter_names(model)
    assert bool(adapters) == (peft != "none") and len(names) == (0 if peft == "none" else 52)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert adapters <= trainable
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    model(images).sigmoid().mean().backward()
    params = dict(model.named_parameters())
    assert all(params[n].grad is not None for n in trainable)
    torch.optim.SGD([params[n] for n in sorted(trainable)], lr=10.0).step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed <= trainable and (changed & adapters or peft == "none")
    save_adapter(model, tmp_path / "adapter.safetensors")
    fresh = base_model()
    load_adapter(fresh, tmp_path / "adapter.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(images), model.eval()(images), atol=1e-4, rtol=1e-4)


def test_salt_pairs_with_lora_on_the_fpn_convs() -> None:
    model, names = adapted("salt")
    records = injections(model)
    assert [r["method"] for r in records] == ["salt", "lora"]
    assert records[1]["targets"] == FPN and names[-4:] == FPN
    assert all(".trunk.blocks." in n for n in records[0]["targets"]) and len(records[0]["targets"]) == 48
    assert {r["options"]["rank"] for r in records[1:]} == {4}
    widths = {"image_encoder.neck.convs.0.conv": 768, "image_encoder.neck.convs.1.conv": 384}
    widths |= {"image_encoder.neck.convs.2.conv": 192, "image_encoder.neck.convs.3.conv": 96}
    assert count_adapter_parameters(model)["lora"] == {"Conv2d": sum(4 * (w + 256) for w in widths.values())}
    layer = model.get_submodule("image_encoder.trunk.blocks.11.attn.qkv")
    assert (layer.k, layer.rank, layer.lora_rank) == (768, 76, 256)  # r = floor(0.1 k), l = 256
