"""SAM 2.1 in image mode (Hiera trunk + FPN neck, SAM2's prompt encoder and mask decoder), from the ``sam2``
package's own classes and YAML configs (``sam2/configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml``).

The package's ``SAM2Base`` is instantiated from its config with Hydra's ``instantiate`` (``image_size`` set to
the input side; the package's ``build_sam2`` would need Hydra's global state, which ``train.py`` holds), and
only what its image predictor runs is kept: the image encoder, the prompt encoder, the mask decoder (with
its high-resolution feature convs ``conv_s0``/``conv_s1``) and ``no_mem_embed``, which image mode adds to the
lowest-resolution map. The memory modules (memory attention and encoder, object pointers, memory position
tables) are dropped; :attr:`Sam2Segmenter.memory_keys` holds their exact key set, which an official
``sam2.1_hiera_*.pt`` file (``{"model": state_dict}``) must carry and which loading discards.

Input: any positive multiple of 32 px (stride-4 patches pooled three times; the 8 x 8 window position table
tiles the stride-4 grid), ImageNet mean/std. Hiera interpolates its background position table to the token
grid in every forward pass, so no checkpoint tensor depends on the input size and smaller sizes load
unchanged. Embedding ``(B, 256, S/16, S/16)`` plus maps ``(B, 32, S/4, S/4)`` and ``(B, 64, S/8, S/8)``.

Module names (for ``adapters`` in the model config): ``image_encoder.trunk.blocks.N.attn.qkv``,
``attn.proj``, ``mlp.layers.0``, ``mlp.layers.1`` (Linear); FPN ``image_encoder.neck.convs.N.conv``
(1 x 1 Conv2d).
"""

from __future__ import annotations

import importlib.resources
import logging
import re
from pathlib import Path

import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from salt.model.backbones.base import Backbone, BackboneError, GroupFn, module_parameters
from salt.model.checkpoint import CheckpointError
from salt.model.normalize import SAM_PIXEL_MEAN, SAM_PIXEL_STD, MeanStdNormalize
from salt.model.segmenter import SamSegmenter

log = logging.getLogger(__name__)

# Variant -> the package's SAM 2.1 config file.
CONFIGS = {
    "hiera_t": "sam2.1_hiera_t.yaml",
    "hiera_s": "sam2.1_hiera_s.yaml",
    "hiera_b+": "sam2.1_hiera_b+.yaml",
    "hiera_l": "sam2.1_hiera_l.yaml",
}
CHECKPOINT_IMG_SIZE = 1024
SIZE_MULTIPLE = 32
# Official names of the kept modules -> their names in the segmenter.
RENAMES = {"sam_prompt_encoder.": "prompt_encoder.", "sam_mask_decoder.": "mask_decoder."}
KEPT = ("image_encoder", "sam_prompt_encoder", "sam_mask_decoder", "no_mem_embed")
_TRUNK_BLOCK = re.compile(r"image_encoder\.trunk\.blocks\.(\d+)\.")
_PATCH_KEY = "image_encoder.trunk.patch_embed.proj.weight"


def import_sam2() -> None:
    """Import the ``sam2`` package, leaving Hydra's global state as it was."""
    # Importing `sam2` initialises Hydra's global state with the package's own configs when nothing has
    # yet; that would make this project's later Hydra calls fail, so the state is put back as it was.
    was_initialized = GlobalHydra.instance().is_initialized()
    import sam2  # noqa: F401

    if not was_initialized and GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()


def config_path(variant: str) -> Path:
    """The installed package's config file of ``variant`` (read in place)."""
    import_sam2()
    return Path(str(importlib.resources.files("sam2").joinpath("configs", "sam2.1", CONFIGS[variant])))


def model_config(variant: str, img_size: int) -> DictConfig:
    """The package's ``model`` config of ``variant`` (a ``SAM2Base`` to instantiate) at input side ``img_size``."""
    cfg = OmegaConf.load(config_path(variant)).model
    cfg.image_size = img_size
    return cfg


def trunk_shape(variant: str) -> tuple[int, int]:
    """``(embed_dim, number of blocks)`` of the variant's Hiera trunk, from the package's config."""
    trunk = OmegaConf.load(config_path(variant)).model.image_encoder.trunk
    return int(trunk.embed_dim), int(sum(trunk.stages))


def detect_variant(state_dict: dict[str, torch.Tensor]) -> str | None:
    """The variant whose Hiera width and depth match ``state_dict`` (official key names), or None."""
    weight = state_dict.get(_PATCH_KEY)
    if weight is None:
        return None
    depth = len({int(m.group(1)) for k in state_dict if (m := _TRUNK_BLOCK.match(k))})
    for variant in CONFIGS:
        if trunk_shape(variant) == (weight.shape[0], depth):
            return variant
    return None


