"""peft's methods through the hf method, against peft's own PeftModel on the same tiny SAM and weights."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import peft
import pytest
import torch
from peft_helpers import TARGETS, composed_peft, perturb_, tiny_sam
from torch import nn

from salt.errors import ConfigError
from salt.peft import (
    MergeError,
    adapter_modules,
    adapter_parameter_names,
    after_optimizer_step,
    inject,
    inject_from_config,
    injections,
    merge,
    regularization,
    save_adapter,
    set_training_steps,
)

# The Linear targets of TARGETS, written out for peft (PiSSA, VeRA and OSF adapt no Conv2d).
LINEAR_TARGETS = r"image_encoder\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.lin[12])"
PRESETS = ("adalora", "dora", "osf", "pissa", "vera")


def _reference(name: str, steps: int = 10) -> tuple[nn.Module, peft.PeftModel]:
    """A tiny SAM with ``peft=<name>`` injected by us, and the same SAM wrapped by ``peft.get_peft_model``
    with that preset's peft config, targets written out independently."""
    cfg = composed_peft("sam_tiny", name)
    fields = {k: v for k, v in cfg["config"].items() if k != "_target_" and v is not None}
    fields |= {key: round(fraction * steps) for key, fraction in cfg["schedule"].items()}
    config_class = getattr(peft, cfg["config"]["_target_"].removeprefix("peft."))
    targets = TARGETS if "Conv2d" in cfg["layer_types"] else LINEAR_TARGETS
    theirs = peft.get_peft_model(tiny_sam(), config_class(**fields, target_modules=targets))
    ours = tiny_sam()
    inject_from_config(ours, cfg)
    return ours, theirs


def _copy_adapters(theirs: nn.Module, ours: nn.Module) -> list[str]:
    """Copy the adapter tensors of the PeftModel into ours (names differ by ``base_model.model.``)."""
    params = dict(ours.named_parameters())
    names = sorted(adapter_parameter_names(ours))
    with torch.no_grad():
        for name, param in theirs.named_parameters():
            key = name.removeprefix("base_model.model.")
            if key in names:
                params[key].copy_(param)
    return names


# The presets as their papers and configs/peft/lora.yaml define them (rank 4, scaling 1), written out for peft.
PAPER_CONFIGS = {
    "dora": lambda: peft.LoraConfig(
        r=4, lora_alpha=4, lora_dropout=0.1, use_dora=True, target_modules=TARGETS
    ),
    "pissa": lambda: peft.LoraConfig(
        r=4, lora_alpha=4, lora_dropout=0.0, init_lora_weights="pissa", target_modules=LINEAR_TARGETS
    ),
}


@pytest.mark.parametrize("name", ["dora", "pissa"])
def test_outputs_and_gradients_equal_get_peft_model(name: str, images: torch.Tensor) -> None:
    ours = tiny_sam()
    inject_from_config(ours, composed_peft("sam_tiny", name))
    theirs = peft.get_peft_model(tiny_sam(), PAPER_CONFIGS[name]())
    names = _copy_adapters(theirs, ours)
    theirs_params = dict(theirs.named_parameters())
    assert {f"base_model.model.{n}" for n in names} == {
        n for n, p in theirs_params.items() if p.requires_grad
    }
    perturb_({f"base_model.model.{n}": theirs_params[f"base_model.model.{n}"] for n in names})  # B != 0
    _copy_adapters(theirs, ours)
    ours.eval(), theirs.eval()  # no dropout
    got, want = ours(images), theirs(images)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    got.square().mean().backward()
    want.square().mean().backward()
    ours_params = dict(ours.named_parameters())
    for n in names:
        torch.testing.assert_close(
            ours_params[n].grad, theirs_params[f"base_model.model.{n}"].grad, atol=1e-6, rtol=1e-5, msg=n
        )
    # our model keeps its trainable groups besides the adapters; peft's freezes them
    assert ours.class_tokens.requires_grad and not theirs.base_model.model.class_tokens.requires_grad


_RELOAD = """
import sys, torch
sys.path.insert(0, {helpers!r})
from peft_helpers import tiny_sam
from salt.peft import load_adapter
images = torch.load({images!r})
outputs = {{}}
for name in {names!r}:
    model = tiny_sam().eval()
    load_adapter(model, f"{{sys.argv[1]}}/{{name}}.safetensors")
    with torch.no_grad():
        outputs[name] = model(images)
torch.save(outputs, f"{{sys.argv[1]}}/reloaded.pt")
"""


