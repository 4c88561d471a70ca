"""Class activation maps (GradCAM, GradCAM++, EigenCAM) for any registered model.

The maps come from pytorch-grad-cam, imported only inside the functions that need it: the core
imports and runs without it. The target layer and any token reshape come from the model itself
(`ladd.models.cam_target`), so each architecture says where it should be explained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ladd.models import cam_target

# Method name -> class name in pytorch_grad_cam.
CAM_METHODS: dict[str, str] = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "eigencam": "EigenCAM",
}
CAM_LABELS: dict[str, str] = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAM++",
    "eigencam": "EigenCAM",
}


@dataclass(frozen=True)
class CamResult:
    """Maps of one batch, with what the model predicted for each image."""

    maps: np.ndarray  # (B, H, W) float32 in [0, 1], at the input size
    predicted: np.ndarray  # (B,) int64, the model's top class
    probability: np.ndarray  # (B,) float32, softmax probability of the predicted class
    targets: np.ndarray  # (B,) int64, the class each map explains
    method: str


def _cam_class(method: str):
    key = method.strip().lower()
    if key not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(CAM_METHODS)}")
    try:
        import pytorch_grad_cam
    except ImportError as err:  # the app extra is not installed
        raise ImportError(
            "CAMs need the grad-cam package: pip install grad-cam (the 'app' extra)"
        ) from err
    return getattr(pytorch_grad_cam, CAM_METHODS[key])


def _as_targets(targets, batch: int, predicted: torch.Tensor) -> torch.Tensor:
    if targets is None:
        return predicted.clone()
    if isinstance(targets, int):
        return torch.full((batch,), int(targets), dtype=torch.int64)
    t = torch.as_tensor(targets, dtype=torch.int64).flatten().cpu()
    if t.numel() == 1:
        return t.expand(batch).clone()
    if t.numel() != batch:
        raise ValueError(f"{t.numel()} CAM targets for {batch} images: give one per image")
    return t


def explain(
    model: nn.Module,
    images: torch.Tensor,
    targets: int | list[int] | torch.Tensor | None = None,
    method: str = "gradcam",
) -> CamResult:
    """CAMs of `images` (B, C, H, W), normalised as the model expects, on the model's device.

    `targets`: the class to explain for every image (an int), one per image, or None for each
    image's predicted class. The model is put in eval mode (as the CAM library does).
    """
    if images.dim() != 4:
        raise ValueError(f"expected images (B, C, H, W), got {tuple(images.shape)}")
    cam_cls = _cam_class(method)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    device = next(model.parameters()).device
    x = images.to(device=device, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(x).float(), dim=1)  # (B, K)
    prob, pred = probs.max(dim=1)
    tgt = _as_targets(targets, x.shape[0], pred.cpu())
    if int(tgt.min()) < 0 or int(tgt.max()) >= probs.shape[1]:
        raise ValueError(f"CAM target out of range for a {probs.shape[1]}-class model")

    layer, reshape = cam_target(model)
    # One target per image: a single target would explain only the first image.
    wanted = [ClassifierOutputTarget(int(c)) for c in tgt]
    with (
        torch.enable_grad(),
        cam_cls(model=model, target_layers=[layer], reshape_transform=reshape) as cam,
    ):
        maps = cam(input_tensor=x, targets=wanted)  # (B, H, W) float32
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32)).clip(0.0, 1.0)
    return CamResult(
        maps=maps,
        predicted=pred.cpu().numpy().astype(np.int64),
        probability=prob.cpu().numpy().astype(np.float32),
        targets=tgt.numpy().astype(np.int64),
        method=method.strip().lower(),
    )


def compute_cam(
    model: nn.Module,
    images: torch.Tensor,
    targets: int | list[int] | torch.Tensor | None = None,
    method: str = "gradcam",
) -> np.ndarray:
    """Just the maps of `explain`: float32 (B, H, W) in [0, 1]."""
    return explain(model, images, targets, method).maps


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a [0, 1] map over an image: (H, W, 3) float in [0, 1] or uint8 -> (H, W, 3) uint8.

    A small jet-like colour ramp written here, so overlays need neither OpenCV nor matplotlib.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.max(initial=0.0) > 1.0:
        img = img / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    m = np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
    if m.shape != img.shape[:2]:
        raise ValueError(f"mask {m.shape} does not match image {img.shape[:2]}")
    # Jet: blue -> cyan -> yellow -> red, piecewise linear in m.
    r = np.clip(1.5 - np.abs(4.0 * m - 3.0), 0.0, 1.0)
    g = np.clip(1.5 - np.abs(4.0 * m - 2.0), 0.0, 1.0)
    b = np.clip(1.5 - np.abs(4.0 * m - 1.0), 0.0, 1.0)
    heat = np.stack([r, g, b], axis=-1)
    out = (1.0 - alpha) * np.clip(img, 0.0, 1.0) + alpha * heat
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
