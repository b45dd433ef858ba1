"""SALT and S-SAM's SVD against the formulas of paper.md §1 written with dense matrices, in float64."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from dense_reference import TOLERANCE, apply_dense, assert_matches_dense, salt_dense_weight
from torch import nn

from salt.peft import inject
from salt.peft.salt import SaltLayer
from salt.peft.spectral import canonical_signs, signed_svd
from salt.peft.svd import SvdLayer

LAYERS = {
    "linear": lambda: nn.Linear(12, 20),
    "conv3x3": lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1),
    "conv1x1": lambda: nn.Conv2d(10, 6, 1),
}
INPUTS = {"linear": (2, 5, 12), "conv3x3": (2, 3, 7, 7), "conv1x1": (2, 10, 4, 4)}
FORMS = ("basis", "weight", "auto")


def _base(kind: str) -> nn.Module:
    torch.manual_seed(0)
    return LAYERS[kind]().double()


def _input(kind: str) -> torch.Tensor:
    return torch.randn(INPUTS[kind], dtype=torch.float64, generator=torch.Generator().manual_seed(3))


def _randomise_(layer: nn.Module) -> None:
    # Values that drive some top and tail entries of the core negative, so every ReLU case is exercised.
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for param in layer.parameters(recurse=False):
            param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * 0.6)


def _check_against_dense(layer: nn.Module, dense_weight, kind: str) -> None:
    x = _input(kind).requires_grad_(True)
    expected = apply_dense(layer.base_layer, dense_weight(layer), x)
    assert_matches_dense(layer(x), expected, [x, *layer.parameters(recurse=False)])
    layer.eval()
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, **TOLERANCE)
    torch.testing.assert_close(layer.to_plain()(x), expected, **TOLERANCE)


@pytest.mark.parametrize(
    ("kind", "relu", "init", "form"),
    list(itertools.product(LAYERS, ("full", "diagonal"), ("zero", "paper"), FORMS)),
)
def test_salt_matches_dense_formula(kind: str, relu: str, init: str, form: str) -> None:
    base = _base(kind)
    layer = SaltLayer(base, rank=3, lora_rank=2, relu=relu, init=init, execution=form)
    if init == "zero":
        assert torch.equal(layer.lora_y, torch.zeros_like(layer.lora_y))
        torch.testing.assert_close(layer(_input(kind)), base(_input(kind)), atol=1e-12, rtol=1e-12)
    _randomise_(layer)
    _check_against_dense(layer, salt_dense_weight, kind)


@pytest.mark.parametrize(("kind", "form"), list(itertools.product(LAYERS, FORMS)))
def test_svd_matches_dense_formula(kind: str, form: str) -> None:
    base = _base(kind)
    layer = SvdLayer(base, execution=form)
    torch.testing.assert_close(layer(_input(kind)), base(_input(kind)), atol=1e-12, rtol=1e-12)
    _randomise_(layer)
    assert (layer.scale * layer.S + layer.shift).min() < 0  # the ReLU is active somewhere
    _check_against_dense(layer, lambda m: m.U @ torch.diag(torch.relu(m.scale * m.S + m.shift)) @ m.Vh, kind)


def test_buffers_reconstruct_the_weight_and_follow_to() -> None:
    base = _base("conv3x3")
    layer = SaltLayer(base, rank=3, lora_rank=2)
    flat = base.weight.reshape(8, -1)  # (out, in * kh * kw)
    torch.testing.assert_close(layer.U @ torch.diag(layer.S) @ layer.Vh, flat, atol=1e-12, rtol=1e-12)
    assert {n for n, _ in layer.named_buffers()} == {"U", "S", "Vh"}
    assert not any(b.requires_grad for b in layer.buffers())
    assert not set(layer.state_dict()) & {"U", "S", "Vh"}
    layer.float()
    assert layer.U.dtype == layer.S.dtype == layer.Vh.dtype == layer.scale.dtype == torch.float32


def test_regularisers_match_their_formulas() -> None:
    layer = SaltLayer(_base("linear"), rank=3, lora_rank=2, init="paper")
    _randomise_(layer)
    s = layer.S[:3]
    expected = torch.linalg.vector_norm(layer.scale * s + layer.shift - s) + torch.linalg.matrix_norm(
        layer.lora_x @ layer.lora_y
    )
    torch.testing.assert_close(layer.regularization(), expected)
    svd = SvdLayer(_base("linear"))
    _randomise_(svd)
    expected = torch.linalg.vector_norm(1 - svd.scale) + torch.linalg.vector_norm(svd.shift)
    torch.testing.assert_close(svd.regularization(), expected)


def test_regulariser_gradient_is_finite_at_zero_init() -> None:
    layer = SaltLayer(_base("linear"), rank=3, lora_rank=2)
    assert layer.regularization().item() == 0
    layer.regularization().backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters(recurse=False))


def test_paper_init_statistics() -> None:
    layer = SaltLayer(nn.Linear(64, 64), rank=8, lora_rank=4, init="paper")
    for param in (layer.lora_x, layer.lora_y):
        assert param.shape[0] * param.shape[1] == 56 * 4
        assert 0.007 < param.std().item() < 0.013 and abs(param.mean().item()) < 0.003


def test_sign_convention_is_stable_under_flipped_signs(monkeypatch: pytest.MonkeyPatch) -> None:
    base = _base("linear")
    U, _, Vh = signed_svd(base.weight)
    pivot = U.abs().argmax(dim=0)
    assert (U.gather(0, pivot.unsqueeze(0)) > 0).all()
    flips = torch.tensor([1.0, -1.0] * 6)  # (k,) flip every other singular pair
    flipped_u, flipped_vh = canonical_signs(U * flips, Vh * flips.unsqueeze(1))
    assert torch.equal(flipped_u, U) and torch.equal(flipped_vh, Vh)

    reference = SaltLayer(base, rank=3, lora_rank=2, init="paper")
    svd = torch.linalg.svd

    def flipped_svd(a, full_matrices=True):
        u, s, vh = svd(a, full_matrices=full_matrices)
        return u * -flips, s, vh * -flips.unsqueeze(1)

    monkeypatch.setattr(torch.linalg, "svd", flipped_svd)
    other = SaltLayer(_base("linear"), rank=3, lora_rank=2, init="paper")
    assert torch.equal(other.U, reference.U) and torch.equal(other.Vh, reference.Vh)
    other.load_state_dict(reference.state_dict())
    x = _input("linear")
    torch.testing.assert_close(other(x), reference(x), atol=0, rtol=0)


def test_eval_cache_rebuilds_only_after_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = SaltLayer(_base("linear"), rank=3, lora_rank=2, init="paper").eval()
    builds = []
    build = SaltLayer.adapted_weight
    monkeypatch.setattr(
        SaltLayer, "adapted_weight", lambda self, dtype=None: builds.append(1) or build(self, dtype)
    )
    x = _input("linear")
    with torch.no_grad():
        first = layer(x)
        torch.testing.assert_close(layer(x), first)
        assert len(builds) == 1
        layer.shift.add_(0.5)  # an optimizer step or load_state_dict changes a parameter in place
        changed = layer(x)
        assert len(builds) == 2 and not torch.allclose(changed, first)
        layer.float()
        assert layer(x.float()).dtype == torch.float32 and len(builds) == 3
    layer.float()(x.float()).sum().backward()  # with autograd the cache is bypassed
    assert layer.shift.grad is not None


@pytest.mark.parametrize(
    ("shape", "rank", "tokens", "expected"),
    [
        ((768, 2304), 760, 2048, "basis"),  # ViT-B qkv
        ((768, 768), 760, 2048, "weight"),  # ViT-B proj (square)
        ((3072, 768), 50, 2048, "basis"),  # ViT-B lin2
    ],
)
def test_cost_model_picks_the_cheaper_form(shape, rank: int, tokens: int, expected: str) -> None:
    layer = SaltLayer(nn.Linear(*shape, device="meta"), rank=rank, lora_rank=4)
    assert layer.choose_form(tokens, input_grad=True) == expected


def test_cost_model_counts_for_vit_b_qkv() -> None:
    # Hand counts for 768 -> 2304, k = 768, r = 760, l = 4, 2048 tokens, forward + backward.
    layer = SaltLayer(nn.Linear(768, 2304, device="meta"), rank=760, lora_rank=4)
    n, i, o, k = 2048, 768, 2304, 768
    assert layer.form_multiply_adds("basis", n) == pytest.approx(2 * n * k * (i + o), rel=1e-3)  # about 9.7 G
    assert layer.form_multiply_adds("weight", n) == pytest.approx(
        2 * o * k * i + 3 * n * i * o, rel=1e-3
    )  # 13.6 G


def test_a_cache_shares_one_decomposition_per_weight() -> None:
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(12, 8), nn.Linear(8, 12))
    first, second = nn.Sequential(*base), nn.Sequential(*base)  # two models on the same frozen layers
    cache: dict = {}
    inject(first, "salt", ["0", "1"], rank=2, cache=cache)
    inject(second, "svd", ["0", "1"], cache=cache)
    assert len(cache) == 2  # one decomposition per weight, reused by the second injection
    assert first[0].U.data_ptr() == second[0].U.data_ptr() != first[1].U.data_ptr()
    torch.testing.assert_close(second[0].U, SvdLayer(copy.deepcopy(base[0])).U)  # what no cache computes
    with torch.no_grad():
        base[0].weight.mul_(2.0)  # changed in place: a new version of the tensor, never a stale hit
    third = nn.Sequential(base[0])
    inject(third, "svd", ["0"], cache=cache)
    assert len(cache) == 3
    torch.testing.assert_close(third[0].S, 2 * second[0].S)
