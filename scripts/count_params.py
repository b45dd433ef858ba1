"""Print the trainable-parameter counts of the paper's PEFT settings on a backbone (ViT-B at 512 px by default).

    python scripts/count_params.py [--model sam_vit_b] [--img-size 512]

``--model`` is a ``configs/model`` name (``sam_vit_b``, ``medsam_lite``, ``sam_tiny`` ...). Each row composes
``configs/peft/<method>.yaml`` with that model config, as ``train.py`` does (so the targets and ranks are the
model's ``adapters``), and injects it after the model's own trainable groups. Counts are given against the
backbone alone and in the paper's convention (trainable / 241M, a denominator that includes the frozen
CLIP model, paper.md §5), next to what Table 1 reports for ViT-B. The model is built on the meta device:
counts depend on shapes only, so no weights are allocated and no SVD is computed on real values.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from salt.model import BackboneError, backbone_of, build_sam, parameter_summary, set_trainable
from salt.peft import count_adapter_parameters, inject_from_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
PAPER_IMG_SIZE = 512
# (row label, config name, option overrides, Table 1's "% trainable / count" for that row)
ROWS = [
    ("SALT l=4", "salt", {}, "0.46% / 1.1M"),
    ("SALT l=256", "salt", {"lora_rank": 256}, "3.9% / 9.4M"),
    ("LoRA r=4", "lora", {}, "0.64% / 1.5M"),
    ("LoRA r=256", "lora", {"rank": 256}, "14.08% / 33.9M"),
    ("SVD (S-SAM)", "svd", {}, "0.40% / 1M"),
    ("no adapter", "none", {}, "-"),
]


def composed(model: str, peft: str, img_size: int) -> dict:
    """``train.yaml`` with ``model=<model> peft=<peft>`` at ``img_size``: the resolved model and PEFT nodes."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", f"peft={peft}", f"dataset.img_size={img_size}"])
        return {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("model", "peft")}


def count_row(model: str, img_size: int, config: str, overrides: dict) -> tuple[int, dict]:
    """Adapter count and :func:`parameter_summary` of a backbone with one PEFT config applied."""
    cfg = composed(model, config, img_size)
    try:
        with torch.device("meta"):
            net = build_sam(cfg["model"]["variant"], img_size=img_size)
    except RuntimeError:  # an encoder that reads tensor values while it is built (TinyViT): build it for real
        net = build_sam(cfg["model"]["variant"], img_size=img_size)
    set_trainable(net, cfg["model"]["trainable"])
    inject_from_config(net, {**cfg["peft"], **overrides})
    denominator = cfg["model"].get("paper_param_denominator")
    adapters = sum(n for per_type in count_adapter_parameters(net).values() for n in per_type.values())
    return adapters, parameter_summary(net, paper_denominator=denominator)


def input_size(variant: str) -> int:
    """The paper's 512 px where the backbone takes it, else the backbone's own input size."""
    family = backbone_of(variant)
    try:
        family.check_img_size(PAPER_IMG_SIZE)
    except BackboneError:
        return family.default_img_size(variant)
    return PAPER_IMG_SIZE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sam_vit_b", help="a configs/model name (default: sam_vit_b)")
    parser.add_argument(
        "--img-size", type=int, default=None, help="input side in pixels (default: 512; 256 for medsam_lite)"
    )
    args = parser.parse_args()
    if not (CONFIG_DIR / "model" / f"{args.model}.yaml").is_file():
        parser.exit(2, f"error: --model {args.model}: no configs/model/{args.model}.yaml\n")
    model_cfg = composed(args.model, "none", PAPER_IMG_SIZE)["model"]
    img_size = args.img_size or input_size(model_cfg["variant"])
    extras = model_cfg["trainable"]
    # The paper's convention and Table 1's counts exist for its backbone only (paper_param_denominator set).
    paper_backbone = model_cfg.get("paper_param_denominator") is not None
    print(f"{args.model} at {img_size} px; trainable extras: {', '.join(extras) or 'none'}")
    print(f"{'method':<12} {'adapter':>11} {'trainable':>11} {'% of base':>9} {'% paper':>8}  paper reports")
    for label, name, overrides, paper in ROWS:
        try:
            adapters, summary = count_row(args.model, img_size, name, overrides)
        except ValueError as exc:  # a setting that does not fit this backbone (LoRA r=256 on a small one)
            print(f"{label:<12} {'-':>11} {'-':>11} {'-':>9} {'-':>8}  (does not fit: {exc})")
            continue
        percent_paper = f"{summary['trainable_percent_paper']:>7.2f}%" if paper_backbone else f"{'-':>8}"
        print(
            f"{label:<12} {adapters:>11,} {summary['trainable']:>11,} {summary['trainable_percent']:>8.2f}% "
            f"{percent_paper}  {paper if paper_backbone else ''}"
        )
    print(f"base model: {summary['total_base']:,} parameters")


if __name__ == "__main__":
    main()
