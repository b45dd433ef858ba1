"""The export job behind ``export.py``: a trained run as an ONNX or TorchScript file and a JSON sidecar.

The exported file holds the whole network with its adapters merged (``salt.peft.merge``): running it needs
onnxruntime or torch alone, not this project. The sidecar ``<output>.json`` says what goes in and comes out
and how images are prepared (see :func:`describe`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from omegaconf import DictConfig

from salt.checks import check_output, probability_threshold
from salt.data.patches import CLAHE_TILES, TTA_FLIPS
from salt.errors import ConfigError
from salt.export.graph import INPUT_NAMES, OUTPUT_NAMES, ExportedSegmenter
from salt.inference.loading import load_trained
from salt.model.backbones import backbone
from salt.model.segmenter import SamSegmenter
from salt.peft import merge
from salt.peft.registry import method_class

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
# The file name endings each format goes by; an output ending in another format's is refused (a TorchScript
# archive named model.onnx would overwrite an ONNX file and fail to load in onnxruntime). Other endings are
# taken as given.
SUFFIXES: dict[str, tuple[str, ...]] = {
    "onnx": (".onnx",),
    "torchscript": (".pt", ".pth", ".ts", ".torchscript", ".jit"),
}
# The batch of the example the graph is traced with: 2, so no size-1 dimension gets specialised away.
EXAMPLE_BATCH = 2
# ONNX keeps tensors larger than this outside the protobuf (its 2 GiB limit).
ONNX_INLINE_LIMIT = 2**31 - 2**26

RESIZE_RULES = {
    "longest_pad": "scale so the longest side is img_size (the other rounded half up) with area interpolation "
    "when shrinking to half or less, else bilinear; pad the bottom and right with zeros to img_size x img_size",
    "plain": "stretch to img_size x img_size (area interpolation when shrinking to half or less, else bilinear)",
}


def sidecar_path(output: Path) -> Path:
    """Where the description of ``output`` goes: ``<output>.json`` (``model.onnx`` -> ``model.onnx.json``)."""
    return output.with_name(output.name + ".json")


def _check_suffix(output: Path, fmt: str) -> None:
    """Refuse an ``output`` whose suffix names the other format (``format=torchscript output=model.onnx``)."""
    suffix = output.suffix.lower()
    other = next((name for name, suffixes in SUFFIXES.items() if name != fmt and suffix in suffixes), None)
    if other is not None:
        raise ConfigError(
            f"output={output}: a {suffix} file is {other}, but format={fmt}; name it "
            f"{output.with_suffix(SUFFIXES[fmt][0]).name} or set format={other}"
        )


def _write_onnx(model: ExportedSegmenter, example: torch.Tensor, path: Path) -> None:
    # The exporter's graph passes log every rewrite at INFO, which would bury the job's own log.
    for name in ("onnx_ir", "onnxscript"):
        logging.getLogger(name).setLevel(logging.WARNING)
    batch = torch.export.Dim("batch", min=1)
    size = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
        dynamic_shapes={"images": {0: batch}},
        external_data=size > ONNX_INLINE_LIMIT,
        dynamo=True,
        verbose=False,
    )
    onnx.checker.check_model(str(path))


def _write_torchscript(model: ExportedSegmenter, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        # The tracer flags every Python number read from a shape; the ones in SAM's code are image sizes,
        # fixed by img_size, and the batch size stays free (the tests run traced files at other batches).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # format=torchscript asks for exactly these calls; their notice that TorchScript is deprecated in
        # favour of torch.export (format=onnx goes through it) leaves the user nothing to do.
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.(trace|trace_method|save)` is deprecated", category=FutureWarning
        )
        traced = torch.jit.trace(model, (example,), check_trace=False)
        torch.jit.save(traced, str(path))


def _opset(path: Path) -> int | None:
    proto = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def describe(
    model: ExportedSegmenter, fmt: str, output: Path, run_cfg: dict, threshold: float, ckpt: str
) -> dict:
    """The sidecar's content: inputs and outputs (names, shapes, dtype), preprocessing, threshold, origin."""
    size = model.img_size
    classes = int(model.model.num_classes)
    resize = run_cfg["dataset"].get("resize", "longest_pad")
    info = {
        "format": fmt,
        "file": output.name,
        "inputs": [{"name": INPUT_NAMES[0], "shape": ["batch", 3, size, size], "dtype": "float32"}],
        "outputs": [
            {"name": name, "shape": ["batch", classes, size, size], "dtype": "float32"}
            for name in OUTPUT_NAMES
        ],
        "img_size": size,
        "preprocessing": {
            "intensity": "each image min-max rescaled to [0, 255] over all its pixels and channels, rounded",
            "channels": "RGB; a grey image repeated on all three, channels past the third dropped",
            "resize": {"mode": resize, "rule": RESIZE_RULES.get(resize, resize)},
            "layout": "NCHW float32, values in [0, 255]",
            "normalization": {**model.model.normalizer.spec(), "applied": "inside the model"},
        },
        "threshold": threshold,
        "postprocessing": "class c is present where probabilities[:, c] > threshold; with several classes the "
        "label image is argmax + 1 where any class is present; crop the padding and resize to the original size",
        "class_names": list(run_cfg["dataset"].get("class_names") or []),
        "run": {
            "ckpt": ckpt,
            "model": run_cfg["model"]["variant"],
            "method": method_class(run_cfg["peft"]).name
            if (run_cfg.get("peft") or {}).get("_target_")
            else None,
            "dataset": run_cfg["dataset"]["name"],
        },
    }
    patch = run_cfg.get("patch")
    if patch:
        tta = patch.get("tta", "none")  # runs recorded before test-time flips existed had none
        info["preprocessing"]["resize"] = {
            "mode": "patch",
            "rule": f"rescale the image by {patch['scale']} (area averaging when shrinking, bilinear when "
            f"enlarging); the network takes windows of {size} x {size} of it",
        }
        if patch.get("clahe"):  # runs recorded before the option existed had none
            info["preprocessing"]["intensity"] += (
                f"; the rescaled image's L* (OpenCV's RGB to CIE L*a*b*) equalised by OpenCV's CLAHE, clip limit "
                f"{patch['clahe']}, {CLAHE_TILES[0]} x {CLAHE_TILES[1]} tiles, then back to RGB"
            )
        if patch.get("normalize") == "image":
            info["preprocessing"]["intensity"] += "; the rescaled image min-max stretched to [0, 255] again"
        info["sliding_window"] = {
            "window": size,
            "scale": patch["scale"],
            "overlap": patch["overlap"],
            "blend": patch["blend"],
            "tta": tta,
            "gaussian_sigma": "0.125 x window (MONAI's sliding_window_inference default)",
            "padding": "an image smaller than a window is zero-padded symmetrically, then cropped back",
            "rule": "windows step by window x (1 - overlap) in each direction, the last one flush with the "
            "border; overlapping logits are averaged with the blend weights (monai.inferers."
            "sliding_window_inference does exactly this)",
        }
        flips = TTA_FLIPS[tta]
        if len(flips) > 1:
            named = {(): "as is", (-1,): "left-right", (-2,): "up-down", (-2, -1): "both"}
            info["sliding_window"]["tta_rule"] = (
                f"run the whole sliding window on {len(flips)} versions of the image ("
                + ", ".join(named[d] for d in flips)
                + "), flip each result back and average the logits"
            )
        info["postprocessing"] = (
            "blend the windows' logits over the rescaled image, then sigmoid; resize to the original size; "
            "class c is present where probabilities[:, c] > threshold"
        )
    return info


