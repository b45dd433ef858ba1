"""Print the trainable-parameter counts of the paper's PEFT settings on SAM (ViT-B at 512 px by default).

    python scripts/count_params.py [--variant vit_b] [--img-size 512]

Each row injects ``configs/peft/<method>.yaml`` (with the row's overrides) into SAM after the paper's
trainable-group policy (LayerNorms, position embedding, class prompt). Counts are given against SAM alone
and in the paper's convention (trainable / 241M, a denominator that includes the frozen CLIP model,
paper.md §5), next to what Table 1 reports. The model is built on the meta device: counts depend on
shapes only, so no weights are allocated and no SVD is computed on real values.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from salt.model import build_sam, parameter_summary, set_trainable
from salt.model.trainable import PAPER_POLICY
from salt.peft import count_adapter_parameters, inject_from_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "peft"
PAPER_DENOMINATOR = 241e6  # paper.md §5: SAM plus the frozen CLIP model
# (row label, config name, option overrides, Table 1's "% trainable / count" for that row)
ROWS = [
    ("SALT l=4", "salt", {}, "0.46% / 1.1M"),
    ("SALT l=256", "salt", {"lora_rank": 256}, "3.9% / 9.4M"),
    ("LoRA r=4", "lora", {}, "0.64% / 1.5M"),
    ("LoRA r=256", "lora", {"rank": 256}, "14.08% / 33.9M"),
    ("SVD (S-SAM)", "svd", {}, "0.40% / 1M"),
    ("no adapter", "none", {}, "-"),
]


def count_row(variant: str, img_size: int, config: str, overrides: dict) -> tuple[int, dict]:
    """Adapter count and :func:`parameter_summary` of SAM with one PEFT config applied."""
    cfg = {**yaml.safe_load((CONFIG_DIR / f"{config}.yaml").read_text()), **overrides}
    with torch.device("meta"):
        model = build_sam(variant, img_size=img_size)
    set_trainable(model, PAPER_POLICY)
    inject_from_config(model, cfg)
    adapters = sum(n for per_type in count_adapter_parameters(model).values() for n in per_type.values())
    return adapters, parameter_summary(model, paper_denominator=PAPER_DENOMINATOR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="vit_b", help="SAM variant (default: vit_b)")
    parser.add_argument("--img-size", type=int, default=512, help="input side in pixels (default: 512)")
    args = parser.parse_args()
    try:
        rows = [
            (label, *count_row(args.variant, args.img_size, name, o), paper) for label, name, o, paper in ROWS
        ]
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")
    total = rows[0][2]["total_base"]
    print(
        f"SAM {args.variant} at {args.img_size} px: {total:,} parameters; trainable extras: {', '.join(PAPER_POLICY)}"
    )
    print(f"{'method':<12} {'adapter':>11} {'trainable':>11} {'% of SAM':>9} {'% paper':>8}  paper reports")
    for label, adapters, summary, paper in rows:
        print(
            f"{label:<12} {adapters:>11,} {summary['trainable']:>11,} {summary['trainable_percent']:>8.2f}% "
            f"{summary['trainable_percent_paper']:>7.2f}%  {paper}"
        )


if __name__ == "__main__":
    main()
