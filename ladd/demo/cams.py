"""Real test images for class activation maps: drawn once per (source, size), kept as uint8."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

# ---------------------------------------------------------------------------------------------
# Real test images for class activation maps


def _cam_file(ws: Any, source: str, image_size: int, per_class: int) -> Path:
    from ladd.pipeline import slug

    name = slug(source)
    return ws.root / "cam" / f"{name}_{image_size}px_{per_class}pc.safetensors"


def save_cam_inputs(images: Any, path: str | Path) -> Path:
    """Write an ImageSet (uint8 images, labels, its SourceInfo) to one safetensors file."""
    from ladd.files import save_tensors

    info = images.info
    meta = {
        "name": info.name,
        "class_names": list(info.class_names),
        "image_size": int(info.image_size),
        "mean": list(info.mean),
        "std": list(info.std),
        "channels": int(getattr(info, "channels", 3)),
        "split": images.split,
    }
    return save_tensors(
        path,
        {"images": images.images.to(torch.uint8), "labels": images.labels.long()},
        {"ladd_cam_inputs": json.dumps(meta)},
    )


def load_cam_inputs(path: str | Path) -> Any:
    """Read a file written by save_cam_inputs back as an ImageSet."""
    from safetensors import safe_open

    from ladd.data import ImageSet, SourceInfo

    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
        if "ladd_cam_inputs" not in raw:
            raise ValueError(f"{path}: not a CAM inputs file")
        images, labels = f.get_tensor("images"), f.get_tensor("labels")
    meta = json.loads(raw["ladd_cam_inputs"])
    info = SourceInfo(
        name=meta["name"],
        class_names=tuple(meta["class_names"]),
        image_size=int(meta["image_size"]),
        mean=tuple(meta["mean"]),
        std=tuple(meta["std"]),
        channels=int(meta.get("channels", 3)),
    )
    return ImageSet(images, labels, info, meta.get("split", "test"))


CAM_IMAGES = 4000  # real test images drawn for CAMs at most: ImageNet-1K's 1000 classes get 4


def cam_per_class(num_classes: int, most: int) -> int:
    """Test images a class drawn for CAMs: `most`, fewer where the classes are many (at most
    CAM_IMAGES in all, at least one a class). At 224 px 4,000 images are 600 MB of uint8, where
    20 a class of ImageNet-1K would be 3 GB to decode and keep."""
    return max(1, min(most, CAM_IMAGES // max(1, num_classes)))


def cam_inputs(
    workspace: Any, source: str, image_size: int | None = None, per_class: int = 4
) -> Any:
    """Real test images of a source for CAMs: the demo's file when there is one, else loaded
    from the source (and saved for next time): `per_class` a class, fewer for many classes
    (cam_per_class). A streamed source (imagenet1k) decodes only the images drawn."""
    from ladd.data import load_source, source_info
    from ladd.pipeline import slug
    from ladd.store import Workspace

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    name = slug(source)
    found = (
        sorted((ws.root / "cam").glob(f"{name}_*px_*pc.safetensors"))
        if (ws.root / "cam").is_dir()
        else []
    )
    if image_size is not None:
        found = [p for p in found if f"_{image_size}px_" in p.name]
    if found:  # the biggest pool there is: more images to pick from for a CAM grid
        return load_cam_inputs(max(found, key=_per_class_of))
    classes = source_info(source, image_size, cache_dir=ws.cache_dir).num_classes
    per_class = cam_per_class(classes, per_class)
    images = load_source(
        source,
        "test",
        image_size=image_size,
        cache_dir=ws.cache_dir,
        limit_per_class=per_class,
        seed=1,
    )
    save_cam_inputs(images, _cam_file(ws, source, int(images.images.shape[-1]), per_class))
    return images


def _per_class_of(path: Path) -> int:
    """The images per class in a CAM inputs file's name (`..._20pc.safetensors` -> 20)."""
    m = re.search(r"_(\d+)pc\.safetensors$", path.name)
    return int(m.group(1)) if m else 0
