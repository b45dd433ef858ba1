"""SAM as a semantic segmenter: one learned prompt token per foreground class and/or box and point prompts,
for any SAM-family encoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segment_anything.modeling import MaskDecoder, PromptEncoder
from torch import nn

EMPTY_LOGIT = -30.0  # the logit of a class that got no prompt (sigmoid ~ 1e-13): predicted absent

# What an encoder gives the decoder: the embedding (B, D, h, w), or it with high-resolution maps (SAM2).
Features = torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]


class SamSegmenter(nn.Module):
    """An image encoder + SAM's mask decoder driven by learned class prompts, boxes or points.

    The paper feeds the class name through CLIP's text encoder and a projection into one sparse prompt
    token; the text never changes, so that token is one learned vector per class (``class_tokens``). The
    dense prompt is SAM's "no mask" embedding and the decoder runs in single-mask mode.

    ``prompt_mode`` (:data:`salt.data.prompts.PROMPT_MODES`) says what the sparse prompt of a class is:
    ``class`` the class token (the paper); ``box`` / ``point`` one box or a set of points through SAM's own
    prompt encoder, as MedSAM and SAM do; ``class+box`` / ``class+point`` the class token followed by
    them. In every mode but ``class`` a class without its box or points (absent from the image) is not
    decoded: its logits are ``EMPTY_LOGIT``, predicted absent, as training taught (a box or points are drawn
    from the ground truth, so a class gets none exactly where it is absent). The tokens of a missing box are
    two ``not_a_point`` tokens, SAM's own padding; missing points are label -1, which the prompt encoder maps
    to ``not_a_point`` as well.

    Any encoder that maps normalised images ``(B, 3, S, S)`` to an embedding ``(B, D, h, w)`` with ``D`` the
    prompt encoder's width and ``(h, w)`` its ``image_embedding_size`` fits (SAM's ViT, LiteMedSAM's TinyViT);
    a family whose decoder also takes high-resolution maps (SAM2) overrides :meth:`encode`, :meth:`embed_boxes`
    and :meth:`decoder_options`.
    The backbone family (``salt.model.backbones``) builds it and says how images are normalised and which
    module types keep their running statistics frozen while training (``frozen_stat_types``, BatchNorm).

    Forward::

        images (B, 3, S, S) in [0, 255] RGB, S = img_size
        x      = normalizer(images)                                  (B, 3, S, S)
        emb    = image_encoder(x)                                    (B, D, h, w)
        low[b] = mask_decoder(emb[b], pe, class_tokens, no_mask)     (C, 1, 4h, 4w) for every image b
        logits = bilinear_upsample(low, (S, S))                      (B, C, S, S)

    Prompts (model-input pixel coordinates, x = column): ``box (B, C, 4)`` as ``x0, y0, x1, y1`` with
    ``box_valid (B, C)``; ``points (B, C, P, 2)`` as ``x, y`` with ``point_labels (B, C, P)`` (1 positive,
    0 negative, -1 none).

    Attributes:
        image_encoder, prompt_encoder, mask_decoder: the encoder, and ``segment_anything``'s prompt encoder
            and mask decoder.
        normalizer: module mapping images in [0, 255] to the encoder's input range.
        class_tokens: ``(num_classes, D)`` learned sparse prompt tokens.
        backbone: name of the family in ``salt.model.backbones.BACKBONES``.
    """

    def __init__(
        self,
        image_encoder: nn.Module,
        prompt_encoder: PromptEncoder,
        mask_decoder: MaskDecoder,
        *,
        img_size: int,
        normalizer: nn.Module,
        backbone: str,
        num_classes: int = 1,
        frozen_stat_types: tuple[type[nn.Module], ...] = (),
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.normalizer = normalizer
        self.num_classes = num_classes
        self.img_size = img_size
        self.backbone = backbone
        self.frozen_stat_types = frozen_stat_types
        self.prompt_mode = "class"
        dim = prompt_encoder.embed_dim
        # Small random init: distinct classes start apart, and a near-zero token starts SAM near its
        # "no prompt" behaviour.
        self.class_tokens = nn.Parameter(torch.randn(num_classes, dim) * 0.02)
        # Lightning restores each module's `training` flag directly instead of calling train(), so the frozen
        # statistics must already be in eval mode in the flags it captures: set them from the start.
        self.train()

    def extra_state_keys(self) -> list[str]:
        """State-dict keys this class adds to the backbone's own (absent from official checkpoints)."""
        return ["class_tokens"]

    def set_prompt_mode(self, mode: str) -> None:
        """Choose what prompts a class: ``class``, ``box``, ``point``, ``class+box`` or ``class+point``."""
        from salt.data.prompts import prompt_kinds

        prompt_kinds(mode)  # raises on an unknown mode
        self.prompt_mode = mode

    def prompt_parameter_names(self) -> list[str]:
        """The parameters the prompt mode trains: the class tokens, and SAM's point/box embeddings it uses."""
        from salt.data.prompts import prompt_kinds

        uses_class, kind = prompt_kinds(self.prompt_mode)
        names = ["class_tokens"] if uses_class else []
        if kind == "box":
            names += ["prompt_encoder.point_embeddings.2.weight", "prompt_encoder.point_embeddings.3.weight"]
        if kind == "point":
            names += ["prompt_encoder.point_embeddings.0.weight", "prompt_encoder.point_embeddings.1.weight"]
        if kind is not None:
            names.append("prompt_encoder.not_a_point_embed.weight")
        return names

    def train(self, mode: bool = True) -> SamSegmenter:
        """Set training mode, except for ``frozen_stat_types`` modules, which stay in eval mode.

        BatchNorm statistics learned on a large corpus would be overwritten by those of a few small batches.
        """
        super().train(mode)
        if mode and self.frozen_stat_types:
            for module in self.modules():
                if isinstance(module, self.frozen_stat_types):
                    module.eval()
        return self

    def check_images(self, images: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``images`` is ``(B, 3, S, S)`` with ``S = img_size``."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f"expected images of shape (B, 3, {self.img_size}, {self.img_size}), got {tuple(images.shape)}"
            )

    def encode(self, images: torch.Tensor) -> Features:
        """Normalise and encode ``images (B, 3, S, S)`` in [0, 255] to embeddings ``(B, D, h, w)``.

        An encoder with high-resolution feature inputs to its decoder (SAM2) returns ``(embedding, maps)``
        instead, ``maps`` a list of ``(B, D_i, h_i, w_i)`` tensors; :meth:`decode` takes either form.
        """
        self.check_images(images)
        return self.image_encoder(self.normalizer(images))

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """Sparse tokens ``(C, 2, D)`` of boxes ``(C, 4)`` (``x0, y0, x1, y1``), as SAM's predictor embeds them."""
        sparse, _ = self.prompt_encoder(points=None, boxes=boxes, masks=None)
        return sparse

    def decoder_options(self, high_res: list[torch.Tensor]) -> dict:
        """Keyword arguments of this family's mask decoder beyond SAM's (none); ``high_res`` as for
        :meth:`mask_logits`."""
        return {}

    def mask_logits(
        self,
        embedding: torch.Tensor,
        high_res: list[torch.Tensor],
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
    ) -> torch.Tensor:
        """The decoder's single-mask logits ``(C', 1, 4h, 4w)`` for one image and ``C'`` prompts.

        ``embedding (1, D, h, w)``, ``high_res`` that image's high-resolution maps (empty for SAM),
        ``image_pe (1, D, h, w)``, ``sparse (C', T, D)``, ``dense (C', D, h, w)``. The decoder's first output
        is the mask logits (SAM returns them with the IoU predictions, SAM2 with more).
        """
        outputs = self.mask_decoder(
            image_embeddings=embedding,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
            **self.decoder_options(high_res),
        )
        return outputs[0]

    def _sparse(self, prompts: dict | None, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse prompt tokens ``(C, T, D)`` of image ``b`` and which classes got a prompt ``(C,)``."""
        from salt.data.prompts import prompt_kinds

        uses_class, kind = prompt_kinds(self.prompt_mode)
        num_classes = self.class_tokens.shape[0]
        present = torch.ones(num_classes, dtype=torch.bool, device=self.class_tokens.device)
        parts = [self.class_tokens.unsqueeze(1)] if uses_class else []  # (C, 1, D)
        if kind is not None:
            if (
                prompts is None
                or (kind == "box" and "box" not in prompts)
                or (kind == "point" and "points" not in prompts)
            ):
                raise ValueError(f"prompt mode {self.prompt_mode!r} needs {kind} prompts, none were given")
            if kind == "box":
                sparse = self.embed_boxes(prompts["box"][b].float())  # (C, T, D)
                present = prompts["box_valid"][b].bool()
                pad = self.prompt_encoder.not_a_point_embed.weight.expand_as(sparse)
                sparse = torch.where(present[:, None, None], sparse, pad)
            else:
                labels = prompts["point_labels"][b]
                coords = prompts["points"][b].float()
                sparse, _ = self.prompt_encoder(
                    points=(coords, labels), boxes=None, masks=None
                )  # (C, P+1, D)
                present = (labels >= 0).any(-1)
            parts.append(sparse)
        return torch.cat(parts, dim=1), present

    def decode(self, features: Features, prompts: dict | None = None) -> torch.Tensor:
        """Low-resolution logits ``(B, C, 4h, 4w)`` from what :meth:`encode` returned and the prompts."""
        embeddings, high_res = features if isinstance(features, tuple) else (features, [])
        num_classes, dim = self.class_tokens.shape
        image_pe = self.prompt_encoder.get_dense_pe()  # (1, D, h, w)
        no_mask = self.prompt_encoder.no_mask_embed.weight.reshape(1, dim, 1, 1)
        masks = []
        # SAM's decoder pairs one image with a batch of prompts, so the classes form the prompt batch.
        for b, emb in enumerate(embeddings):
            sparse, present = self._sparse(prompts, b)  # (C, T, D), (C,)
            size = (4 * emb.shape[-2], 4 * emb.shape[-1])
            out = emb.new_full((num_classes, *size), EMPTY_LOGIT)  # (C, 4h, 4w)
            if present.any():
                chosen = sparse[present] if not present.all() else sparse  # (C', T, D)
                low = self.mask_logits(
                    emb.unsqueeze(0),  # (1, D, h, w)
                    [level[b : b + 1] for level in high_res],
                    image_pe,
                    chosen,
                    no_mask.expand(chosen.shape[0], dim, *emb.shape[-2:]),
                )  # (C', 1, 4h, 4w)
                out = low[:, 0] if present.all() else out.index_put((present.nonzero()[:, 0],), low[:, 0])
            masks.append(out)
        return torch.stack(masks)  # (B, C, 4h, 4w)

    def forward(self, images: torch.Tensor, prompts: dict | None = None) -> torch.Tensor:
        """Segment ``images (B, 3, S, S)`` float in [0, 255] RGB into logits ``(B, num_classes, S, S)``.

        ``prompts`` holds the box or point tensors the prompt mode needs (class docstring); None for ``class``.
        """
        low = self.decode(self.encode(images), prompts)
        return F.interpolate(low, size=images.shape[-2:], mode="bilinear", align_corners=False)
