"""Time SALT forward + backward on one SAM ViT-B ``qkv``-sized layer against a naive rebuild of ``W'``.

    python scripts/bench_salt_layer.py [--tokens 2048] [--threads 2] [--repeats 7]

Compares, on ``nn.Linear(768, 2304)`` with r = 760, l = 4 (the authors' attention setting) and an input
that needs its gradient (as inside a network): the frozen layer, LoRA r = 4, SALT in its ``basis`` and
``weight`` forms and in ``auto`` (the form its cost model picks), and the authors' algorithm, which builds
the dense ``k x k`` core and ``W' = U ReLU(C) V^T`` on every call. Prints median wall times over repeats
after warm-up, with the multiply-add count of each SALT form from the layer's cost model.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from salt.peft.lora import LoraLayer
from salt.peft.salt import SaltLayer

IN_FEATURES, OUT_FEATURES, RANK, LORA_RANK = 768, 2304, 760, 4  # ViT-B qkv, the authors' SALT setting


def naive_salt(layer: SaltLayer) -> Callable[[torch.Tensor], torch.Tensor]:
    """The authors' forward: dense core ``C (k x k)``, ``W' = U ReLU(C) Vh`` rebuilt on every call."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        r, s = layer.rank, layer.S
        top = torch.diag(layer.scale * s[:r] + layer.shift)  # (r, r)
        tail = torch.diag(s[r:]) + layer.lora_x @ layer.lora_y  # (k - r, k - r)
        core = torch.relu(torch.block_diag(top, tail))  # (k, k)
        weight = layer.U @ core @ layer.Vh  # (out, in)
        return F.linear(x, weight, layer.base_layer.bias)

    return forward


def time_fwd_bwd(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, warmup: int, repeats: int
) -> float:
    """Median seconds of ``forward(x)`` plus the backward pass of a fixed output gradient."""
    grad = torch.ones(x.shape[0], OUT_FEATURES)
    times = []
    for step in range(warmup + repeats):
        start = time.perf_counter()
        forward(x).backward(grad)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2048, help="rows of the input (default: 2048)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats after 2 warm-up runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = nn.Linear(IN_FEATURES, OUT_FEATURES)
    salt = SaltLayer(base, RANK, LORA_RANK, init="paper")
    lora = LoraLayer(nn.Linear(IN_FEATURES, OUT_FEATURES), 4, 4.0, dropout=0.0)
    x = torch.randn(args.tokens, IN_FEATURES, requires_grad=True)
    with torch.no_grad():
        error = (salt(x) - naive_salt(salt)(x)).abs().max().item()

    def with_form(form: str) -> Callable[[torch.Tensor], torch.Tensor]:
        def forward(inputs: torch.Tensor) -> torch.Tensor:
            salt.execution = form
            return salt(inputs)

        return forward

    cases = {
        "frozen layer": base,
        "LoRA r=4": lora,
        "naive SALT (rebuild W')": naive_salt(salt),
        "SALT weight form": with_form("weight"),
        "SALT basis form": with_form("basis"),
        "SALT auto": with_form("auto"),
    }
    seconds = {name: time_fwd_bwd(fn, x, 2, args.repeats) for name, fn in cases.items()}
    k = min(IN_FEATURES, OUT_FEATURES)
    naive_macs = (
        2 * (OUT_FEATURES * k * k + OUT_FEATURES * k * IN_FEATURES)
        + 3 * args.tokens * IN_FEATURES * OUT_FEATURES
    )
    macs = {
        "naive SALT (rebuild W')": naive_macs,
        "SALT weight form": salt.multiply_adds("weight", args.tokens),
        "SALT basis form": salt.multiply_adds("basis", args.tokens),
        "SALT auto": salt.multiply_adds(salt.choose_form(args.tokens, True), args.tokens),
    }
    print(
        f"Linear {IN_FEATURES}->{OUT_FEATURES}, r={RANK}, l={LORA_RANK}, {args.tokens} tokens, "
        f"{args.threads} threads; auto picks {salt.choose_form(args.tokens, True)!r}; "
        f"max |ours - naive| = {error:.1e}"
    )
    naive, lora_time = seconds["naive SALT (rebuild W')"], seconds["LoRA r=4"]
    print(f"{'case':<26} {'ms':>8} {'x naive':>8} {'x LoRA':>7} {'GMAC':>6}")
    for name, value in seconds.items():
        gmac = f"{macs[name] / 1e9:6.2f}" if name in macs else f"{'':>6}"
        print(f"{name:<26} {value * 1e3:8.1f} {value / naive:8.2f} {value / lora_time:7.2f} {gmac}")


if __name__ == "__main__":
    main()
