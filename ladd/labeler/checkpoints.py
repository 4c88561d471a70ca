"""A labeler's checkpoints: what each says about itself (LabelerMeta), finding, reading and loading
them, and a user's own torchvision network imported as one."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from ladd.data.imageset import SourceInfo
from ladd.device import resolve_device
from ladd.files import check_output, claim_output, save_tensors
from ladd.labeler.config import (
    _CKPT_RE,
    LABELER_FORMAT,
)
from ladd.models import create_for_state


@dataclass(frozen=True)
class LabelerMeta:
    """What a labeler checkpoint says about itself."""

    arch: str
    spec: dict[str, Any]  # ModelSpec.to_dict()
    source: str
    epoch: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    seed: int
    test_accuracy: float
    image_size: int
    zca_space: bool = False  # trained on ZCA-whitened images (a set's `zca` is the ZCA itself)
    train_accuracy: float | None = None
    train_flops: float = 0.0  # cumulative training FLOPs up to this epoch
    seconds: float = 0.0  # cumulative training wall time up to this epoch
    config: dict[str, Any] = field(default_factory=dict)
    format: str = LABELER_FORMAT

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d["class_names"] = list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelerMeta:
        d = dict(d)
        if "zca" in d and "zca_space" not in d:  # checkpoints written before the rename
            d["zca_space"] = bool(d.pop("zca"))
        for k in ("mean", "std", "class_names"):
            d[k] = tuple(d[k])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def name(self) -> str:
        return f"{self.arch}@{self.source}/epoch{self.epoch}"


@dataclass
class Labeler:
    """A loaded labeler: the model (eval mode) and what its checkpoint says."""

    model: nn.Module
    meta: LabelerMeta
    path: Path | None = None


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:03d}.safetensors"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Labeler checkpoints of a folder, by epoch."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _CKPT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def read_meta(path: str | Path) -> LabelerMeta:
    """The LabelerMeta of a checkpoint, without loading weights."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors raises several types for a bad file
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    if "ladd_labeler" not in meta:
        raise ValueError(f"{path}: not a LADD labeler checkpoint (no 'ladd_labeler' metadata)")
    return LabelerMeta.from_dict(json.loads(meta["ladd_labeler"]))


def load_labeler(path: str | Path, device: str | torch.device = "cpu") -> Labeler:
    """Load a labeler checkpoint (a file, or a folder: its epoch-10 checkpoint, else the first)."""
    path = Path(path)
    if path.is_dir():
        ckpts = list_checkpoints(path)
        if not ckpts:
            raise ValueError(f"{path}: no labeler checkpoints (epoch_NNN.safetensors) in it")
        ten = [p for p in ckpts if p.name == checkpoint_name(10)]
        path = ten[0] if ten else ckpts[0]
    if not path.is_file():
        raise FileNotFoundError(f"labeler checkpoint {path} does not exist")
    meta = read_meta(path)
    with safe_open(str(path), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("_")}  # noqa: SIM118
    # the spec is checked against the file's weights before the model is built (a spec that
    # claims 10^9 classes beside a few KB of weights is refused, not allocated)
    model = create_for_state(meta.spec, {k: tuple(v.shape) for k, v in state.items()}, str(path))
    model.load_state_dict(state)
    return Labeler(model.to(resolve_device(device)).eval(), meta, path)


def import_labeler(
    arch: str,
    checkpoint: str | Path,
    info: SourceInfo,
    out: str | Path,
    *,
    image_size: int | None = None,
    force: bool = False,
) -> Path:
    """A user's own trained torchvision network as a LADD labeler checkpoint at `out`, so that
    a user with a trained network labels with it instead of training a labeler. An existing
    `out` is replaced only with `force` (ladd.files.claim_output: never the checkpoint read,
    never a workspace's own files).

    `checkpoint` is read by ladd.models.tv.load_torchvision_checkpoint (torch.load with
    weights_only=True; a bare state_dict or one under "state_dict"/"model", "module." removed)
    into torchvision model `arch` ("tv_resnet18", ...) with the classes of `info`, the source
    whose images it was trained on (its normalisation and class names go into the labeler's
    metadata). The labeler records epoch 0, source `info.name` and an unmeasured test accuracy
    (NaN): it was not trained here.
    """
    from ladd.models.tv import load_torchvision_checkpoint

    size = int(image_size or info.image_size)
    model = load_torchvision_checkpoint(arch, checkpoint, info.num_classes, size)
    check_output(out, inputs=(checkpoint,), force=force)
    meta = LabelerMeta(
        arch=arch,
        spec=model.spec.to_dict(),
        source=info.name,
        epoch=0,
        mean=tuple(info.mean),
        std=tuple(info.std),
        class_names=tuple(info.class_names),
        seed=0,
        test_accuracy=float("nan"),
        image_size=size,
        config={"imported_from": str(Path(checkpoint).resolve())},
    )
    tensors = dict(model.state_dict())
    with claim_output(out, inputs=(checkpoint,), force=force):
        return save_tensors(
            out, tensors, {"ladd_labeler": json.dumps(meta.to_dict()), "format": LABELER_FORMAT}
        )
