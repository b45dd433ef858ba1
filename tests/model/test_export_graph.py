"""The batched class-prompt decoder of exported models against SamSegmenter's image-by-image decoding."""

from __future__ import annotations

import torch

from salt.export.graph import ExportedSegmenter, class_prompt_logits
from salt.model import build_sam


def test_batched_decoding_equals_the_segmenter_per_image() -> None:
    torch.manual_seed(0)
    model = build_sam("tiny", img_size=64, num_classes=3).eval()
    images = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 255
    with torch.no_grad():
        embeddings = model.encode(images)  # (4, D, 4, 4)
        batched = class_prompt_logits(model, embeddings)
        per_image = model.decode(embeddings)  # (4, 3, 16, 16)
        logits, probabilities = ExportedSegmenter(model)(images)
        reference = model(images)
    assert batched.shape == per_image.shape == (4, 3, 16, 16)
    torch.testing.assert_close(batched, per_image, rtol=0, atol=1e-5)
    torch.testing.assert_close(logits, reference, rtol=0, atol=1e-5)
    torch.testing.assert_close(probabilities, torch.sigmoid(reference), rtol=0, atol=1e-6)
