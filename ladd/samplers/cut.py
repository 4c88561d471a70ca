"""Cutting any sampler's boxes out of a batch of images, each resized to the output size."""

from __future__ import annotations

import torch

from ladd.samplers.base import Box


def cut_boxes(images: torch.Tensor, boxes: list[Box], out_size: int | None = None) -> torch.Tensor:
    """(B, C, H, W) -> (B, J, C, out, out): crop j is boxes[j] resized (bilinear, antialiased
    when shrinking: ladd.subsample.resize). Boxes of one size are resized in one call."""
    from ladd.subsample import resize

    if images.dim() != 4:
        raise ValueError(f"expected images (B, C, H, W), got {tuple(images.shape)}")
    b, c, h, _ = images.shape
    out = h if out_size is None else int(out_size)
    x = images if images.is_floating_point() else images.float()
    result = x.new_empty(b, len(boxes), c, out, out)
    by_size: dict[tuple[int, int], list[int]] = {}
    for j, (_, _, bh, bw) in enumerate(boxes):
        by_size.setdefault((bh, bw), []).append(j)
    for (bh, bw), js in by_size.items():
        patches = torch.stack(
            [x[:, :, boxes[j][0] : boxes[j][0] + bh, boxes[j][1] : boxes[j][1] + bw] for j in js],
            dim=1,
        )  # (B, len(js), C, bh, bw)
        resized = resize(patches.reshape(b * len(js), c, bh, bw), out)
        result[:, js] = resized.reshape(b, len(js), c, out, out)
    return result
