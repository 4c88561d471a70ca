"""How a labeler is trained: LabelerConfig, its named recipes, the default architecture, and the
names its checkpoints carry."""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

from ladd.numbers import require_finite
from ladd.training import distillation_arch

LABELER_FORMAT = "ladd.labeler/1"
_OPTIM_PREFIX = "_optim."
_RNG_KEY = "_rng.train"
_LOADER_RNG_KEY = "_rng.loader"  # a training DataLoader's generator (training from a loader)
RESUME_FILE = ".resume.safetensors"  # the latest epoch's state between checkpoints (hidden)
_CKPT_RE = re.compile(r"^epoch_(\d+)\.safetensors$")
LABELER_FILES = ("epoch_*.safetensors", RESUME_FILE, ".*.tmp")  # what a labeler folder holds


def default_labeler_arch(image_size: int) -> str:
    """The labeler is the distillation architecture of the field (ladd.training)."""
    return distillation_arch(image_size)


AUGMENTS = ("dsa", "flip_crop", "none")
LABELER_RECIPES: dict[str, dict[str, Any]] = {
    "mtt": {
        "lr": 0.01,
        "momentum": 0.0,
        "weight_decay": 0.0,
        "image_augmentation": "dsa",
        "batch_size": 256,
    },
    "strong": {"momentum": 0.9, "weight_decay": 5e-4, "image_augmentation": "flip_crop"},
}


@dataclass(frozen=True)
class LabelerConfig:
    """How a labeler is trained (saved inside each of its checkpoints)."""

    arch: str | None = None  # None: default_labeler_arch(image size)
    epochs: int = 50
    save_at: tuple[int, ...] = (10, 20, 30, 40, 50)
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 256
    seed: int = 0
    # How the labeler's training *images* are augmented (not its labels): "dsa" | "flip_crop"
    # (random flip + crop after padding `pad`) | "none"
    image_augmentation: str = "dsa"
    pad: int = 4
    limit_per_class: int | None = None  # quick runs on a class-balanced subset of the train split
    image_size: int | None = None  # None: the source's native size
    model_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"width": 32}
    zca: bool = False  # train in ZCA space (for MTT/DATM sets on CIFAR)
    zca_eps: float = 0.1

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if any(int(e) < 1 for e in self.save_at):
            raise ValueError(f"save_at epochs must be >= 1, got {self.save_at}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        require_finite("lr", self.lr, positive=True)
        require_finite("momentum", self.momentum)
        require_finite("weight decay", self.weight_decay)
        require_finite("zca eps", self.zca_eps, positive=True)
        if self.image_augmentation not in AUGMENTS:
            raise ValueError(
                f"unknown image augmentation {self.image_augmentation!r}; "
                f"use one of {', '.join(AUGMENTS)}"
            )
        object.__setattr__(self, "save_at", tuple(sorted({int(e) for e in self.save_at})))

    @classmethod
    def recipe(cls, name: str, **overrides: Any) -> LabelerConfig:
        """A named recipe ("mtt": MTT buffer.py, the default; "strong": momentum 0.9, weight
        decay 5e-4, flips and crops) with any field overridden."""
        if name not in LABELER_RECIPES:
            raise ValueError(
                f"unknown labeler recipe {name!r}; use one of {', '.join(LABELER_RECIPES)}"
            )
        return cls(**{**LABELER_RECIPES[name], **overrides})

    @property
    def recipe_name(self) -> str:
        """The recipe these optimiser/augmentation settings are, or "custom"."""
        for name, fields_ in LABELER_RECIPES.items():
            ref = {**LABELER_RECIPES["mtt"], **fields_}
            if all(getattr(self, k) == v for k, v in ref.items()):
                return name
        return "custom"

    def checkpoint_epochs(self) -> tuple[int, ...]:
        """Epochs that get a checkpoint: save_at up to `epochs`, or the last epoch if none."""
        eps = tuple(e for e in self.save_at if e <= self.epochs)
        return eps or (self.epochs,)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["save_at"] = list(self.save_at)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelerConfig:
        """A config from a checkpoint's metadata. Checkpoints written before the field was
        renamed say "augment" (a bool in the first wave: True = flip + crop): read with a
        DeprecationWarning naming the new field."""
        d = dict(d)
        if "augment" in d:
            old = d.pop("augment")
            warnings.warn(
                "this labeler checkpoint's config says 'augment' (the name before "
                "'image_augmentation'); it is read as image_augmentation",
                DeprecationWarning,
                stacklevel=2,
            )
            if isinstance(old, bool):
                old = "flip_crop" if old else "none"
            d.setdefault("image_augmentation", old)
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["save_at"] = tuple(d.get("save_at", ()))
        return cls(**d)

    def resume_key(self) -> dict[str, Any]:
        """What must match for a checkpoint to be continued (epochs / save_at may grow)."""
        d = self.to_dict()
        d.pop("epochs")
        d.pop("save_at")
        # under the field's first name, so that folders named by a digest of this key (the
        # demo's labelers) stay valid across the rename
        d["augment"] = d.pop("image_augmentation")
        return d
