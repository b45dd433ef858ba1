"""Print the trainable-parameter counts of every method variant on a backbone (ViT-B at 512 px by default).

    python scripts/count_params.py [--model sam_vit_b] [--img-size 512]

``--model`` is a ``configs/model`` name (``sam_vit_b``, ``medsam_lite``, ``sam_tiny`` ...). The rows are the
method variants the experiments sweep (``configs/method/*.yaml``, the peft presets included), then each
``configs/peft`` method without a variant there; each is composed with that model config as ``train.py``
does (so the targets and ranks are the model's ``adapters``) and injected after the model's own trainable
groups. A row is named and counted by its method (``Method.row_label``; the adapter parameters of
``salt.peft.counting``). Counts are given against the backbone alone and in the paper's convention
(trainable / 241M, a denominator that includes the frozen CLIP model, paper.md §5), next to what Table 1
reports for ViT-B. The model is built on the meta device where the backbone and the method allow it: counts
depend on shapes only.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from salt.model import BackboneError, backbone_of, build_sam, parameter_summary, set_trainable
from salt.peft import METHODS, count_adapter_parameters, inject_from_config
from salt.results.paper import PAPER_TABLE1

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
PAPER_IMG_SIZE = 512


def composed(model: str, choice: str, img_size: int) -> dict:
    """``train.yaml`` with ``model=<model>`` and ``choice`` (``+method=...`` or ``peft=...``) at ``img_size``:
    the resolved model and PEFT nodes (and ``ablation``, which row labels read, where an experiment sets it)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={model}", choice, f"dataset.img_size={img_size}"])
        return {
            key: OmegaConf.to_container(cfg[key], resolve=True)
            for key in ("model", "peft", "ablation")
            if key in cfg
        }


def variants() -> list[str]:
    """``+method=<name>`` for every method variant, then ``peft=<name>`` for each method without one."""
    texts = {p.stem: p.read_text().splitlines() for p in (CONFIG_DIR / "method").glob("*.yaml")}
    # A variant that trains nothing (the zero-shot row, fit: false) has no count to print.
    methods = sorted(name for name, lines in texts.items() if "fit: false" not in (s.strip() for s in lines))
    covered = {
        line.split(":", 1)[1].strip()
        for name in methods
        for line in texts[name]
        if line.strip().startswith("- override /peft:")
    }
    # peft=none stays a row of its own: the model's trainable groups alone, which every other row adds to.
    plain = sorted(p.stem for p in (CONFIG_DIR / "peft").glob("*.yaml") if p.stem not in covered - {"none"})
    return [f"+method={name}" for name in methods] + [f"peft={name}" for name in plain]


def count_row(cfg: dict, img_size: int) -> tuple[int, dict]:
    """Adapter count and :func:`parameter_summary` of the backbone of ``cfg`` with its PEFT config applied."""
    for device in ("meta", "cpu"):
        try:
            with torch.device(device):
                net = build_sam(cfg["model"]["variant"], img_size=img_size)
            set_trainable(net, cfg["model"]["trainable"])
            inject_from_config(net, cfg["peft"])
            break
        except (RuntimeError, NotImplementedError, ValueError):
            # an encoder or a method that reads tensor values while it is built (TinyViT, PiSSA's SVD)
            if device != "meta":
                raise
    adapters = sum(n for per_type in count_adapter_parameters(net).values() for n in per_type.values())
    return adapters, parameter_summary(net, paper_denominator=cfg["model"].get("paper_param_denominator"))


def input_size(variant: str) -> int:
    """The paper's 512 px where the backbone takes it, else the backbone's own input size."""
    family = backbone_of(variant)
    try:
        family.check_img_size(PAPER_IMG_SIZE)
    except BackboneError:
        return family.default_img_size(variant)
    return PAPER_IMG_SIZE


def _natural(choice: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", choice)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sam_vit_b", help="a configs/model name (default: sam_vit_b)")
    parser.add_argument(
        "--img-size", type=int, default=None, help="input side in pixels (default: 512; 256 for medsam_lite)"
    )
    args = parser.parse_args()
    if not (CONFIG_DIR / "model" / f"{args.model}.yaml").is_file():
        parser.exit(2, f"error: --model {args.model}: no configs/model/{args.model}.yaml\n")
    model_cfg = composed(args.model, "peft=none", PAPER_IMG_SIZE)["model"]
    img_size = args.img_size or input_size(model_cfg["variant"])
    extras = model_cfg["trainable"]
    # The paper's convention and Table 1's counts exist for its backbone only (paper_param_denominator set).
    paper_backbone = model_cfg.get("paper_param_denominator") is not None
    rows = []
    for choice in variants():
        cfg = composed(args.model, choice, img_size)
        method = METHODS[cfg["peft"]["method"]]
        rows.append(
            (cfg["peft"]["method"], _natural(choice), method.row_label(cfg["peft"], cfg, paper_backbone), cfg)
        )
    width = max(len(label) for _, _, label, _ in rows)
    print(f"{args.model} at {img_size} px; trainable extras: {', '.join(extras) or 'none'}")
    print(
        f"{'method':<{width}} {'adapter':>11} {'trainable':>11} {'% of base':>9} {'% paper':>8}  paper reports"
    )
    summary = None
    for _, _, label, cfg in sorted(rows, key=lambda row: row[:2]):
        try:
            adapters, summary = count_row(cfg, img_size)
        except ValueError as exc:  # a setting that does not fit this backbone (LoRA r=256 on a small one)
            print(f"{label:<{width}} {'-':>11} {'-':>11} {'-':>9} {'-':>8}  (does not fit: {exc})")
            continue
        paper = PAPER_TABLE1.get(label) if paper_backbone else None
        reported = f"{paper.percent}% / {paper.count / 1e6:g}M" if paper and paper.count else ""
        percent_paper = f"{summary['trainable_percent_paper']:>7.2f}%" if paper_backbone else f"{'-':>8}"
        print(
            f"{label:<{width}} {adapters:>11,} {summary['trainable']:>11,} {summary['trainable_percent']:>8.2f}% "
            f"{percent_paper}  {reported}"
        )
    if summary is not None:
        print(f"base model: {summary['total_base']:,} parameters")


if __name__ == "__main__":
    main()
