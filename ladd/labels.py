"""Dense labels from any classifier, and the input-space check, on plain tensors.

`dense_labels` is Algorithm 1 of LADD (Kang, Lim et al., WACV 2025, arXiv 2409.16239): the
labeler's softmax on every static crop of every image. `check_input_space` catches the mistake
that silently ruins every label: images and labeler in different input spaces (another
normalisation, raw [0, 1] pixels given to a labeler trained on normalised ones, ZCA on one side).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ladd.limits import Limits

__all__ = ["InputSpaceError", "check_input_space", "dense_labels"]


def dense_labels(
    model: nn.Module,
    images: torch.Tensor,
    n: int = 5,
    r: float = 0.625,
    *,
    temperature: float = 1.0,
    batch_size: int | None = None,
    codec: Any = None,
    precision: str = "fp32",
    limits: Limits | None = None,
) -> Any:
    """softmax(model(S_j(x_i)) / T) for every image and crop: (M, N*N, K) float32, on `images`'
    device; with `codec` (a spec such as "topk:3,uint8" or a ladd.codecs.Codec) a
    ladd.codecs.EncodedDense instead, encoded batch by batch (the float tensor is never built).

    `model`: any classifier (B, C, H, W) -> (B, K) logits, run in eval mode on the device of its
    parameters (its train/eval mode is restored after). `images` (M, C, H, W) must be in the
    model's input space (`check_input_space`). About `batch_size` crops per forward pass
    (default 256 on the CPU, 4096 on CUDA); precision "bf16" runs the forward under bf16
    autocast. `limits`: ladd.limits.Limits for the memory checked before allocating (None: the
    LADD_MAX_* environment caps).

    Examples:
        >>> import torch
        >>> from ladd import create_model, dense_labels
        >>> model = create_model("convnet_d3", num_classes=10, image_size=32, width=8)
        >>> labels = dense_labels(model, torch.randn(2, 3, 32, 32), n=5, r=0.625)
        >>> labels.shape, labels.device.type
        (torch.Size([2, 25, 10]), 'cpu')
        >>> torch.allclose(labels.sum(-1), torch.ones(2, 25))
        True
        >>> dense_labels(model, torch.randn(2, 3, 32, 32), codec="topk:3,uint8").shape
        torch.Size([2, 25, 10])
    """
    from ladd.dense import generate_dense_labels

    return generate_dense_labels(
        images,
        model,
        n,
        r,
        batch_size=batch_size,
        temperature=temperature,
        precision=precision,
        codec=codec,
        limits=limits,
    )


class InputSpaceError(ValueError):
    """Images and labeler (or student) do not share an input space; the message lists why.

    Examples:
        >>> import torch
        >>> from ladd import InputSpaceError, check_input_space
        >>> try:
        ...     check_input_space(torch.randn(2, 3, 8, 8), zca=True, labeler_zca=False)
        ... except InputSpaceError as err:
        ...     print(err)
        the images are in ZCA space but the labeler was trained without ZCA
    """


def _numbers(v: Sequence[float] | torch.Tensor | None) -> tuple[float, ...] | None:
    if v is None:
        return None
    return tuple(float(x) for x in (v.tolist() if isinstance(v, torch.Tensor) else v))


def check_input_space(
    images: torch.Tensor,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    *,
    labeler_mean: Sequence[float] | None = None,
    labeler_std: Sequence[float] | None = None,
    zca: bool = False,
    labeler_zca: bool = False,
    image_size: int | None = None,
    atol: float = 2e-3,
    strict: bool = True,
) -> list[str]:
    """The reasons `images` are not in the labeler's input space (empty when nothing is wrong);
    InputSpaceError listing them when `strict`.

    Two checks. The statistics: `mean`/`std` (what the images were normalised with) against
    `labeler_mean`/`labeler_std` (what the labeler was trained with), ZCA on both sides or
    neither, and the labeler's `image_size`. The pixels: normalised natural images have
    per-channel means near 0 and standard deviations near 1; images whose channels all lie in
    [0, 1] with a mean near 0.45 are raw pixels that were never normalised (the classic mistake
    that does not crash: every dense label comes out wrong). Distilled images drift, so the
    pixel check only flags a set that looks like raw pixels, and is skipped for ZCA images.

    Examples:
        >>> import torch
        >>> from ladd import check_input_space
        >>> cifar = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
        >>> x = torch.randn(8, 3, 32, 32)  # normalised images
        >>> check_input_space(x, *cifar, labeler_mean=cifar[0], labeler_std=cifar[1])
        []
        >>> raw = torch.rand(8, 3, 32, 32)  # [0, 1] pixels, never normalised
        >>> problems = check_input_space(raw, *cifar, labeler_mean=cifar[0], labeler_std=cifar[1],
        ...                              strict=False)
        >>> problems[0][:38]
        'the images look like raw [0, 1] pixels'
    """
    problems: list[str] = []
    if zca != labeler_zca:
        problems.append(
            f"the images are {'in' if zca else 'not in'} ZCA space but the labeler was trained "
            f"{'in' if labeler_zca else 'without'} ZCA"
        )
    for name, ours, theirs in (
        ("mean", _numbers(mean), _numbers(labeler_mean)),
        ("std", _numbers(std), _numbers(labeler_std)),
    ):
        if ours is None or theirs is None:
            continue
        if len(ours) != len(theirs) or any(
            abs(a - b) > atol for a, b in zip(ours, theirs, strict=True)
        ):
            problems.append(
                f"normalisation {name} differs: images {_fmt(ours)} vs labeler {_fmt(theirs)}"
            )
    if images.dim() != 4:
        raise ValueError(f"expected images (M, C, H, W), got shape {tuple(images.shape)}")
    if image_size is not None and int(images.shape[-1]) != int(image_size):
        problems.append(f"image size differs: images {images.shape[-1]} px vs labeler {image_size}")
    if not zca and images.numel():
        x = images.float()
        lo, hi = float(x.min()), float(x.max())
        channel_mean = x.mean(dim=(0, 2, 3))
        if lo >= 0.0 and hi <= 1.0 and bool((channel_mean - 0.45).abs().max() < 0.25):
            problems.append(
                "the images look like raw [0, 1] pixels (every value in [0, 1], channel means "
                f"{_fmt(channel_mean.tolist())}), not normalised images: normalise them with "
                "the labeler's mean and std"
            )
    if problems and strict:
        raise InputSpaceError("; ".join(problems))
    return problems


def _fmt(v: Sequence[float]) -> str:
    return "(" + ", ".join(f"{x:.4f}" for x in v) + ")"
