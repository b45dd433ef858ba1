"""Print the trainable-parameter counts of every method variant on a backbone (ViT-B at 512 px by default).

    python scripts/count_params.py [--model sam_vit_b] [--img-size 512]

``--model`` is a ``configs/model`` name (``sam_vit_b``, ``medsam_lite``, ``sam_tiny`` ...). The rows are the
method variants the experiments sweep (``configs/method/*.yaml``, the peft presets included), then each
``configs/peft`` method without a variant there; each is composed with that model config as ``train.py``
does (so the targets and ranks are the model's ``adapters``) and injected after the model's own trainable
groups. A row is named and counted by its method (``Method.row_label``; the adapter parameters of
``salt.peft.counting``). Counts are given against the backbone alone and in the paper's convention
(trainable / 241M, a denominator that includes the frozen CLIP model, paper.md §5), next to what Table 1
reports for ViT-B. Counts depend on shapes only: the backbone is built once and each row counts a copy of it
on the meta device (no tensor is materialised) where the method allows it, on the CPU where it reads weight
values while it is built. Variants that differ only in settings other than the model and PEFT ones (the
learning rate) make one row. A progress bar on stderr counts the rows.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Sequence

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch import nn
from tqdm import tqdm

from salt import CONFIG_DIR
from salt.errors import UserError
from salt.model import BackboneError, backbone_of, build_sam, parameter_summary, set_trainable
from salt.paper import PAPER_TABLE1
from salt.peft import count_adapter_parameters, inject_from_config
from salt.peft.registry import method_class

PAPER_IMG_SIZE = 512
# peft's initialisations of LoRA's A and B from the frozen weight (an SVD for PiSSA, a QR for OLoRA): the
# same tensors, of the same shapes, as its default initialisation, computed from weight values.
VALUE_INITS = ("pissa", "olora", "orthogonal")


def composed_all(model: str, choices: Sequence[str], img_size: int) -> dict[str, dict]:
    """``train.yaml`` with ``model=<model>`` and each choice (``+method=...`` or ``peft=...``) at ``img_size``:
    ``{choice: the resolved model and PEFT nodes (and ablation, which row labels read, where set)}``."""
    out = {}
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for choice in choices:
            cfg = compose("train", overrides=[f"model={model}", choice, f"dataset.img_size={img_size}"])
            out[choice] = {
                key: OmegaConf.to_container(cfg[key], resolve=True)
                for key in ("model", "peft", "ablation")
                if key in cfg
            }
    return out


def composed(model: str, choice: str, img_size: int) -> dict:
    """:func:`composed_all` of one choice."""
    return composed_all(model, [choice], img_size)[choice]


def shapes_only(peft: dict) -> dict:
    """``peft`` with an initialisation that reads weight values replaced by the default one of the same shapes
    (``init_lora_weights: pissa`` -> ``true``), in it and in its companions: the counts do not change."""
    out = copy.deepcopy(peft)
    config = out.get("config")
    init = config.get("init_lora_weights") if isinstance(config, dict) else None
    if isinstance(init, str) and init.split("_niter_")[0] in VALUE_INITS:
        config["init_lora_weights"] = True
    if out.get("companions"):
        out["companions"] = [shapes_only(c) for c in out["companions"]]
    return out


class Backbones:
    """Each backbone built once, copied for every row: on the meta device, and on the CPU when a row needs
    weight values (built on the CPU first where the backbone reads values while it is built: TinyViT, Hiera)."""

    def __init__(self) -> None:
        self._built: dict[tuple[str, int], dict[str, nn.Module]] = {}

    def _templates(self, variant: str, img_size: int) -> dict[str, nn.Module]:
        key = (variant, img_size)
        if key not in self._built:
            try:
                with torch.device("meta"):
                    self._built[key] = {"meta": build_sam(variant, img_size=img_size)}
            except (RuntimeError, NotImplementedError, ValueError):
                cpu = build_sam(variant, img_size=img_size)
                self._built[key] = {"cpu": cpu, "meta": copy.deepcopy(cpu).to("meta")}
        return self._built[key]

    def copy(self, variant: str, img_size: int, device: str) -> nn.Module:
        """A fresh copy of the backbone on ``device`` (``meta`` or ``cpu``)."""
        templates = self._templates(variant, img_size)
        if device not in templates:
            templates[device] = build_sam(variant, img_size=img_size)
        return copy.deepcopy(templates[device])


BACKBONES = Backbones()


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


def count_row(cfg: dict, img_size: int, backbones: Backbones = BACKBONES) -> tuple[int, dict]:
    """Adapter count and :func:`parameter_summary` of the backbone of ``cfg`` with its PEFT config applied.

    Raises:
        ValueError: a setting that does not fit the backbone (a rank above a layer's size).
    """
    peft = shapes_only(cfg["peft"])
    for device in ("meta", "cpu"):
        net = backbones.copy(cfg["model"]["variant"], img_size, device)
        try:
            set_trainable(net, cfg["model"]["trainable"])
            with torch.device(device):
                inject_from_config(net, peft)
            break
        except UserError:
            raise  # a setting that does not fit: the same on any device
        except (RuntimeError, NotImplementedError, ValueError):
            # a method that reads tensor values while it is injected
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
    rows = {}
    for choice, cfg in composed_all(args.model, variants(), img_size).items():
        method = method_class(cfg["peft"])
        label = method.row_label(cfg["peft"], cfg, paper_backbone)
        # Variants that differ in the learning rate alone (full, full_lr3e-4) count the same network.
        network = json.dumps([label, cfg["model"], cfg["peft"]], sort_keys=True, default=str)
        rows.setdefault(network, (method.name, _natural(choice), label, cfg))
    width = max(len(label) for _, _, label, _ in rows.values())
    print(f"{args.model} at {img_size} px; trainable extras: {', '.join(extras) or 'none'}")
    print(
        f"{'method':<{width}} {'adapter':>11} {'trainable':>11} {'% of base':>9} {'% paper':>8}  paper reports"
    )
    summary = None
    ordered = sorted(rows.values(), key=lambda row: row[:2])
    progress = tqdm(ordered, desc="counting", unit="row", file=sys.stderr, leave=False)
    for _, _, label, cfg in progress:
        progress.set_postfix_str(label)
        try:
            adapters, summary = count_row(cfg, img_size)
        except ValueError as exc:  # a setting that does not fit this backbone (LoRA r=256 on a small one)
            tqdm.write(f"{label:<{width}} {'-':>11} {'-':>11} {'-':>9} {'-':>8}  (does not fit: {exc})")
            continue
        paper = PAPER_TABLE1.get(label) if paper_backbone else None
        reported = f"{paper.percent}% / {paper.count / 1e6:g}M" if paper and paper.count else ""
        percent_paper = f"{summary['trainable_percent_paper']:>7.2f}%" if paper_backbone else f"{'-':>8}"
        tqdm.write(
            f"{label:<{width}} {adapters:>11,} {summary['trainable']:>11,} {summary['trainable_percent']:>8.2f}% "
            f"{percent_paper}  {reported}"
        )
    progress.close()
    if summary is not None:
        print(f"base model: {summary['total_base']:,} parameters")


if __name__ == "__main__":
    main()