def export(cfg: DictConfig) -> dict:
    """Export the run ``cfg.ckpt`` to ``cfg.output`` in ``cfg.format`` and write the sidecar next to it.

    Nothing is left at ``cfg.output`` unless the whole export succeeded (the file is written in a temporary
    folder beside it and moved into place).

    Returns:
        The sidecar's content.

    Raises:
        ConfigError: an unknown format, an output named for another format or that cannot be written, a
            checkpoint that cannot be read,
            a classic network or a run prompted by boxes or points.
    """
    fmt = str(cfg.format)
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt}: unknown export format; valid: {', '.join(FORMATS)}")
    given = cfg.get("threshold")
    if given is not None:
        threshold = probability_threshold("threshold", given)
    output = Path(str(cfg.output))
    _check_suffix(output, fmt)
    check_output("output", output, "file", example="model.onnx")
    run = load_trained(cfg.ckpt, cfg.get("base_checkpoint"))
    network, run_cfg = run.model, run.config
    if not isinstance(network, SamSegmenter):
        raise ConfigError(
            f"ckpt={cfg.ckpt}: export takes SAM-family runs; this run trained {type(network).__name__}"
        )
    if network.prompt_mode != "class":
        raise ConfigError(
            f"ckpt={cfg.ckpt}: the run was trained with prompt.mode={network.prompt_mode}; export takes runs "
            "prompted by class tokens alone (prompt=class)"
        )
    if given is None:  # the run's own, as it was evaluated with
        threshold = probability_threshold("eval.threshold", run_cfg["eval"]["threshold"])
    merged = merge(network).eval()
    backbone(merged.backbone).prepare_export(merged)
    model = ExportedSegmenter(merged).eval()
    example = torch.rand(EXAMPLE_BATCH, 3, model.img_size, model.img_size) * 255
    info = describe(model, fmt, output, run_cfg, threshold, str(cfg.ckpt))
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        target = staging / output.name
        with torch.no_grad():
            (_write_onnx if fmt == "onnx" else _write_torchscript)(model, example, target)
        if fmt == "onnx":
            info["opset"] = _opset(target)
        (staging / sidecar_path(output).name).write_text(json.dumps(info, indent=2) + "\n")
        for path in sorted(staging.iterdir(), key=lambda p: p.suffix == ".json"):  # the sidecar last
            os.replace(path, output.parent / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info(
        "exported %s (%s, batch x 3 x %d x %d) and %s",
        output,
        fmt,
        model.img_size,
        model.img_size,
        sidecar_path(output).name,
    )
    return info