def test_dora_and_pissa_survive_save_and_load_in_a_fresh_process(
    tmp_path: Path, images: torch.Tensor
) -> None:
    names, expected = ("dora", "pissa"), {}
    for name in names:
        model = tiny_sam().eval()
        inject_from_config(model, composed_peft("sam_tiny", name))
        perturb_({n: p for n, p in model.named_parameters() if p.requires_grad})
        save_adapter(model, tmp_path / f"{name}.safetensors")
        with torch.no_grad():
            expected[name] = model(images)
    # PiSSA moves the top of W into its adapter: the fingerprint must still be that of the pretrained base
    assert "base_samples" in injections(model)[0]
    torch.save(images, tmp_path / "images.pt")
    helpers = str(Path(__file__).parent)
    script = _RELOAD.format(helpers=helpers, images=str(tmp_path / "images.pt"), names=list(names))
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=300)
    reloaded = torch.load(tmp_path / "reloaded.pt")
    for name in names:
        torch.testing.assert_close(reloaded[name], expected[name], atol=1e-6, rtol=0, msg=name)


@pytest.mark.parametrize("name", PRESETS)
def test_merged_equals_unmerged(name: str, images: torch.Tensor) -> None:
    model = tiny_sam().eval()
    inject_from_config(model, composed_peft("sam_tiny", name))
    params = dict(model.named_parameters())
    perturb_({n: params[n] for n in adapter_parameter_names(model)}, scale=0.05)
    with torch.no_grad():
        unmerged = model(images)
        merged = merge(copy.deepcopy(model))
        assert not list(adapter_modules(merged)) and not injections(merged)
        torch.testing.assert_close(merged(images), unmerged, atol=1e-5, rtol=1e-5)


def test_an_adapter_peft_cannot_merge_says_so_in_one_line() -> None:
    # aLoRA (activated LoRA) has no merge in peft; its injection works on any Linear layer.
    model = tiny_sam()
    config = {"_target_": "peft.LoraConfig", "r": 2, "alora_invocation_tokens": [1]}
    inject(model, "hf", LINEAR_TARGETS, config=config)
    with pytest.raises(
        MergeError, match=r"^peft cannot merge the Linear adapter of image_encoder\.blocks\.0\.attn\.qkv: "
    ) as info:
        merge(model)
    assert "\n" not in str(info.value)
    assert len(list(adapter_modules(model))) == 8 and injections(model)  # nothing was merged


def test_adalora_schedule_and_allocation_follow_peft(images: torch.Tensor) -> None:
    steps = 10
    ours, theirs = _reference("adalora", steps)
    names = _copy_adapters(theirs, ours)
    set_training_steps(ours, steps)
    live = theirs.base_model.peft_config["default"]
    ours_live = ours.peft_tuners[injections(ours)[0]["targets"][0]].tuner.peft_config["default"]
    assert (ours_live.total_step, ours_live.tinit, ours_live.tfinal) == (
        live.total_step,
        live.tinit,
        live.tfinal,
    )
    params = dict(ours.named_parameters())
    theirs_params = dict(theirs.named_parameters())
    ours_opt = torch.optim.SGD([params[n] for n in names], lr=0.5)
    theirs_opt = torch.optim.SGD([p for p in theirs.parameters() if p.requires_grad], lr=0.5)
    pruned = []
    for step in range(1, steps + 1):
        for model, optimizer in ((ours, ours_opt), (theirs, theirs_opt)):
            optimizer.zero_grad()
            model(images).sigmoid().mean().backward()
            optimizer.step()
        after_optimizer_step(ours, step)
        theirs.base_model.update_and_allocate(step - 1)  # peft's loop: the 0-based step just taken
        for n in names:  # the same masks after every step: the schedule is peft's, step for step
            if ".lora_E." in n:
                want = theirs_params[f"base_model.model.{n}"]
                assert torch.equal(params[n] == 0, want == 0), f"{n}, step {step}"
                torch.testing.assert_close(params[n], want, atol=1e-9, rtol=1e-4, msg=f"{n}, step {step}")
        pruned.append(sum(int((params[n] == 0).sum()) for n in names if ".lora_E." in n))
    assert pruned[0] == 0 < pruned[-1]  # nothing pruned during the warm-up, then the budget moves to target_r


def test_adalora_regulariser_is_peft_s(images: torch.Tensor) -> None:
    class LossOutput(nn.Module):
        """Returns an output with a ``loss``, the only kind AdaLoraModel adds its regulariser to."""

        def __init__(self, sam: nn.Module) -> None:
            super().__init__()
            self.sam = sam

        def forward(self, x: torch.Tensor) -> SimpleNamespace:
            return SimpleNamespace(loss=self.sam(x).sum() * 0)

    cfg = composed_peft("sam_tiny", "adalora")
    ours = tiny_sam()
    inject_from_config(ours, cfg)
    fields = {k: v for k, v in cfg["config"].items() if k != "_target_" and v is not None}
    config = peft.AdaLoraConfig(**fields, total_step=10, target_modules=r"sam\." + TARGETS)
    theirs = peft.get_peft_model(LossOutput(tiny_sam()), config)
    ours_params = dict(ours.named_parameters())
    with torch.no_grad():
        for name, param in theirs.named_parameters():
            key = name.removeprefix("base_model.model.sam.")
            if ".lora_" in key:
                param.copy_(ours_params[key])
    peft_term = theirs.base_model(images).loss / cfg["config"]["orth_reg_weight"]  # AdaLoraModel.forward
    assert peft_term > 0
    torch.testing.assert_close(regularization(ours), peft_term.detach(), atol=1e-5, rtol=1e-5)
    assert cfg["reg_weight"] == cfg["config"]["orth_reg_weight"]  # the loop weights it as peft does