class Sam2Segmenter(SamSegmenter):
    """:class:`SamSegmenter` over SAM2's image path, as ``sam2.SAM2ImagePredictor`` runs it.

    Encode::

        fpn     = image_encoder(normalize(images))["backbone_fpn"]     3 maps, strides 4, 8, 16
        emb     = fpn[2] + no_mem_embed                                 (B, 256, S/16, S/16)
        maps    = [conv_s0(fpn[0]), conv_s1(fpn[1])]                    (B, 32, S/4, S/4), (B, 64, S/8, S/8)

    A box is two points labelled 2 and 3 plus the padding point, as the predictor passes it; the decoder
    runs in single-mask mode with the image's maps (``high_res_features``). Its eval-time switch to the most
    stable multimask output (``build_sam2(apply_postprocessing=True)``) stays off, as the package's config
    leaves it: training never takes it, so evaluation scores the output that was trained.

    Attributes:
        no_mem_embed: ``(1, 1, 256)`` learned vector added to the embedding in image mode.
        memory_keys: the official state-dict keys of the modules not kept (memory attention and encoder ...).
    """

    def __init__(
        self, *args: object, no_mem_embed: nn.Parameter, memory_keys: frozenset[str], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)
        self.no_mem_embed = no_mem_embed
        self.memory_keys = memory_keys

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``images (B, 3, S, S)`` in [0, 255] -> ``(embedding (B, 256, S/16, S/16), [map_s4, map_s8])``."""
        self.check_images(images)
        fpn = self.image_encoder(self.normalizer(images))["backbone_fpn"]
        maps = [self.mask_decoder.conv_s0(fpn[0]), self.mask_decoder.conv_s1(fpn[1])]
        embedding = fpn[2] + self.no_mem_embed.reshape(1, -1, 1, 1)  # (B, 256, S/16, S/16)
        return embedding, maps

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """Sparse tokens ``(C, 3, D)`` of boxes ``(C, 4)``: corners labelled 2 and 3, then the padding point."""
        corners = boxes.reshape(-1, 2, 2)  # (C, 2, 2)
        labels = torch.tensor([[2, 3]], dtype=torch.int, device=boxes.device).expand(corners.shape[0], 2)
        sparse, _ = self.prompt_encoder(points=(corners, labels), boxes=None, masks=None)
        return sparse

    def decoder_options(self, high_res: list[torch.Tensor]) -> dict:
        """SAM2's decoder takes the image's maps, and repeats the one image over the prompts when told to."""
        return {"repeat_image": True, "high_res_features": high_res}


class Sam2(Backbone):
    """SAM 2.1 Hiera-T/S/B+/L in image mode: any multiple of 32 px, ImageNet mean/std."""

    name = "sam2"
    variants = tuple(CONFIGS)
    norm_types = (nn.LayerNorm,)

    def default_img_size(self, variant: str) -> int:
        return CHECKPOINT_IMG_SIZE

    def check_img_size(self, img_size: int) -> None:
        if img_size <= 0 or img_size % SIZE_MULTIPLE:
            raise BackboneError(f"img_size={img_size}: SAM2 takes a positive multiple of {SIZE_MULTIPLE} px")

    def build(self, variant: str, img_size: int, num_classes: int) -> SamSegmenter:
        import_sam2()
        try:
            base = instantiate(model_config(variant, img_size), _recursive_=True)
        except InstantiationException as exc:
            # Hydra wraps what the package's constructors raise (a RuntimeError on the meta device ...);
            # callers get that error itself.
            raise (exc.__cause__ or exc) from None
        memory_keys = frozenset(k for k in base.state_dict() if k.split(".")[0] not in KEPT)
        return Sam2Segmenter(
            base.image_encoder,
            base.sam_prompt_encoder,
            base.sam_mask_decoder,
            img_size=img_size,
            # SAM2Transforms' ImageNet mean/std of [0, 1] images are SAM's pixel statistics divided by 255.
            normalizer=MeanStdNormalize(SAM_PIXEL_MEAN, SAM_PIXEL_STD),
            backbone=self.name,
            num_classes=num_classes,
            no_mem_embed=base.no_mem_embed,
            memory_keys=memory_keys,
        )

    def groups(self) -> dict[str, GroupFn]:
        """As every family, with ``no_mem_embed`` in ``encoder`` and Hiera's two position tables as ``pos_embed``."""
        return {
            **super().groups(),
            "encoder": lambda m: [*module_parameters(m, "image_encoder"), "no_mem_embed"],
            "pos_embed": lambda m: ["image_encoder.trunk.pos_embed", "image_encoder.trunk.pos_embed_window"],
        }

    def load(self, model: SamSegmenter, checkpoint: str | Path, variant: str) -> None:
        state_dict = self.read(checkpoint)
        found = detect_variant(state_dict)
        if found is None:
            kind = "a SAM ViT" if "image_encoder.patch_embed.proj.weight" in state_dict else "no Hiera"
            raise CheckpointError(f"{checkpoint}: not a SAM2 checkpoint ({kind} image encoder inside)")
        if found != variant:
            raise CheckpointError(
                f"{checkpoint}: this is a SAM2 {found} checkpoint, but variant {variant!r} was requested"
            )
        present = {k for k in state_dict if k.split(".")[0] not in KEPT}
        if present != model.memory_keys:
            raise CheckpointError(
                f"{checkpoint}: the memory-module keys do not match SAM 2.1 {variant} "
                f"(missing {sorted(model.memory_keys - present)[:3]}, unexpected {sorted(present - model.memory_keys)[:3]})"
            )
        renamed = {}
        for key, value in state_dict.items():
            if key in present:
                continue
            for old, new in RENAMES.items():
                if key.startswith(old):
                    key = new + key[len(old) :]
            renamed[key] = value
        self.load_exact(model, renamed, checkpoint)
        log.info(
            "loaded SAM 2.1 %s checkpoint %s (%d memory-module keys dropped)",
            variant,
            checkpoint,
            len(present),
        )
