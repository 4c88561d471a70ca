"""Training a labeler from tensors in memory: no workspace, no folder, no checkpoint files.

The labeler g of LADD (Kang, Lim et al., WACV 2025, arXiv 2409.16239, section 3.2) is a small
classifier trained briefly on the real data. `fit_labeler` trains one on (images, labels) with
one of ladd.labeler's recipes and returns the model; ladd.labeler.train_labeler is the
checkpointing, resumable form the command line uses.

Recipes (ladd.labeler.LABELER_RECIPES):
- "mtt" (the command line's default; the paper trains "following" MTT's `buffer.py`): SGD lr
  0.01, momentum 0, weight decay 0, batch 256, DSA. Made for the whole train split and 10+
  epochs: on a few hundred images it learns nothing (500 shapes images, 2 epochs: 2 SGD steps,
  11 % on the test images, chance 10 %).
- "strong" (momentum 0.9, weight decay 5e-4, random flips and padded crops): the recipe for a
  quick labeler from a small subset. With the dashboard demo's batch 32 and lr 0.02 on the same
  500 images (ConvNet-D3, width 32): 22 % after 2 epochs, 36 % after 5 (tests/test_api.py
  checks the first); the demo's 5,000 images give 98 % in 2 epochs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["fit_labeler"]


def fit_labeler(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int | None = None,
    *,
    model: nn.Module | str | None = None,
    recipe: str = "mtt",
    epochs: int = 10,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    **model_options: Any,
) -> nn.Module:
    """A labeler trained on `images` (N, C, H, W), normalised, and `labels` (N,); returned in
    eval mode on `images`' device, where it is trained.

    `model`: a module to train, or a registered name (ladd.create_model; default the field's
    distillation architecture, ConvNet-D3 up to 64 px, ConvNet-D5 above), built with
    `model_options` (e.g. width=32) and `seed`. `recipe`: "mtt" or "strong" (see the module's
    docstring: "strong", batch_size=32, lr=0.02 for a few hundred images and a few epochs);
    `batch_size` and `lr` override the recipe's. Shuffling and augmentation draw from a generator seeded with `seed`.

    Examples:
        >>> import torch
        >>> from ladd import fit_labeler
        >>> from ladd.data import load_source
        >>> train = load_source("shapes", "train", limit_per_class=30, seed=0)
        >>> x = train.normalised()
        >>> labeler = fit_labeler(x, train.labels, 10, recipe="strong", epochs=3, batch_size=32,
        ...                       width=16)
        >>> (labeler(x).argmax(1) == train.labels).float().mean().item() > 0.2  # chance is 0.1
        True
    """
    from ladd.dsa import DSAConfig, dsa
    from ladd.labeler import LABELER_RECIPES, LabelerConfig, random_flip_crop
    from ladd.models import create_model
    from ladd.training import distillation_arch

    if recipe not in LABELER_RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; use one of {', '.join(LABELER_RECIPES)}")
    if images.dim() != 4 or labels.shape != (images.shape[0],):
        raise ValueError(
            f"expected images (N, C, H, W) and labels (N,), got {tuple(images.shape)} and "
            f"{tuple(labels.shape)}"
        )
    overrides: dict[str, Any] = {"epochs": epochs, "seed": seed}
    if batch_size is not None:
        overrides["batch_size"] = batch_size
    if lr is not None:
        overrides["lr"] = lr
    cfg = LabelerConfig.recipe(recipe, **overrides)
    k = int(num_classes) if num_classes is not None else int(labels.max()) + 1
    dev = images.device
    if model is None or isinstance(model, str):
        name = model or distillation_arch(int(images.shape[-1]))
        model = create_model(
            name, k, int(images.shape[-1]), int(images.shape[1]), seed=seed, **model_options
        )
    elif model_options:
        raise ValueError("model options build a model by name; this model is built already")
    model = model.to(dev).train()
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    g = torch.Generator().manual_seed(seed)
    x_all, y_all = images.float(), labels.to(dev).long()
    for _ in range(cfg.epochs):
        order = torch.randperm(x_all.shape[0], generator=g).to(dev)
        for i in range(0, x_all.shape[0], cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            x = x_all[idx]
            if cfg.image_augmentation == "dsa":
                x = dsa(x, g, DSAConfig())
            elif cfg.image_augmentation == "flip_crop":
                x = random_flip_crop(x, g, cfg.pad)
            loss = F.cross_entropy(model(x), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()