def _raises(pattern: str, model: nn.Module, **options) -> str:
    with pytest.raises(ConfigError, match=pattern) as info:
        inject(model, "hf", TARGETS, **options)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        (
            {"config": {"_target_": "peft.LoraConfg"}},
            r"option config\._target_='peft\.LoraConfg' cannot be imported",
        ),
        ({"config": {"_target_": "torch.nn.Linear"}}, r"'torch\.nn\.Linear' is not a peft config class"),
        (
            {"config": {"_target_": "peft.LoraConfig", "rr": 4}},
            r"option config\.rr is not a field of peft\.LoraConfig",
        ),
        (
            {"config": {"_target_": "peft.LoraConfig", "target_modules": ["qkv"]}},
            r"option config\.target_modules: the modules to adapt are target_modules",
        ),
        (
            {"config": {"_target_": "peft.LoraConfig", "r": 0}},
            r"option config\.r=0 \(peft\.LoraConfig\) was rejected by peft: .*`r` should be a positive integer",
        ),
        (
            {"config": {"_target_": "peft.LoraConfig", "init_lora_weights": "pissa"}},
            r"option config\.init_lora_weights='pissa' \(peft\.LoraConfig\) was rejected by peft",
        ),
        (
            {"config": {"_target_": "peft.OSFConfig"}},
            r"option layer_types=\['Linear', 'Conv2d'\]: peft's OSFConfig left 2 targets as they were \(first: "
            r"image_encoder\.neck\.0, a Conv2d\)",
        ),
        (
            {"config": {"_target_": "peft.VeraConfig"}, "layer_types": ["Conv2d", "Conv3d"]},
            r"option layer_types=\['Conv2d', 'Conv3d'\] must be a non-empty list of Linear, Conv2d",
        ),
        (
            {"config": {"_target_": "peft.AdaLoraConfig", "total_step": 10}, "schedule": {"tinit": 2}},
            r"option schedule\.tinit=2 must be a fraction of the run's steps in \[0, 1\]",
        ),
    ],
)
def test_bad_options_are_one_line_errors_and_change_nothing(options: dict, pattern: str) -> None:
    model = tiny_sam()
    before = {n: (p.requires_grad, p.detach().clone()) for n, p in model.named_parameters()}
    _raises(pattern, model, **options)
    assert not list(adapter_modules(model)) and not injections(model) and "peft_config" not in vars(model)
    for name, param in model.named_parameters():
        assert (param.requires_grad, True) == (before[name][0], torch.equal(param, before[name][1])), name


def test_layer_types_that_keep_no_target() -> None:
    with pytest.raises(
        ConfigError, match=r"layer_types=\['Conv2d'\] keeps none of the 8 matched targets \(they are Linear\)"
    ):
        inject(
            tiny_sam(), "hf", LINEAR_TARGETS, config={"_target_": "peft.VeraConfig"}, layer_types=["Conv2d"]
        )


@pytest.mark.slow
def test_count_params_prints_every_method_with_peft_s_counts() -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "count_params.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--model", "sam_tiny"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {}
    for line in proc.stdout.splitlines()[2:-1]:
        label, adapter = re.match(r"^(.+?)\s+([\d,]+|-)\s", line).groups()
        rows[label] = None if adapter == "-" else int(adapter.replace(",", ""))
    assert set(rows) == {
        "SALT (rank 4)",
        "SALT (rank 256)",
        "LoRA (rank 4)",
        "LoRA (rank 32)",
        "LoRA (rank 256)",  # printed as not fitting the tiny SAM (k = 32)
        "LoRA (rank 56)",  # ditto
        "Decoder-only",
        "S-SAM",
        "DoRA (rank 4)",
        "PiSSA (rank 4)",
        "AdaLoRA (rank 4)",
        "VeRA (rank 256)",
        "OSF",
        "Full fine-tuning",
        "No adapter (norm+pos_embed+prompt)",
        "peft LoraConfig",
    }
    labels = {"adalora": "AdaLoRA (rank 4)", "dora": "DoRA (rank 4)", "osf": "OSF", "pissa": "PiSSA (rank 4)"}
    for name, label in {**labels, "vera": "VeRA (rank 256)"}.items():
        _, theirs = _reference(name)
        assert rows[label] == theirs.get_nb_trainable_parameters()[0], name
    assert rows["LoRA (rank 256)"] is None
