"""Every execution form and core placement of SALT and S-SAM's SVD against the dense formula, in float64."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from dense_reference import apply_dense, assert_matches_dense, salt_dense_weight
from torch import nn

from salt.peft.salt import Salt, SaltLayer
from salt.peft.spectral import BASIS_PLACEMENTS
from salt.peft.svd import SvdLayer

LAYERS = {
    "linear": (lambda: nn.Linear(12, 20), (2, 5, 12)),
    "linear-wide": (lambda: nn.Linear(20, 12), (7, 20)),
    "conv3x3": (lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1), (2, 3, 7, 7)),
}
RUNS = [
    (*case, "basis", p) for case in itertools.product(LAYERS, ("full", "diagonal")) for p in BASIS_PLACEMENTS
]
RUNS += [(kind, relu, "weight", None) for kind, relu in itertools.product(LAYERS, ("full", "diagonal"))]
RUNS += [(kind, "diagonal", "delta", None) for kind in LAYERS]


def _layer(kind: str, relu: str, tail_sign: float) -> tuple[SaltLayer, torch.Tensor]:
    make, shape = LAYERS[kind]
    torch.manual_seed(0)
    layer = SaltLayer(make().double(), rank=3, lora_rank=2, relu=relu, init="paper")
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for param in layer.parameters(recurse=False):
            param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * 0.6)
        # X Y with a large diagonal of sign tail_sign: a negative one clamps the smallest tail entries
        layer.lora_x[:, 0] = tail_sign * layer.S[3:].sqrt() * 1.5
        layer.lora_y[0] = layer.S[3:].sqrt()
        layer.lora_x[:, 1] *= 0.1
    x = torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True)
    return layer, x


@pytest.mark.parametrize(("kind", "relu", "form", "placement"), RUNS)
@pytest.mark.parametrize("tail_sign", [1.0, -1.0])
def test_every_form_matches_the_dense_formula(kind, relu, form, placement, tail_sign: float) -> None:
    layer, x = _layer(kind, relu, tail_sign)
    index, _ = layer.changed_directions() if relu == "diagonal" else (None, None)
    if relu == "diagonal":
        assert (index.numel() > layer.rank) == (tail_sign < 0)  # the clamped-tail path is exercised
    out = layer.basis_forward(x, placement) if form == "basis" else layer.form_forward(form, x)
    expected = apply_dense(layer.base_layer, salt_dense_weight(layer), x)
    assert_matches_dense(out, expected, [x, *layer.parameters(recurse=False)])


@pytest.mark.parametrize("placement", BASIS_PLACEMENTS)
def test_svd_basis_placements_match_the_weight_form(placement: str) -> None:
    torch.manual_seed(0)
    layer = SvdLayer(nn.Conv2d(3, 8, 3, padding=1).double())
    with torch.no_grad():
        layer.shift.add_(torch.linspace(-3, 1, 8, dtype=torch.float64))  # some singular values clamped
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    expected = layer.form_forward("weight", x)
    torch.testing.assert_close(layer.basis_forward(x, placement), expected, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize(
    ("shape", "rank", "relu", "tokens", "form", "placement"),
    [
        ((768, 3072), 50, "full", 2048, "basis", "in"),  # ViT-B lin1: the dense tail folded into C' Vh
        ((3072, 768), 50, "full", 2048, "basis", "out"),  # ViT-B lin2: folded into U C'
        ((3072, 768), 50, "full", 392, "basis", "rows"),  # few tokens: the tail on the activations
        ((768, 2304), 760, "full", 2048, "basis", "rows"),  # qkv: an 8 x 8 tail
        ((768, 2304), 76, "diagonal", 2048, "delta", None),  # r = 0.1 k: frozen layer + thin products
        ((768, 2304), 760, "diagonal", 2048, "basis", "rows"),  # r near k: delta would cost a second pass
    ],
)
def test_cost_model_choices(shape, rank: int, relu: str, tokens: int, form: str, placement) -> None:
    # the delta form's cost reads which tail entries are clamped, so its layers need real values
    device = "meta" if relu == "full" else "cpu"
    layer = SaltLayer(nn.Linear(*shape, device=device), rank=rank, lora_rank=4, relu=relu)
    assert layer.choose_form(tokens, input_grad=True) == form
    if placement is not None:
        assert layer.basis_placement(tokens, input_grad=True) == placement


@pytest.mark.gpu
def test_cuda_auto_never_picks_the_syncing_delta_form() -> None:
    torch.manual_seed(0)
    base = nn.Linear(768, 2304)
    layer = SaltLayer(copy.deepcopy(base), rank=76, lora_rank=4, relu="diagonal", init="paper")
    assert layer.choose_form(2048, input_grad=True) == "delta"  # on the CPU, the cheapest
    layer = layer.cuda()
    assert layer.auto_forms() == ("basis", "weight")
    assert layer.choose_form(2048, input_grad=True) == "basis"
    forced = SaltLayer(base, rank=76, lora_rank=4, relu="diagonal", execution="delta").cuda()
    forced.load_state_dict(layer.state_dict())
    x = torch.randn(2, 1024, 768, device="cuda")
    torch.testing.assert_close(forced.train_forward(x), layer.train_forward(x), rtol=1e-4, atol=1e-4)


def test_delta_needs_the_diagonal_relu() -> None:
    with pytest.raises(ValueError, match="execution='delta' needs relu='diagonal'"):
        Salt(execution="delta")
    with pytest.raises(ValueError, match="needs relu='diagonal'"):
        SaltLayer(nn.Linear(4, 4), rank=2, lora_rank=1, execution="delta")
    assert Salt(execution="delta", relu="diagonal").execution == "delta"
    assert "delta" not in SaltLayer(nn.Linear(4, 4), rank=2, lora_rank=1).forms()
